import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { spawnNode } from '../helpers/processes.js'
import { ensureRabbitMq } from '../messages/helpers.js'

const benchMain = fileURLToPath(new URL('../../dist/bench/main.js', import.meta.url))

// The messages scenario against a real RabbitMQ, quick: every configuration runs every
// round, both relays deliver each message once and split 90/10, and the bench's queues
// are gone afterwards. No throughput is asserted.
void t.test('bench messages --quick relays through both relays and writes their rounds', async (t) => {
  await ensureRabbitMq()
  const outDir = await mkdtemp(join(tmpdir(), 'switchyard-bench-messages-'))
  t.teardown(() => rm(outDir, { recursive: true, force: true }))
  const run = spawnNode([benchMain, 'messages', '--quick', '--out-dir', outDir])
  t.teardown(() => run.kill('SIGKILL'))
  t.equal(await run.exited, 0, run.output().slice(-2000))
  const jsonFile = (await readdir(outDir)).find((file) => file.endsWith('-quick.json'))
  t.ok(jsonFile, 'a JSON result')
  const result = JSON.parse(await readFile(join(outDir, jsonFile as string), 'utf8'))
  const scenario = result.scenarios.find((entry: { name: string }) => entry.name === 'messages')
  t.notOk(scenario.skipped, 'it ran')
  const summaries = scenario.data.summaries as { configuration: string; rounds: number; messagesPerSecond: number; canarySharePercent: number | null; duplicates: number | null }[]
  t.same(
    summaries.map((summary) => summary.configuration),
    ['raw-publish', 'raw-relay', 'switchyard']
  )
  for (const summary of summaries) {
    t.equal(summary.rounds, 3, `${summary.configuration}: every round`)
    t.ok(summary.messagesPerSecond > 0, `${summary.configuration}: a rate`)
  }
  for (const summary of summaries.filter((entry) => entry.configuration !== 'raw-publish')) {
    t.equal(summary.duplicates, 0, `${summary.configuration}: no duplicates`)
    t.ok(Math.abs((summary.canarySharePercent ?? NaN) - 10) < 0.5, `${summary.configuration}: 90/10 split (v2 ${summary.canarySharePercent}%)`)
  }
  t.match(run.output(), /== messages ==/)
})
