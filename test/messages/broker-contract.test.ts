import t from 'tap'
import { MemoryBrokerAdapter } from '../../router/messages/brokers/memory-broker.js'
import { RabbitMqAdapter } from '../../router/messages/brokers/rabbitmq-broker.js'
import { brokerContract } from './broker-contract.js'
import { deleteQueues, ensureRabbitMq, testVhost } from './helpers.js'

void t.test('in-memory broker', (t) => {
  const adapter = new MemoryBrokerAdapter()
  t.teardown(() => adapter.broker.close())
  brokerContract(t, {
    adapter,
    // Nothing outlives the process; each test's queues have names of their own.
    deleteQueues: async () => {},
    dropConnections: () => Promise.resolve(adapter.dropConnections())
  })
  t.end()
})

void t.test('RabbitMQ', async (t) => {
  await ensureRabbitMq()
  // A vhost of this file's own: dropping "every connection" then drops only ours.
  const vhost = testVhost()
  await vhost.create()
  t.teardown(() => vhost.destroy())
  brokerContract(t, {
    adapter: new RabbitMqAdapter(vhost.url),
    deleteQueues: (names) => deleteQueues(names, vhost.url),
    dropConnections: () => vhost.closeConnections()
  })
})
