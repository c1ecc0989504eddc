/** Number formatting for tables: fixed, readable, and "n/a" for what was not measured. */
export function fixed(value: number | undefined | null, digits = 2): string {
  if (value === undefined || value === null || !Number.isFinite(value)) return 'n/a'
  return value.toFixed(digits)
}

export function integer(value: number | undefined | null): string {
  if (value === undefined || value === null || !Number.isFinite(value)) return 'n/a'
  return Math.round(value).toLocaleString('en-US')
}

/** A ratio as "1.23x". */
export function times(value: number | undefined | null, digits = 2): string {
  if (value === undefined || value === null || !Number.isFinite(value)) return 'n/a'
  return `${value.toFixed(digits)}x`
}
