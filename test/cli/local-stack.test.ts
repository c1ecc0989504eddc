import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import WebSocket from 'ws'
import { request } from 'undici'
import { cliPath, freePort, spawnNode } from '../helpers/processes.js'
import { scrapedMetric } from '../helpers/prometheus.js'
import { waitFor } from '../helpers/registry-harness.js'

async function localEnv(): Promise<Record<string, string>> {
  const stateDir = await mkdtemp(join(tmpdir(), 'switchyard-local-'))
  return {
    SWITCHYARD_REGISTRY_PORT: String(await freePort()),
    SWITCHYARD_ROUTER_PORT: String(await freePort()),
    SWITCHYARD_ROUTER_ADMIN_PORT: String(await freePort()),
    SWITCHYARD_MESSAGE_ROUTER_ADMIN_PORT: String(await freePort()),
    SWITCHYARD_STATE_DIR: stateDir,
    SWITCHYARD_ADMIN_TOKEN: ''
  }
}

void t.test('npm start runs the mesh: v1.3 by default, v1.4 on request, clean stop on Ctrl-C', async (t) => {
  const env = await localEnv()
  t.teardown(() => rm(env.SWITCHYARD_STATE_DIR as string, { recursive: true, force: true }))
  const stack = spawnNode([cliPath, 'local'], env)
  t.teardown(() => stack.kill('SIGKILL'))
  await stack.waitForOutput('Press Ctrl-C', 60_000)
  t.match(stack.output(), /registry\s+ready on/)
  t.match(stack.output(), /export SWITCHYARD_REGISTRY_URL=\S+ SWITCHYARD_TOKEN=\S{20,}/, 'prints the generated admin token')
  const consoleUrl = /console\s+(http:\S+\/console\/)/.exec(stack.output())?.[1]
  t.ok(consoleUrl, 'prints the console address')
  const consolePage = await request(consoleUrl as string)
  t.equal(consolePage.statusCode, 200, 'which serves the console')
  await consolePage.body.dump()
  const base = `http://127.0.0.1:${env.SWITCHYARD_ROUTER_PORT}`
  for (let i = 0; i < 10; i++) {
    const answer = await request(`${base}/api/hello`)
    t.equal(((await answer.body.json()) as { version: string }).version, 'v1.3')
  }
  const forced = await request(`${base}/api/hello`, { headers: { 'x-switchyard-version': 'v1.4' } })
  t.equal(((await forced.body.json()) as { version: string }).version, 'v1.4')
  // The README's WebSocket example: the api answers chats, the 101 names the version.
  const chat = new WebSocket(`${base.replace('http', 'ws')}/api/chat`, { headers: { 'x-switchyard-version': 'v1.4' } })
  const upgradedBy = new Promise<string>((resolve) => chat.once('upgrade', (response) => resolve(String(response.headers['x-switchyard-version']))))
  const reply = new Promise<string>((resolve, reject) => {
    chat.once('message', (data) => resolve(String(data)))
    chat.once('error', reject)
  })
  chat.once('open', () => chat.send('hi'))
  t.equal(await upgradedBy, 'v1.4')
  t.match(JSON.parse(await reply), { service: 'api', version: 'v1.4', echo: 'hi' }, 'the chat answers through the router')
  chat.close()
  const page = await request(`${base}/`)
  t.match(await page.body.text(), /api answered 200 from version <b>v1\.3<\/b>/, 'webfront calls api through the router')
  const order = await request(`${base}/orders`, { method: 'POST' })
  t.equal(order.statusCode, 202, 'an order is published to the orders topic')
  await order.body.dump()
  const messageAdmin = `http://127.0.0.1:${env.SWITCHYARD_MESSAGE_ROUTER_ADMIN_PORT}`
  await waitFor(
    async () => ((await scrapedMetric(messageAdmin, 'switchyard_messages_total', { topic: 'orders', outcome: 'routed' })) === 1 ? true : undefined),
    'the order routed to a worker version'
  )
  stack.child.kill('SIGINT')
  t.equal(await stack.exited, 0, 'exit 0 after Ctrl-C')
  t.match(stack.output(), 'Stopped.')
  // Every component is gone: their ports are free again.
  for (const port of [env.SWITCHYARD_REGISTRY_PORT, env.SWITCHYARD_ROUTER_PORT, env.SWITCHYARD_ROUTER_ADMIN_PORT, env.SWITCHYARD_MESSAGE_ROUTER_ADMIN_PORT]) {
    await new Promise<void>((resolve, reject) => {
      const probe = createServer()
      probe.once('error', reject)
      probe.listen(Number(port), '127.0.0.1', () => probe.close(() => resolve()))
    })
  }
})

void t.test('a port in use is named with the variable that moves it', async (t) => {
  const env = await localEnv()
  t.teardown(() => rm(env.SWITCHYARD_STATE_DIR as string, { recursive: true, force: true }))
  const blocker = createServer()
  await new Promise<void>((resolve) => blocker.listen(Number(env.SWITCHYARD_ROUTER_PORT), '127.0.0.1', resolve))
  t.teardown(() => blocker.close())
  const stack = spawnNode([cliPath, 'local'], env)
  t.equal(await stack.exited, 2)
  t.match(stack.output(), `port ${env.SWITCHYARD_ROUTER_PORT} (router) is already in use; set SWITCHYARD_ROUTER_PORT to use another`)
})

void t.test('npm start -- --broker rabbitmq: orders go through RabbitMQ to the worker processes', async (t) => {
  const env = await localEnv()
  t.teardown(() => rm(env.SWITCHYARD_STATE_DIR as string, { recursive: true, force: true }))
  const stack = spawnNode([cliPath, 'local', '--broker', 'rabbitmq'], env)
  t.teardown(() => stack.kill('SIGKILL'))
  await stack.waitForOutput('Press Ctrl-C', 90_000)
  t.match(stack.output(), /message router\s+ready on \S+ \(RabbitMQ\)/)
  const order = await request(`http://127.0.0.1:${env.SWITCHYARD_ROUTER_PORT}/orders`, { method: 'POST' })
  t.equal(order.statusCode, 202)
  await order.body.dump()
  const messageAdmin = `http://127.0.0.1:${env.SWITCHYARD_MESSAGE_ROUTER_ADMIN_PORT}`
  await waitFor(async () => ((await scrapedMetric(messageAdmin, 'switchyard_messages_total', { topic: 'orders', outcome: 'routed' })) === 1 ? true : undefined), 'the order routed')
  stack.child.kill('SIGINT')
  t.equal(await stack.exited, 0, 'exit 0 after Ctrl-C')
})
