import type { Command } from 'commander'
import { clientFrom, print } from '../client-options.js'
import { formatTable } from '../output.js'

/** Instances by hand (`instances list|evict`) and the registry's own state (`status`). */
export function addInstanceCommands(program: Command): void {
  const instances = program.command('instances').description('list the instances of a service, or evict one by hand')
  instances
    .command('list')
    .description('every instance of a service: version, address, status, last heartbeat')
    .argument('<service>')
    .action(async (service: string, _options, command: Command) => {
      const { client, options } = clientFrom(command)
      const view = await client.service(service)
      if (options.json) return print(JSON.stringify(view.instances, null, 2) + '\n')
      const rows = view.instances.map((instance) => [instance.id, instance.version, `${instance.host}:${instance.port}`, instance.status, instance.lastHeartbeat ?? '-'])
      print(formatTable(['ID', 'VERSION', 'ADDRESS', 'STATUS', 'LAST HEARTBEAT'], rows))
    })
  instances
    .command('evict')
    .description('remove an instance the registry keeps although it is dead (e.g. held by self-preservation); operator or admin token')
    .argument('<service>')
    .argument('<id>')
    .action(async (service: string, id: string, _options, command: Command) => {
      const { client, options } = clientFrom(command)
      const result = await client.evict(service, id)
      if (options.json) return print(JSON.stringify(result) + '\n')
      print(`evicted ${id} of ${service} (revision ${result.revision})\n`)
    })

  program
    .command('status')
    .description("the registry's state: revision, instances, store, and whether self-preservation holds expired instances")
    .action(async (_options, command: Command) => {
      const { client, options } = clientFrom(command)
      const status = await client.status()
      if (options.json) return print(JSON.stringify(status, null, 2) + '\n')
      print(`registry ${status.status}: revision ${status.revision}, ${status.instances} instances, ${status.store} store\n`)
      if (status.selfPreservation) {
        print(
          `self-preservation ON since ${status.selfPreservationSince ?? '?'}: ${status.expiredInstancesKept ?? 0} expired instances kept until ${status.selfPreservationEndsAt ?? '?'} at the latest\n` +
            `  (evict known-dead ones now with: switchyard instances evict SERVICE ID)\n`
        )
      } else {
        print('self-preservation off\n')
      }
    })
}
