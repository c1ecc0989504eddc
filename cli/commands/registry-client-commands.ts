import type { Command } from 'commander'
import type { RegistryChange } from '../../core/registry-events.js'
import { RegistryWatcher } from '../../registry/client/watch-client.js'
import { clientFrom, clientOptions, print } from '../client-options.js'
import { formatTable, formatWeights } from '../output.js'
import { waitForRouters } from '../wait-for-routers.js'
import { durationOption } from '../duration-option.js'
import { UsageError } from '../usage-error.js'

/** `v1.3=90 v1.4=10` -> { "v1.3": 90, "v1.4": 10 } */
export function parseWeightPairs(pairs: readonly string[]): Record<string, number> {
  const weights: Record<string, number> = {}
  for (const pair of pairs) {
    const match = /^([^=\s]+)=([^=\s]+)$/.exec(pair)
    if (!match) throw new UsageError(`"${pair}" is not VERSION=WEIGHT (for example v1.4=10)`)
    const [, version, raw] = match as unknown as [string, string, string]
    const weight = Number(raw)
    if (!Number.isFinite(weight) || raw.trim() === '') throw new UsageError(`weight of ${version} is "${raw}", not a number`)
    if (version in weights) throw new UsageError(`version ${version} is given twice`)
    weights[version] = weight
  }
  return weights
}

export function describeChange(change: RegistryChange): string {
  switch (change.type) {
    case 'instance-registered':
      return `${change.instance.service} instance ${change.instance.id} registered: version ${change.instance.version} at ${change.instance.host}:${change.instance.port}`
    case 'instance-status-changed':
      return `${change.service} instance ${change.id} is now ${change.status}`
    case 'instance-removed':
      return `${change.service} instance ${change.id} ${change.reason}`
    case 'weights-changed':
      return `${change.service} weights ${formatWeights(change.weights)} (were ${formatWeights(change.previous) || 'unset'}) by ${change.actor}`
    case 'rollout-changed':
      return `${change.service} rollout of ${change.rollout.spec.canary} ${change.event}: ${change.rollout.reason}`
  }
}

export function addRegistryClientCommands(program: Command): void {
  program
    .command('services')
    .description('list services with their versions, weights and instances')
    .action(async (_options, command: Command) => {
      const { client, options } = clientFrom(command)
      const result = await client.services()
      if (options.json) return print(JSON.stringify(result, null, 2) + '\n')
      const rows = result.services.map((service) => [
        service.name,
        formatWeights(service.weights),
        Object.keys(service.weights)
          .map((version) => `${version}:${service.instances.filter((i) => i.version === version && i.status === 'up').length}`)
          .join(' ')
      ])
      print(formatTable(['SERVICE', 'WEIGHTS', 'UP INSTANCES'], rows))
      print(`revision ${result.revision}\n`)
    })

  const weights = program.command('weights').description('read or set the traffic split of a service')
  weights
    .command('get')
    .argument('<service>')
    .description('show the weights of a service')
    .action(async (service: string, _options, command: Command) => {
      const { client, options } = clientFrom(command)
      const result = await client.weights(service)
      if (options.json) return print(JSON.stringify(result, null, 2) + '\n')
      print(
        formatTable(
          ['VERSION', 'WEIGHT'],
          Object.entries(result.weights).map(([version, weight]) => [version, `${weight}%`])
        )
      )
      print(`revision ${result.revision}\n`)
    })
  weights
    .command('set')
    .argument('<service>')
    .argument('<weights...>', 'VERSION=PERCENT pairs adding up to 100; versions left out get 0')
    .option('--if-match <revision>', 'only apply if the registry is still at this revision')
    .option('--allow-unregistered', 'accept weight for versions with no registered instance yet (pre-provisioning)')
    .option('--wait', 'return once every live router and message router has applied the change')
    .option('--timeout <duration>', 'with --wait: give up after this long (exit 1 naming the routers behind)', '10s')
    .description('set the whole split of a service, e.g. weights set api v1.3=90 v1.4=10')
    .action(async (service: string, pairs: string[], commandOptions: { ifMatch?: string; allowUnregistered?: boolean; wait?: boolean; timeout: string }, command: Command) => {
      const { client, options } = clientFrom(command)
      const ifMatch = commandOptions.ifMatch === undefined ? undefined : Number(commandOptions.ifMatch)
      if (ifMatch !== undefined && !Number.isInteger(ifMatch)) throw new UsageError(`--if-match needs a revision number, got "${commandOptions.ifMatch}"`)
      const timeoutMs = durationOption(commandOptions.timeout, '--timeout')
      const result = await client.setWeights(service, parseWeightPairs(pairs), ifMatch, { allowUnregistered: commandOptions.allowUnregistered === true })
      if (!commandOptions.wait) {
        if (options.json) return print(JSON.stringify(result, null, 2) + '\n')
        return print(`${service}: ${formatWeights(result.weights)} (revision ${result.revision})\n`)
      }
      const waited = await waitForRouters(client, result.revision, timeoutMs)
      if (options.json) print(JSON.stringify({ ...result, applied: waited.applied, routers: waited.routers.length, laggards: waited.laggards.map((r) => r.id) }, null, 2) + '\n')
      else if (waited.applied) print(`${service}: ${formatWeights(result.weights)} (revision ${result.revision}), applied by ${waited.routers.length} router(s)\n`)
      else print(`${service}: ${formatWeights(result.weights)} (revision ${result.revision})\n`)
      if (!waited.applied) {
        throw new Error(
          `revision ${result.revision} not applied within ${commandOptions.timeout} by ${waited.laggards.map((router) => `${router.id} (at ${router.appliedRevision}, ${router.adminUrl})`).join(', ')}`
        )
      }
    })

  program
    .command('routers')
    .description('list the routers and message routers reporting to the registry, with the revision each has applied')
    .action(async (_options, command: Command) => {
      const { client, options } = clientFrom(command)
      const result = await client.routers()
      if (options.json) return print(JSON.stringify(result, null, 2) + '\n')
      const now = Date.now()
      print(
        formatTable(
          ['ID', 'KIND', 'ADMIN', 'APPLIED', 'LAG', 'LAST REPORT'],
          result.routers.map((router) => [
            router.id,
            router.kind,
            router.adminUrl,
            String(router.appliedRevision),
            router.lag === 0 ? '0' : `${router.lag} behind`,
            `${Math.max(0, Math.round((now - Date.parse(router.lastReportAt)) / 100) / 10)}s ago`
          ])
        )
      )
      print(`registry revision ${result.revision}\n`)
    })

  program
    .command('history')
    .argument('<service>')
    .description('show the audit log of weight changes of a service')
    .action(async (service: string, _options, command: Command) => {
      const { client, options } = clientFrom(command)
      const result = await client.history(service)
      if (options.json) return print(JSON.stringify(result, null, 2) + '\n')
      print(
        formatTable(
          ['REVISION', 'AT', 'BY', 'FROM', 'TO'],
          result.history.map((e) => [String(e.revision), e.at, e.actor, formatWeights(e.from) || '-', formatWeights(e.to)])
        )
      )
    })

  program
    .command('watch')
    .description('follow registry changes as they happen (Ctrl-C to stop)')
    .option('--since <revision>', 'start after this revision instead of with a snapshot')
    .action(async (commandOptions: { since?: string }, command: Command) => {
      const options = clientOptions(command)
      const write = (value: unknown, text: string) => print(options.json ? JSON.stringify(value) + '\n' : text + '\n')
      let since: number | undefined
      if (commandOptions.since !== undefined) {
        since = Number(commandOptions.since)
        if (!Number.isInteger(since) || since < 0) throw new UsageError(`--since needs a revision number, got "${commandOptions.since}"`)
      }
      const watcher = new RegistryWatcher({
        url: options.registry,
        ...(since === undefined ? {} : { since }),
        token: options.token,
        handlers: {
          onSnapshot: (snapshot) =>
            write(
              { type: 'snapshot', ...snapshot },
              `snapshot at revision ${snapshot.revision}: ${snapshot.services.map((s) => `${s.name} [${formatWeights(s.weights)}] ${s.instances.length} instances`).join('; ') || 'no services'}`
            ),
          onChange: (change) => write(change, `revision ${change.revision}: ${describeChange(change)}`),
          onConnectionChange: (state, error, stream) => process.stderr.write(`switchyard: watch ${state}${stream ? ` to ${stream.url}` : ''}${error ? `: ${error.message}` : ''}\n`)
        }
      })
      watcher.start()
      await new Promise<void>((resolve) => {
        const stop = () => {
          watcher.stop()
          resolve()
        }
        process.once('SIGINT', stop)
        process.once('SIGTERM', stop)
      })
    })
}
