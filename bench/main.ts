/**
 * `npm run bench [-- scenario ...] [--quick]`: what switchyard costs over a direct call
 * and how it compares with the proxies one would otherwise use. Progress goes to
 * stderr, the tables to stdout, the raw figures to bench/results/.
 */
import { Command, InvalidArgumentError, Option } from 'commander'
import { stopAll } from './lib/children.js'
import { setClosedLoopGenerator } from './lib/load-runner.js'
import { machineInfo, runIdentity } from './lib/machine.js'
import { projectRoot } from './lib/paths.js'
import { choosePinning } from './lib/pinning.js'
import { progress } from './lib/progress.js'
import { wrkVersion } from './lib/wrk-load.js'
import type { BenchRun } from './report/bench-run.js'
import { renderTextTable } from './report/text-table.js'
import { writeResults } from './report/write-results.js'
import { grpcScenario, h2Scenario } from './scenarios/http2.js'
import { messagesScenario } from './scenarios/messages.js'
import { pickerScenario } from './scenarios/picker.js'
import { propagationScenario } from './scenarios/propagation.js'
import { proxyScenario } from './scenarios/proxy.js'
import { CONFIGURATIONS } from './scenarios/proxy-configurations.js'
import { registryHaScenario } from './scenarios/registry-ha.js'
import { rolloutScenario } from './scenarios/rollout.js'
import { scaleScenario } from './scenarios/scale.js'
import type { BenchContext, Scenario, ScenarioResult } from './scenarios/scenario.js'
import { websocketScenario } from './scenarios/websocket.js'
import { workersScenario } from './scenarios/workers.js'

const SCENARIOS: Record<string, Scenario> = {
  proxy: proxyScenario,
  picker: pickerScenario,
  propagation: propagationScenario,
  scale: scaleScenario,
  rollout: rolloutScenario,
  messages: messagesScenario,
  'registry-ha': registryHaScenario,
  h2: h2Scenario,
  grpc: grpcScenario,
  websocket: websocketScenario,
  workers: workersScenario
}

function positiveInteger(minimum: number) {
  return (value: string): number => {
    const parsed = Number(value)
    if (!Number.isInteger(parsed) || parsed < minimum) throw new InvalidArgumentError(`must be an integer >= ${minimum}`)
    return parsed
  }
}

function positiveSeconds(value: string): number {
  const parsed = Number(value)
  if (!Number.isFinite(parsed) || parsed <= 0 || parsed > 120) throw new InvalidArgumentError('must be a number of seconds in (0, 120]')
  return parsed
}

interface CliOptions {
  quick?: boolean
  rounds?: number
  duration?: number
  connections: number
  configurations?: string
  pin: boolean
  write: boolean
  outDir?: string
  loadGenerator?: 'wrk' | 'autocannon'
}

async function main(argv: string[]): Promise<number> {
  const program = new Command('bench')
    .description('switchyard load benchmark: proxy overhead against direct calls and peer proxies, pickers, weight propagation, scale')
    .argument('[scenarios...]', `scenarios to run, in this order (default: all): ${Object.keys(SCENARIOS).join(', ')}`)
    .option('--quick', 'a ~1-minute smoke run: short rounds, fewer changes, a small scale table')
    .option('--rounds <n>', 'rounds per proxy configuration, at least 3 (default 5, quick 3)', positiveInteger(3))
    .option('--duration <seconds>', 'seconds of load per proxy round (default 4, quick 1)', positiveSeconds)
    .option('--connections <n>', 'keep-alive connections of the load generator', positiveInteger(1), 64)
    .addOption(new Option('--load-generator <name>', 'closed-loop load generator (default: wrk when installed, see bench/setup; else autocannon)').choices(['wrk', 'autocannon']))
    .option('--configurations <names>', `proxy configurations to run, comma-separated (default: all): ${CONFIGURATIONS.map((definition) => definition.name).join(',')}`)
    .addOption(new Option('--no-pin', 'do not pin processes to cores with taskset'))
    .addOption(new Option('--no-write', 'print the tables only; write nothing under bench/results'))
    .option('--out-dir <dir>', 'write the result files here instead of bench/results (the README table is left alone)')
    .showHelpAfterError()
  program.parse(argv)
  const options = program.opts<CliOptions>()
  const requested = program.args.length > 0 ? program.args : Object.keys(SCENARIOS)
  const unknown = requested.filter((name) => !(name in SCENARIOS))
  if (unknown.length > 0) {
    process.stderr.write(`bench: unknown scenario ${unknown.join(', ')}; choose from ${Object.keys(SCENARIOS).join(', ')}\n`)
    return 2
  }
  const configurations = options.configurations?.split(',').map((name) => name.trim())
  const unknownConfigurations = configurations?.filter((name) => !CONFIGURATIONS.some((definition) => definition.name === name)) ?? []
  if (unknownConfigurations.length > 0) {
    process.stderr.write(`bench: unknown proxy configuration ${unknownConfigurations.join(', ')}; choose from ${CONFIGURATIONS.map((definition) => definition.name).join(', ')}\n`)
    return 2
  }
  const quick = options.quick === true
  const loadGenerator = options.loadGenerator ?? (wrkVersion() ? 'wrk' : 'autocannon')
  if (loadGenerator === 'wrk' && !wrkVersion()) {
    process.stderr.write('bench: --load-generator wrk, but wrk is not installed (bench/setup installs it)\n')
    return 2
  }
  setClosedLoopGenerator(loadGenerator)
  const context: BenchContext = {
    quick,
    pinning: choosePinning(!options.pin),
    connections: options.connections,
    rounds: options.rounds ?? (quick ? 3 : 5),
    durationSeconds: options.duration ?? (quick ? 1 : 4),
    configurations
  }
  const identity = runIdentity(projectRoot)
  const machine = machineInfo()
  const started = Date.now()
  progress('bench', `${quick ? 'quick' : 'full'} run of ${requested.join(', ')} at commit ${identity.commit}${identity.dirty ? ' (uncommitted changes)' : ''}`)
  progress('bench', `closed-loop load: ${loadGenerator === 'wrk' ? `${wrkVersion() ?? 'wrk'}, one thread` : 'autocannon'}; fixed-rate load: evenly paced undici requests`)
  progress('bench', `machine: ${machine.cores} cores, ${machine.cpuModel}, Node.js ${machine.node}, load average ${machine.loadAverageAtStart.join(' ')}`)

  const results: ScenarioResult[] = []
  let failed = false
  for (const name of requested) {
    progress(name, 'starting')
    try {
      results.push(await (SCENARIOS[name] as Scenario)(context))
    } catch (error) {
      failed = true
      const message = (error as Error).message
      progress(name, `FAILED: ${message}`)
      results.push({ name, skipped: `failed: ${message.split('\n')[0]}`, notes: [], tables: [], data: { error: (error as Error).stack ?? message } })
    }
  }

  const run: BenchRun = {
    identity,
    machine,
    command: `npm run bench${argv.length > 2 ? ` -- ${argv.slice(2).join(' ')}` : ''}`,
    quick,
    options: { connections: context.connections, rounds: context.rounds, durationSeconds: context.durationSeconds, pin: context.pinning.enabled, loadGenerator },
    durationSeconds: (Date.now() - started) / 1000,
    scenarios: results
  }

  const out: string[] = [`switchyard benchmark, ${identity.startedAt}, commit ${identity.commit}${identity.dirty ? ' (uncommitted changes)' : ''}${quick ? ', quick run' : ''}`]
  out.push(`machine: ${machine.cores} cores, ${machine.cpuModel}, ${machine.memoryGiB} GiB, Node.js ${machine.node}`)
  for (const result of results) {
    out.push('', `== ${result.name} ==`)
    if (result.skipped) out.push(`skipped: ${result.skipped}`)
    for (const table of result.tables) out.push(renderTextTable(table), '')
    for (const note of result.notes) out.push(`- ${note}`)
  }
  process.stdout.write(`${out.join('\n')}\n`)

  if (options.write) {
    const fullRun = !quick && requested.length === Object.keys(SCENARIOS).length && !failed && configurations === undefined && options.outDir === undefined
    const files = await writeResults(run, { updateReadme: fullRun, ...(options.outDir ? { directory: options.outDir } : {}) })
    progress('bench', `wrote ${[files.json, files.markdown, files.svg].filter(Boolean).join(', ')}${files.readmeUpdated ? ' and the latest-run table in bench/README.md' : ''}`)
  }
  progress('bench', `done in ${Math.round(run.durationSeconds)} s`)
  return failed ? 1 : 0
}

main(process.argv).then(
  async (code) => {
    await stopAll()
    process.exit(code)
  },
  async (error: unknown) => {
    process.stderr.write(`bench: ${(error as Error).stack ?? String(error)}\n`)
    await stopAll()
    process.exit(1)
  }
)
