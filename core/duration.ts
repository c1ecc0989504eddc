import { SwitchyardError } from './errors.js'

const UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/**
 * "500ms", "30s", "2m", "1h" or a bare number of `bareUnit`s, to ms. Strict on purpose:
 * "30 s", "1m30s" and "-5s" are refused with VALIDATION_FAILED rather than guessed at.
 */
export function parseDuration(text: string, what: string, bareUnit: 'ms' | 's' = 's'): number {
  const match = /^(\d{1,9}(?:\.\d{1,3})?)(ms|s|m|h)?$/.exec(text)
  if (!match) throw new SwitchyardError('VALIDATION_FAILED', `${what} must be a duration such as 500ms, 30s, 2m or 1h; got ${JSON.stringify(text.slice(0, 40))}`)
  return Math.round(Number(match[1]) * (UNITS[match[2] ?? bareUnit] as number))
}
