import { Option, type Command } from 'commander'

export function addLocalCommand(program: Command): void {
  program
    .command('local')
    .description(
      'run the whole mesh on this machine (what npm start does): registry, router and sample services; ports from SWITCHYARD_REGISTRY_PORT, SWITCHYARD_ROUTER_PORT, SWITCHYARD_ROUTER_ADMIN_PORT'
    )
    .addOption(
      new Option('--broker <kind>', 'broker of the message plane: memory (embedded) or rabbitmq (at AMQP_URL)')
        .choices(['memory', 'rabbitmq'])
        .env('SWITCHYARD_LOCAL_BROKER')
        .default('memory')
    )
    .action(async (options: { broker: 'memory' | 'rabbitmq' }) => {
      const { runLocalStack } = await import('../local-stack.js')
      await runLocalStack({ env: process.env, out: (text) => process.stdout.write(text), broker: options.broker })
    })
}
