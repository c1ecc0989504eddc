import t from 'tap'
import { MemoryBrokerAdapter } from '../../router/messages/brokers/memory-broker.js'
import { RabbitMqAdapter } from '../../router/messages/brokers/rabbitmq-broker.js'
import { AMQP_URL, deleteQueues, ensureRabbitMq } from './helpers.js'
import { relayBehaviour } from './relay-behaviour.js'

void t.test('in-memory broker', (t) => {
  relayBehaviour(t, {
    broker: 'memory',
    // A broker per scenario; the router and the reader share it through one adapter.
    newAdapter: () => new MemoryBrokerAdapter(),
    deleteQueues: async () => {}
  })
  t.end()
})

void t.test('RabbitMQ', async (t) => {
  await ensureRabbitMq()
  relayBehaviour(t, {
    broker: AMQP_URL,
    newAdapter: () => new RabbitMqAdapter(AMQP_URL),
    deleteQueues: (names) => deleteQueues(names)
  })
})
