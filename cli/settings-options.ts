import { Option, type Command } from 'commander'
import type { TObject, TSchema } from '@sinclair/typebox'
import { settingMeta } from '../core/config.js'

/**
 * Adds one CLI option per setting of a component. Defaults and env are shown in help
 * but resolved by core/config.ts, so flag > env > default holds in exactly one place.
 */
export function addSettingOptions(command: Command, settings: TObject): Command {
  for (const property of Object.values(settings.properties) as TSchema[]) {
    const meta = settingMeta(property)
    const fallback = property.default === undefined ? '' : `, default ${JSON.stringify(property.default)}`
    command.addOption(new Option(`--${meta.flag} <value>`, `${meta.description} (env ${meta.env}${fallback})`))
  }
  return command
}
