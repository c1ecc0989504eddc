import Fastify from 'fastify'
import { closeOnSignals } from '../../lifecycle/graceful-shutdown.js'
import { InstanceAgent } from '../../registry/client/instance-agent.js'
import { MemoryBrokerAdapter } from '../../router/messages/brokers/memory-broker.js'
import { parseMessageRouterSettings } from '../../router/messages/config.js'
import { startMessageRouter } from '../../router/messages/server.js'
import { OrdersWorker } from '../orders-worker/worker.js'
import { startTracing } from '../../telemetry/tracing-sdk.js'
import { shutdownLog } from '../service-lifecycle.js'

/**
 * The local stack's message plane: an in-memory broker lives in one process, so the
 * message router and the sample orders workers share this one. Producers reach it over
 * HTTP (POST /v1/topics/orders/messages on the message router's admin port).
 */
const env = process.env
const settings = parseMessageRouterSettings({}, { ...env, SWITCHYARD_BROKER: 'memory', SWITCHYARD_TOPICS: env.SWITCHYARD_TOPICS ?? 'orders=orders-worker' })
const adapter = new MemoryBrokerAdapter()
// One process, one tracer: message router and workers appear as one service here.
const tracing = await startTracing('switchyard-message-plane')
const log = (event: string, detail: Record<string, unknown> = {}) =>
  process.stdout.write(JSON.stringify({ time: new Date().toISOString(), component: 'message-plane', event, ...detail }) + '\n')
const running = await startMessageRouter(settings, { adapter })
const versions = (env.ORDERS_WORKER_VERSIONS ?? 'v1,v2').split(',').map((version) => version.trim())
// "v2=0.3": the share of orders each version's worker rejects (a bad release, for canary demos)
const rejectRates = new Map(
  (env.ORDERS_REJECT_RATES ?? '')
    .split(',')
    .map((entry) => entry.split('='))
    .filter((pair): pair is [string, string] => pair.length === 2 && Number.isFinite(Number(pair[1])))
    .map(([version, rate]) => [version.trim(), Math.min(1, Math.max(0, Number(rate)))])
)
const workers = versions.map(
  (version) => new OrdersWorker(adapter, { topic: 'orders', version, rejectRate: rejectRates.get(version) ?? 0, onEvent: (event, detail) => log(event, { version, ...detail }) })
)
const stats = Fastify({ logger: false })
stats.get('/stats', (_request, reply) => reply.send(workers.map((worker) => worker.stats)))
await stats.listen({ host: '127.0.0.1', port: 0 })
const address = stats.server.address()
const port = typeof address === 'object' && address ? address.port : 0
const agents = versions.map(
  (version) =>
    new InstanceAgent({
      registryUrl: settings.registry,
      token: settings.token,
      service: 'orders-worker',
      version,
      host: '127.0.0.1',
      port,
      id: `orders-worker-${version}-local`,
      onEvent: log
    })
)
for (const worker of workers) worker.start()
for (const agent of agents) await agent.start()
log('ready', { admin: running.adminUrl, stats: `http://127.0.0.1:${port}/stats` })
closeOnSignals(async () => {
  await Promise.all(agents.map((agent) => agent.stop(0)))
  await running.close()
  await Promise.all(workers.map((worker) => worker.stop()))
  await stats.close()
  await tracing.shutdown()
}, shutdownLog(log))
