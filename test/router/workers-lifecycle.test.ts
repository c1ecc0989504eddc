import { createServer as createNetServer, type Server as NetServer } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { Client } from 'undici'
import WebSocket, { WebSocketServer } from 'ws'
import { cliPath, freePort, spawnNode } from '../helpers/processes.js'
import { metric, scrape } from '../helpers/prometheus.js'
import { startTestRegistry, TOKENS, waitFor } from '../helpers/registry-harness.js'
import { freshGet, meshOf, routerOf } from '../helpers/router-workers.js'

// One router for both: killed and replaced first, then drained (the replacement with the other).
let release: () => void = () => {}
const held = new Promise<void>((resolve) => (release = resolve))
const { reg, upstreams, revision } = await meshOf(t, { v1: 90, v2: 10 }, (req, res, upstream) => {
  req.resume()
  const answer = () => res.end(JSON.stringify({ version: upstream.version }))
  // /api/slow is held until the test lets it go (requests under way when SIGTERM comes).
  if (req.url?.startsWith('/api/slow')) void held.then(answer)
  else req.on('end', answer)
})
for (const upstream of upstreams) {
  const wss = new WebSocketServer({ server: upstream.server })
  t.teardown(() => {
    for (const socket of wss.clients) socket.terminate()
    wss.close()
  })
}
const router = await routerOf(t, reg, revision, { drainTimeoutMs: 2_000 })

void t.test('a killed worker is started again while traffic goes on; only its own connections fail', async (t) => {
  const before = await router.workers()
  const victim = before[0] as { pid: number; slot: number }

  // Keep-alive clients, one connection each, sending one request after another.
  const clients = Array.from({ length: 8 }, () => ({ client: new Client(router.proxyUrl), ok: 0, okAfterRestart: 0, failures: [] as number[] }))
  t.teardown(() => Promise.all(clients.map((entry) => entry.client.destroy())))
  let stop = false
  let restartedAt = Infinity
  const loops = clients.map(async (entry) => {
    while (!stop) {
      try {
        const answer = await entry.client.request({ method: 'GET', path: '/api/kill' })
        await answer.body.dump()
        if (answer.statusCode !== 200) throw new Error(`status ${answer.statusCode}`)
        entry.ok++
        if (Date.now() > restartedAt) entry.okAfterRestart++
      } catch {
        entry.failures.push(Date.now())
      }
      // Paced (about 100 requests/s per client): the replacement needs CPU to start on a busy machine.
      await sleep(10)
    }
  })
  await waitFor(() => (clients.every((entry) => entry.ok >= 20) ? true : undefined), 'traffic on every client', 20_000)

  const killedAt = Date.now()
  process.kill(victim.pid, 'SIGKILL')
  const replaced = await waitFor(
    async () => {
      const now = await router.workers()
      const successor = now.find((worker) => worker.slot === victim.slot)
      return successor && successor.pid !== victim.pid && successor.listening && now.length === 2 ? successor : undefined
    },
    'a worker in place of the killed one',
    90_000
  ).catch((error: Error) => {
    throw new Error(`${error.message}\n${router.process.output().slice(-4_000)}`)
  })
  restartedAt = Date.now()
  t.equal(replaced.restarts, 1, `replaced and listening ${restartedAt - killedAt} ms after the kill`)
  // Traffic goes on after the restart, on every client (bounded: each needs 20 more answers).
  await waitFor(() => (clients.every((entry) => entry.okAfterRestart >= 20) ? true : undefined), 'traffic after the restart', 60_000)
  // New connections reach the new worker too.
  await waitFor(
    async () => {
      await Promise.all(Array.from({ length: 4 }, () => freshGet(router.proxyUrl)))
      const now = await router.workers()
      return (now.find((worker) => worker.pid === replaced.pid)?.requests ?? 0) > 0 ? true : undefined
    },
    'the new worker serving',
    60_000
  )
  stop = true
  await Promise.all(loops)

  const failures = clients.flatMap((entry) => entry.failures)
  t.ok(
    clients.every((entry) => entry.failures.length <= 1),
    `a client fails at most once, on its connection to the killed worker: ${clients.map((entry) => entry.failures.length).join(' ')}`
  )
  t.ok(failures.length < clients.length, 'the clients of the other worker never failed')
  t.same(
    failures.filter((at) => at > restartedAt),
    [],
    'no failure after the restart'
  )
  t.match(router.process.output(), /router worker exited; starting another in its place/)
  const text = await scrape(router.adminUrl)
  t.equal(metric(text, 'switchyard_router_worker_restarts_total'), 1)
})

void t.test('SIGTERM drains every worker: requests under way finish, upgraded connections are closed with 1001, then the primary exits 0', async (t) => {
  const hitsBefore = upstreams.reduce((sum, upstream) => sum + upstream.hits, 0)
  const workerPids = (await router.workers()).map((worker) => worker.pid)

  // Slow requests on connections of their own (so both workers have some), and a WebSocket.
  const slow = Array.from({ length: 6 }, () => freshGet(router.proxyUrl, {}, '/api/slow'))
  const socket = new WebSocket(`${router.proxyUrl.replace('http', 'ws')}/api/socket`)
  const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)))
  await new Promise((resolve, reject) => {
    socket.once('open', resolve)
    socket.once('error', reject)
  })
  await waitFor(() => (upstreams.reduce((sum, upstream) => sum + upstream.hits, 0) >= hitsBefore + 6 ? true : undefined), 'the slow requests at the upstreams')

  void router.process.kill('SIGTERM')
  await router.process.waitForOutput('SIGTERM received, closing')
  // The upstreams answer after the router began draining: every answer still reaches its client.
  setTimeout(release, 300)
  const answers = await Promise.all(slow)
  t.same(
    answers.map((answer) => answer.status),
    [200, 200, 200, 200, 200, 200]
  )
  t.equal(await closed, 1001, 'the WebSocket is ended with going away once the drain timeout passed')
  t.equal(await router.process.exited, 0)
  for (const pid of workerPids) t.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `worker ${pid} is gone`)
  await t.rejects(freshGet(router.proxyUrl), 'nothing listens any more')
})

void t.test('a router whose workers cannot listen does not start', async (t) => {
  const reg = await startTestRegistry()
  t.teardown(() => reg.destroy())
  const taken: NetServer = createNetServer()
  const port = await freePort()
  await new Promise<void>((resolve) => taken.listen(port, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => taken.close(() => resolve())))
  const adminPort = await freePort()
  const child = spawnNode(
    [cliPath, 'router', '--workers', '2', '--host', '127.0.0.1', '--port', String(port), '--admin-host', '127.0.0.1', '--admin-port', String(adminPort), '--routes', '/api=api'],
    { SWITCHYARD_REGISTRY_URL: reg.url, SWITCHYARD_TOKEN: TOKENS.router, OTEL_SDK_DISABLED: 'true' }
  )
  t.teardown(() => child.kill('SIGKILL'))
  t.equal(await child.exited, 1, child.output())
  t.match(child.output(), /EADDRINUSE/)
})
