import type { Command } from 'commander'
import { parseRegistryConfig, RegistrySettings } from '../../registry/config.js'
import { runRegistryServer } from '../../registry/server.js'
import { addSettingOptions, givenFlags } from '../settings-options.js'

export function addRegistryCommand(program: Command): void {
  const command = program.command('registry').description('run the service registry in the foreground (admin token from SWITCHYARD_ADMIN_TOKEN)')
  addSettingOptions(command, RegistrySettings).action(async (_options, self: Command) => {
    await runRegistryServer(parseRegistryConfig(givenFlags(self, RegistrySettings), process.env))
  })
}
