import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { spawnNode } from '../helpers/processes.js'

const benchMain = fileURLToPath(new URL('../../dist/bench/main.js', import.meta.url))

// The harness itself, not the figures: a quick run of two scenarios completes and writes
// valid JSON with every configuration it was asked for (no timing assertions).
void t.test('bench --quick on two scenarios writes a complete JSON result', async (t) => {
  const outDir = await mkdtemp(join(tmpdir(), 'switchyard-bench-'))
  t.teardown(() => rm(outDir, { recursive: true, force: true }))
  const run = spawnNode([benchMain, 'picker', 'proxy', '--quick', '--configurations', 'direct,switchyard', '--out-dir', outDir])
  t.teardown(() => run.kill('SIGKILL'))
  t.equal(await run.exited, 0, run.output().slice(-2000))
  const files = await readdir(outDir)
  const jsonFile = files.find((file) => file.endsWith('-quick.json'))
  t.ok(jsonFile, `a JSON result in ${files.join(', ')}`)
  t.ok(
    files.some((file) => file.endsWith('-quick.md')),
    'a Markdown summary'
  )
  t.ok(
    files.some((file) => file.endsWith('-quick.svg')),
    'an SVG chart'
  )
  const result = JSON.parse(await readFile(join(outDir, jsonFile as string), 'utf8'))
  t.match(result, { quick: true, machine: { cores: Number, node: String }, identity: { commit: String } })
  const names = result.scenarios.map((scenario: { name: string }) => scenario.name)
  t.same(names, ['picker', 'proxy'])
  for (const scenario of result.scenarios) t.notOk(scenario.skipped, `${scenario.name} ran`)
  const summaries = result.scenarios.find((scenario: { name: string }) => scenario.name === 'proxy').data.summaries as { configuration: string; phase: string; rounds: number }[]
  t.same([...new Set(summaries.map((summary) => summary.configuration))].sort(), ['direct', 'switchyard'], 'every requested configuration is there')
  t.ok(
    summaries.every((summary) => summary.rounds >= 1),
    'each with its rounds'
  )
  t.match(run.output(), /== picker ==/)
})
