import { Type, type Static, type TObject, type TSchema } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'

/**
 * Component settings are declared once, as a TypeBox object whose properties carry
 * `flag`, `env` and `default`. The CLI builds its options from the same declaration, and
 * `parseConfig` resolves each value (flag, then env, then default) and validates it, so
 * a process either starts with a valid config or not at all.
 */
export interface SettingMeta {
  /** long CLI flag without the dashes, e.g. `lease-seconds` */
  flag: string
  env: string
  description: string
}

export function settingMeta(schema: TSchema): SettingMeta {
  const { flag, env, description } = schema as unknown as Partial<SettingMeta>
  if (!flag || !env || !description) throw new Error('a setting must declare flag, env and description')
  return { flag, env, description }
}

export class ConfigError extends Error {
  readonly problems: readonly string[]
  constructor(problems: readonly string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`)
    this.name = 'ConfigError'
    this.problems = problems
  }
}

/**
 * @param flags values given on the command line, keyed by property name
 * @param env the process environment (or any plain record of strings)
 */
export function parseConfig<T extends TObject>(schema: T, flags: Readonly<Record<string, unknown>>, env: Readonly<Record<string, string | undefined>>): Static<T> {
  const out: Record<string, unknown> = {}
  const problems: string[] = []
  const invalid = new Set<string>()
  for (const [key, property] of Object.entries(schema.properties) as [string, TSchema][]) {
    const meta = settingMeta(property)
    const fromFlag = flags[key]
    const fromEnv = env[meta.env]
    const raw = fromFlag !== undefined ? fromFlag : fromEnv !== undefined && fromEnv !== '' ? fromEnv : property.default
    if (raw === undefined) continue
    const value = Value.Convert(property, raw)
    if (!Value.Check(property, value)) {
      const first = Value.Errors(property, value).First()
      problems.push(`${source(fromFlag, fromEnv, meta)}: ${first?.message ?? 'invalid value'} (got ${JSON.stringify(raw)})`)
      invalid.add(key)
      continue
    }
    try {
      // A setting declared as a Transform checks what a schema cannot say (which entry of a
      // list is wrong) in its Decode, and its message becomes the problem.
      out[key] = Value.Decode(property, value)
    } catch (error) {
      problems.push(`${source(fromFlag, fromEnv, meta)}: ${(error as Error).message}`)
      invalid.add(key)
    }
  }
  for (const key of schema.required ?? []) {
    if (!(key in out) && !invalid.has(key)) {
      const meta = settingMeta(schema.properties[key] as TSchema)
      problems.push(`--${meta.flag} (or ${meta.env}) is required`)
    }
  }
  if (problems.length > 0) throw new ConfigError(problems)
  return out as Static<T>
}

/** Where a value came from, as a problem names it. */
function source(fromFlag: unknown, fromEnv: string | undefined, meta: SettingMeta): string {
  return fromFlag !== undefined ? `--${meta.flag}` : fromEnv !== undefined && fromEnv !== '' ? meta.env : `default of --${meta.flag}`
}

/** The log level setting every component shares (pino levels). */
export const logLevelSetting = () =>
  Type.Union([Type.Literal('fatal'), Type.Literal('error'), Type.Literal('warn'), Type.Literal('info'), Type.Literal('debug'), Type.Literal('trace'), Type.Literal('silent')], {
    default: 'info',
    flag: 'log-level',
    env: 'SWITCHYARD_LOG_LEVEL',
    description: 'log level'
  })
