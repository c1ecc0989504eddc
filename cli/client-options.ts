import { Type } from '@sinclair/typebox'
import type { Command } from 'commander'
import { Option } from 'commander'
import { parseConfig, settingMeta } from '../core/config.js'
import { registryUrlSetting } from '../core/defaults.js'
import { RegistryClient } from '../registry/client/registry-client.js'
import { givenFlags } from './settings-options.js'

/** The registry setting of every command that talks to the registry, as components declare it. */
const ClientSettings = Type.Object({ registry: registryUrlSetting() })

/** The program's global --registry, from the same declaration (resolved by clientOptions, not commander). */
export function registryOption(): Option {
  const setting = ClientSettings.properties.registry
  const meta = settingMeta(setting)
  return new Option(`--${meta.flag} <urls>`, `${meta.description} (env ${meta.env}, default ${String(setting.default)})`)
}

/** The global options every registry client command reads. */
export interface ClientOptions {
  /** registry URLs, checked, comma-separated */
  registry: string
  token?: string
  json?: boolean
}

/** The global options, with --registry (or its env, or the default) checked: a bad URL is named. */
export function clientOptions(command: Command): ClientOptions {
  const options = command.optsWithGlobals<ClientOptions>()
  return { ...options, registry: parseConfig(ClientSettings, givenFlags(command, ClientSettings), process.env).registry }
}

/** A client that fails over between the registry URLs given (registry/client/registry-endpoints.ts). */
export function clientFrom(command: Command): { client: RegistryClient; options: ClientOptions } {
  const options = clientOptions(command)
  return { client: new RegistryClient({ url: options.registry, token: options.token }), options }
}

export function print(text: string): void {
  process.stdout.write(text)
}
