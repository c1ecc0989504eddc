import type { Command } from 'commander'
import { runLocalStack } from '../local-stack.js'

export function addLocalCommand(program: Command): void {
  program
    .command('local')
    .description(
      'run the whole mesh on this machine (what npm start does): registry, router and sample services; ports from SWITCHYARD_REGISTRY_PORT, SWITCHYARD_ROUTER_PORT, SWITCHYARD_ROUTER_ADMIN_PORT'
    )
    .action(async () => {
      await runLocalStack({ env: process.env, out: (text) => process.stdout.write(text) })
    })
}
