#!/usr/bin/env node
import { Command, CommanderError, Option } from 'commander'
import { ConfigError } from '../core/config.js'
import { RegistryRequestError } from '../registry/client/registry-client.js'
import { addRegistryClientCommands } from './commands/registry-client-commands.js'
import { addRolloutCommands } from './commands/rollout-commands.js'
import { addInstanceCommands } from './commands/instance-commands.js'
import { addLoadCommand } from './commands/load-command.js'
import { addRegistryCommand } from './commands/registry-command.js'
import { addRouterCommand } from './commands/router-command.js'
import { addLocalCommand } from './commands/local-command.js'
import { addMessageRouterCommand } from './commands/message-router-command.js'
import { UsageError } from './usage-error.js'
import { registryOption } from './client-options.js'

export function buildProgram(): Command {
  const program = new Command('switchyard')
    .description('switchyard: a weighted traffic router for canary releases of HTTP services and queue consumers')
    .addOption(registryOption())
    .addOption(new Option('--token <token>', 'bearer token for the registry (prefer the env variable: flags show up in ps)').env('SWITCHYARD_TOKEN'))
    .option('--json', 'print JSON instead of tables')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
  addRegistryCommand(program)
  addRouterCommand(program)
  addMessageRouterCommand(program)
  addLocalCommand(program)
  addRegistryClientCommands(program)
  addRolloutCommands(program)
  addInstanceCommands(program)
  addLoadCommand(program)
  return program
}

/** Every failure is one line on stderr and a non-zero exit: 2 for usage, 1 for the rest. */
export function describeFailure(error: unknown): { message: string; exitCode: number } {
  if (error instanceof UsageError) return { message: error.message, exitCode: 2 }
  if (error instanceof ConfigError) return { message: error.problems.join('; '), exitCode: 2 }
  if (error instanceof RegistryRequestError) {
    // Status 0: no answer (REGISTRY_UNREACHABLE, or REGISTRY_OUTCOME_UNKNOWN for a write that may have landed).
    return { message: error.status === 0 ? `${error.code}: ${error.message}` : `${error.code} (${error.status}): ${error.message}`, exitCode: 1 }
  }
  return { message: error instanceof Error ? error.message.split('\n').join('; ') : String(error), exitCode: 1 }
}

async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv)
  } catch (error) {
    if (error instanceof CommanderError) {
      process.exitCode = error.exitCode
      return
    }
    const { message, exitCode } = describeFailure(error)
    process.stderr.write(`switchyard: ${message}\n`)
    process.exitCode = exitCode
  }
}

await main(process.argv)
