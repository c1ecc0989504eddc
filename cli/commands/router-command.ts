import type { Command } from 'commander'
import { parseRouterSettings, RouterSettings } from '../../router/config.js'
import { workerCount } from '../../router/workers/worker-count.js'
import { addSettingOptions, givenFlags } from '../settings-options.js'

export function addRouterCommand(program: Command): void {
  const command = program
    .command('router')
    .description('run the HTTP router in the foreground: proxy on --port, admin (/healthz /readyz /metrics /routes) on --admin-port; reads the registry with SWITCHYARD_TOKEN')
  addSettingOptions(command, RouterSettings).action(async (_options, self: Command) => {
    const settings = parseRouterSettings(givenFlags(self, RouterSettings), process.env)
    // Loaded only for this command: a router process carries no registry or broker code.
    if (workerCount(settings.workers) > 1) {
      const { runRouterPrimary } = await import('../../router/workers/primary.js')
      await runRouterPrimary(settings)
      return
    }
    const { runRouter } = await import('../../router/server.js')
    await runRouter(settings)
  })
}
