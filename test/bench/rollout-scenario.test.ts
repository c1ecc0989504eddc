import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { spawnNode } from '../helpers/processes.js'

const benchMain = fileURLToPath(new URL('../../dist/bench/main.js', import.meta.url))

interface Round {
  state: 'idle' | 'running'
  round: number
  tablesApplied: number
  stepsJudged: number
  load: { requests: number }
}

// The rollout scenario, quick: both states run every round, the idle rounds see no table
// change while the running ones do, the rollouts it keeps going pass their steps, and the
// ratio is reported. No figure is asserted.
void t.test('bench rollout --quick measures the router idle and with a rollout running', async (t) => {
  const outDir = await mkdtemp(join(tmpdir(), 'switchyard-bench-rollout-'))
  t.teardown(() => rm(outDir, { recursive: true, force: true }))
  const run = spawnNode([benchMain, 'rollout', '--quick', '--out-dir', outDir])
  t.teardown(() => run.kill('SIGKILL'))
  t.equal(await run.exited, 0, run.output().slice(-2000))
  const files = await readdir(outDir)
  const jsonFile = files.find((file) => file.endsWith('-quick.json'))
  t.ok(jsonFile, `a JSON result in ${files.join(', ')}`)
  const result = JSON.parse(await readFile(join(outDir, jsonFile as string), 'utf8'))
  const scenario = result.scenarios.find((entry: { name: string }) => entry.name === 'rollout')
  t.notOk(scenario.skipped, 'it ran')
  const { rounds, summaries, comparison, rollout } = scenario.data as {
    rounds: Round[]
    summaries: { state: string; rounds: number; rps: number }[]
    comparison: { rpsRatio: number; cpuPerRequestRatio: number; pairedRpsRatios: number[]; target: number }
    rollout: { starts: number; verdicts: Record<string, number> }
  }
  t.same(
    summaries.map((summary) => [summary.state, summary.rounds]),
    [
      ['idle', 3],
      ['running', 3]
    ],
    'three rounds of each state'
  )
  t.same(
    rounds.map((round) => `${round.round} ${round.state}`),
    ['1 idle', '1 running', '2 running', '2 idle', '3 idle', '3 running'],
    'interleaved, the order alternating'
  )
  for (const round of rounds) t.ok(round.load.requests > 0, `round ${round.round} ${round.state}: requests answered`)
  const idle = rounds.filter((round) => round.state === 'idle')
  t.same(
    idle.map((round) => [round.tablesApplied, round.stepsJudged]),
    [
      [0, 0],
      [0, 0],
      [0, 0]
    ],
    'idle: no table change, no step'
  )
  const running = rounds.filter((round) => round.state === 'running')
  t.ok(running.reduce((sum, round) => sum + round.tablesApplied, 0) > 0, 'running: the router applied new tables during the rounds')
  t.ok(rollout.starts >= 2, `a rollout started for each run of running rounds (${rollout.starts})`)
  t.ok((rollout.verdicts.passed ?? 0) > 0, `steps passed (${JSON.stringify(rollout.verdicts)})`)
  t.notOk(rollout.verdicts.failed, 'the loose analysis fails no step')
  t.ok(Number.isFinite(comparison.rpsRatio) && comparison.rpsRatio > 0, 'a req/s ratio')
  t.equal(comparison.pairedRpsRatios.length, 3, 'a ratio per pair of rounds')
  t.equal(comparison.target, 0.97)
  const markdown = await readFile(join(outDir, (jsonFile as string).replace(/\.json$/, '.md')), 'utf8')
  t.match(markdown, /## rollout/)
  t.match(markdown, /Running \/ idle/)
  t.match(run.output(), /== rollout ==/)
})
