import { setTimeout as sleep } from 'node:timers/promises'
import type { Command } from 'commander'
import type { RolloutCommand } from '../../core/rollout/rollout-machine.js'
import type { RolloutAnalysis, RolloutRequest } from '../../core/rollout/rollout-spec.js'
import type { RegistryClient, RolloutView } from '../../registry/client/registry-client.js'
import { clientFrom, print } from '../client-options.js'
import { durationOption } from '../duration-option.js'
import { formatTable } from '../output.js'
import { UsageError } from '../usage-error.js'

interface StartOptions {
  baseline?: string
  steps?: string
  interval?: string
  maxErrorRate?: string
  maxP99?: string
  maxLatencyRatio?: string
  maxRejectRate?: string
  minRequests?: string
  failureLimit?: string
  progressDeadline?: string
  notify?: string
}

function numberOption(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined
  const value = Number(text)
  if (text.trim() === '' || !Number.isFinite(value)) throw new UsageError(`${flag} needs a number, got "${text}"`)
  return value
}

/** The start request from the flags: only what was given, the registry fills in the rest. */
export function rolloutRequestFrom(canary: string, options: StartOptions): RolloutRequest {
  const analysis: Partial<RolloutAnalysis> = {}
  const set = <K extends keyof RolloutAnalysis>(key: K, value: RolloutAnalysis[K] | undefined) => {
    if (value !== undefined) analysis[key] = value
  }
  set('maxErrorRatePercent', numberOption(options.maxErrorRate, '--max-error-rate'))
  set('maxP99Ms', options.maxP99 === undefined ? undefined : durationOption(options.maxP99, '--max-p99'))
  set('maxLatencyRatio', numberOption(options.maxLatencyRatio, '--max-latency-ratio'))
  set('maxRejectRatePercent', numberOption(options.maxRejectRate, '--max-reject-rate'))
  set('minRequests', numberOption(options.minRequests, '--min-requests'))
  const request: RolloutRequest = { canary }
  if (options.baseline !== undefined) request.baseline = options.baseline
  if (options.steps !== undefined) request.steps = options.steps.split(',').map((step) => numberOption(step, '--steps') as number)
  if (options.interval !== undefined) request.intervalSeconds = durationOption(options.interval, '--interval') / 1000
  if (options.progressDeadline !== undefined) request.progressDeadlineSeconds = durationOption(options.progressDeadline, '--progress-deadline') / 1000
  const failureLimit = numberOption(options.failureLimit, '--failure-limit')
  if (failureLimit !== undefined) request.failureLimit = failureLimit
  if (options.notify !== undefined) request.notify = options.notify
  if (Object.keys(analysis).length > 0) request.analysis = analysis
  return request
}

const figure = (value: number | null | undefined, unit: string) => (value === null || value === undefined ? '-' : `${Number(value.toFixed(2))}${unit}`)

/** One line: where the rollout is, how canary and baseline did, when it decides next. */
export function progressLine(rollout: RolloutView): string {
  const { spec } = rollout
  const head = `${rollout.service} ${spec.canary} ${rollout.phase} step ${rollout.step}/${spec.steps.length} weight ${rollout.canaryWeight}%`
  const last = rollout.history[rollout.history.length - 1]
  const judged = last
    ? ` | last verdict ${last.verdict}: canary ${last.canary.requests} req ${figure(last.canary.errorRatePercent, '%')} err p99 ${figure(last.canary.p99Ms, 'ms')}` +
      (last.canary.messagesRouted > 0 ? ` ${last.canary.messagesRouted} msg ${figure(last.canary.rejectRatePercent, '%')} rej` : '') +
      ` vs baseline ${last.baseline.requests} req ${figure(last.baseline.errorRatePercent, '%')} err p99 ${figure(last.baseline.p99Ms, 'ms')}` +
      (last.baseline.messagesRouted > 0 ? ` ${last.baseline.messagesRouted} msg ${figure(last.baseline.rejectRatePercent, '%')} rej` : '')
    : ''
  const waiting =
    rollout.phase !== 'progressing'
      ? ` | ${rollout.reason}`
      : rollout.routersBehind.length > 0
        ? ` | waiting for ${rollout.routersBehind.length} router(s) to apply the step`
        : rollout.nextDecisionInSeconds !== null
          ? ` | next decision in ${rollout.nextDecisionInSeconds}s${rollout.lastCheck ? ` (extended: ${rollout.lastCheck.reason})` : ''}`
          : ''
  return head + judged + waiting
}

const FINISHED = new Set(['promoted', 'rolled-back', 'aborted'])

async function watchRollout(client: RegistryClient, service: string, json: boolean): Promise<void> {
  let last = ''
  for (;;) {
    const rollout = await client.rollout(service)
    const line = json ? JSON.stringify(rollout) : progressLine(rollout)
    if (line !== last) print(line + '\n')
    last = line
    if (FINISHED.has(rollout.phase)) {
      // Scripts can wait for the outcome: exit 0 only when the canary was promoted.
      if (rollout.phase !== 'promoted') process.exitCode = 1
      return
    }
    await sleep(1_000)
  }
}

export function addRolloutCommands(program: Command): void {
  const rollout = program.command('rollout').description('step a canary through weights and promote or roll it back on its signals')
  rollout
    .command('start')
    .argument('<service>')
    .argument('<canary>', 'the version to roll out')
    .option('--baseline <version>', 'the version to compare with (default: the one holding the most weight)')
    .option('--steps <list>', 'canary weights in percent, ascending (default 1,5,25,50,100)')
    .option('--interval <duration>', 'how long each step collects signals (default 60s)')
    .option('--max-error-rate <percent>', 'a canary above this 5xx rate fails a step (default 1)')
    .option('--max-p99 <duration>', 'a canary with a slower p99 fails a step (default 500ms)')
    .option('--max-latency-ratio <ratio>', "a canary p99 above this times the baseline's fails a step (default 1.5)")
    .option('--max-reject-rate <percent>', 'a queue canary above this reject rate fails a step (default 1)')
    .option('--min-requests <n>', 'requests or messages a step needs before it is judged (default 50)')
    .option('--failure-limit <n>', 'failed steps before rolling back (default 2)')
    .option('--progress-deadline <duration>', 'a step without enough data for this long pauses the rollout (default 10m)')
    .option('--notify <url>', 'POST a JSON document to this URL on every state change')
    .description('start a rollout, e.g. rollout start api v1.4 --steps 1,5,25,50,100 --interval 30s')
    .action(async (service: string, canary: string, options: StartOptions, command: Command) => {
      const { client, options: global } = clientFrom(command)
      const started = await client.startRollout(service, rolloutRequestFrom(canary, options))
      print(global.json ? JSON.stringify(started, null, 2) + '\n' : progressLine(started) + '\n')
    })
  rollout
    .command('status')
    .argument('<service>')
    .option('--watch', 'keep printing progress until the rollout ends (exit 1 unless promoted)')
    .description("show a service's rollout: step, weight, canary vs baseline, next decision")
    .action(async (service: string, options: { watch?: boolean }, command: Command) => {
      const { client, options: global } = clientFrom(command)
      if (options.watch) return watchRollout(client, service, global.json === true)
      const state = await client.rollout(service)
      if (global.json) return print(JSON.stringify(state, null, 2) + '\n')
      print(progressLine(state) + '\n')
      if (state.history.length > 0) {
        print(
          formatTable(
            ['STEP', 'WEIGHT', 'VERDICT', 'CANARY', 'BASELINE', 'REASON'],
            state.history.map((record) => [
              String(record.stepIndex + 1),
              `${record.weight}%`,
              record.verdict,
              `${record.canary.requests} req ${figure(record.canary.errorRatePercent, '%')} p99 ${figure(record.canary.p99Ms, 'ms')} ${record.canary.messagesRouted} msg ${figure(record.canary.rejectRatePercent, '%')}`,
              `${record.baseline.requests} req ${figure(record.baseline.errorRatePercent, '%')} p99 ${figure(record.baseline.p99Ms, 'ms')} ${record.baseline.messagesRouted} msg ${figure(record.baseline.rejectRatePercent, '%')}`,
              record.reason
            ])
          )
        )
      }
    })
  for (const [name, description] of [
    ['pause', 'stop stepping; weights stay where they are'],
    ['resume', 'continue a paused rollout from its step (its weights are set again)'],
    ['abort', 'give the baseline all traffic and end the rollout'],
    ['promote', 'give the canary all traffic now and end the rollout']
  ] as const) {
    rollout
      .command(name)
      .argument('<service>')
      .description(description)
      .action(async (service: string, _options, command: Command) => {
        const { client, options: global } = clientFrom(command)
        const state = await client.rolloutCommand(service, name as RolloutCommand)
        print(global.json ? JSON.stringify(state, null, 2) + '\n' : progressLine(state) + '\n')
      })
  }
  rollout
    .command('list')
    .description("every service's latest rollout")
    .action(async (_options, command: Command) => {
      const { client, options: global } = clientFrom(command)
      const { rollouts } = await client.rollouts()
      if (global.json) return print(JSON.stringify({ rollouts }, null, 2) + '\n')
      print(
        formatTable(
          ['SERVICE', 'CANARY', 'BASELINE', 'PHASE', 'STEP', 'WEIGHT', 'REASON'],
          rollouts.map((r) => [r.service, r.spec.canary, r.spec.baseline, r.phase, `${r.step}/${r.spec.steps.length}`, `${r.canaryWeight}%`, r.reason])
        )
      )
    })
}
