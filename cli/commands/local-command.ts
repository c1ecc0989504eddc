import { Option, type Command } from 'commander'
import { UsageError } from '../usage-error.js'

export function addLocalCommand(program: Command): void {
  program
    .command('local')
    .description(
      'run the whole mesh on this machine (what npm start does): registry, router and sample services; ports from SWITCHYARD_REGISTRY_PORT, SWITCHYARD_ROUTER_PORT, SWITCHYARD_ROUTER_ADMIN_PORT, SWITCHYARD_MESSAGE_ROUTER_ADMIN_PORT'
    )
    .addOption(
      new Option('--broker <kind>', 'broker of the message plane: memory (embedded) or rabbitmq (at AMQP_URL)')
        .choices(['memory', 'rabbitmq'])
        .env('SWITCHYARD_LOCAL_BROKER')
        .default('memory')
    )
    .addOption(new Option('--load <rps>', 'send demo traffic through the router: requests per second to /api/hello (a fifth as orders)').env('SWITCHYARD_LOCAL_LOAD').default('0'))
    .action(async (options: { broker: 'memory' | 'rabbitmq'; load: string }) => {
      const load = Number(options.load)
      if (!Number.isFinite(load) || load < 0 || load > 2000) throw new UsageError(`--load must be a rate from 0 to 2000 requests per second, got "${options.load}"`)
      const { runLocalStack } = await import('../local-stack.js')
      await runLocalStack({ env: process.env, out: (text) => process.stdout.write(text), broker: options.broker, load })
    })
}
