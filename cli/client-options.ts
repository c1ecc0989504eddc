import type { Command } from 'commander'
import { RegistryClient } from '../registry/client/registry-client.js'

/** The global options every registry client command reads. */
export interface ClientOptions {
  registry: string
  token?: string
  json?: boolean
}

export function clientFrom(command: Command): { client: RegistryClient; options: ClientOptions } {
  const options = command.optsWithGlobals<ClientOptions>()
  return { client: new RegistryClient({ url: options.registry, token: options.token }), options }
}

export function print(text: string): void {
  process.stdout.write(text)
}
