import type { Command } from 'commander'
import { parseRouterSettings, RouterSettings } from '../../router/config.js'
import { runRouter } from '../../router/server.js'
import { addSettingOptions, givenFlags } from '../settings-options.js'

export function addRouterCommand(program: Command): void {
  const command = program
    .command('router')
    .description('run the HTTP router in the foreground: proxy on --port, admin (/healthz /readyz /metrics /routes) on --admin-port; reads the registry with SWITCHYARD_TOKEN')
  addSettingOptions(command, RouterSettings).action(async (_options, self: Command) => {
    await runRouter(parseRouterSettings(givenFlags(self, RouterSettings), process.env))
  })
}
