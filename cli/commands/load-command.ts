import type { Command } from 'commander'
import { print } from '../client-options.js'
import { durationOption } from '../duration-option.js'
import { describeLoad, LoadGenerator } from '../load-generator.js'
import { UsageError } from '../usage-error.js'

export function addLoadCommand(program: Command): void {
  program
    .command('load')
    .argument('<url>', 'where to send requests, e.g. http://127.0.0.1:8080/api/hello')
    .option('--rps <n>', 'requests per second', '50')
    .option('--duration <duration>', 'stop after this long (default: until Ctrl-C)')
    .option('-X, --method <method>', 'GET, POST or PUT', 'GET')
    .option('-H, --header <header...>', 'extra header "name: value" (repeatable)')
    .option('-d, --data <body>', 'request body (sets content-type: application/json unless given)')
    .description('send a steady stream of requests (for demos and rollouts on a quiet machine; 127.0.0.1 by default)')
    .action(async (url: string, options: { rps: string; duration?: string; method: string; header?: string[]; data?: string }) => {
      const rps = Number(options.rps)
      if (!Number.isFinite(rps) || rps <= 0 || rps > 10_000) throw new UsageError(`--rps must be a number above 0 and at most 10000, got "${options.rps}"`)
      if (!/^https?:\/\//.test(url)) throw new UsageError(`the URL must start with http:// or https://, got "${url}"`)
      const method = options.method.toUpperCase()
      if (method !== 'GET' && method !== 'POST' && method !== 'PUT') throw new UsageError(`--method must be GET, POST or PUT, got "${options.method}"`)
      const headers: Record<string, string> = {}
      for (const header of options.header ?? []) {
        const match = /^([^:\s]+):\s*(.*)$/.exec(header)
        if (!match) throw new UsageError(`--header must be "name: value", got "${header}"`)
        headers[(match[1] as string).toLowerCase()] = match[2] as string
      }
      if (options.data !== undefined) headers['content-type'] ??= 'application/json'
      const generator = new LoadGenerator({
        url,
        rps,
        method,
        headers,
        body: options.data,
        durationMs: options.duration === undefined ? undefined : durationOption(options.duration, '--duration'),
        maxInFlight: Math.max(16, Math.ceil(rps)),
        onSecond: (stats) => print(describeLoad(stats) + '\n')
      })
      const stop = () => void generator.stop()
      process.once('SIGINT', stop)
      process.once('SIGTERM', stop)
      await generator.run()
      process.off('SIGINT', stop)
      process.off('SIGTERM', stop)
      print(describeLoad(generator.stats) + '\n')
    })
}
