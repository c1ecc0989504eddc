import type { Command } from 'commander'
import { parseRegistryConfig, RegistrySettings } from '../../registry/config.js'
import { addSettingOptions, givenFlags } from '../settings-options.js'

export function addRegistryCommand(program: Command): void {
  const command = program.command('registry').description('run the service registry in the foreground (admin token from SWITCHYARD_ADMIN_TOKEN)')
  addSettingOptions(command, RegistrySettings).action(async (_options, self: Command) => {
    const settings = parseRegistryConfig(givenFlags(self, RegistrySettings), process.env)
    // Loaded only for this command: a router process carries no registry or broker code.
    const { runRegistryServer } = await import('../../registry/server.js')
    await runRegistryServer(settings)
  })
}
