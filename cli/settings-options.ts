import { Option, type Command } from 'commander'
import type { TObject, TSchema } from '@sinclair/typebox'
import { settingMeta } from '../core/config.js'

/**
 * Adds one CLI option per setting of a component. Defaults and env are shown in help
 * but resolved by core/config.ts, so flag > env > default holds in exactly one place.
 * Settings whose flag the program already has (--registry, --token) use that one.
 */
export function addSettingOptions(command: Command, settings: TObject): Command {
  const inherited = new Set(command.parent?.options.map((option) => option.long) ?? [])
  for (const property of Object.values(settings.properties) as TSchema[]) {
    const meta = settingMeta(property)
    if (inherited.has(`--${meta.flag}`)) continue
    const fallback = property.default === undefined ? '' : `, default ${JSON.stringify(property.default)}`
    command.addOption(new Option(`--${meta.flag} <value>`, `${meta.description} (env ${meta.env}${fallback})`))
  }
  return command
}

/** The flags given on the command line for these settings (not env, not defaults). */
export function givenFlags(command: Command, settings: TObject): Record<string, unknown> {
  const flags: Record<string, unknown> = {}
  const all = command.optsWithGlobals()
  for (const key of Object.keys(settings.properties)) {
    if (command.getOptionValueSourceWithGlobals(key) === 'cli') flags[key] = all[key]
  }
  return flags
}
