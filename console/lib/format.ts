/** How the console writes figures: short, fixed units, never "NaN". */

export function percent(value: number | null | undefined, digits = 1): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '–'
  return `${Number(value.toFixed(digits))}%`
}

export function rate(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '–'
  if (value >= 100) return Math.round(value).toLocaleString('en-US')
  return String(Number(value.toFixed(value >= 10 ? 1 : 2)))
}

export function millis(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '–'
  if (value >= 1000) return `${Number((value / 1000).toFixed(2))} s`
  return `${Number(value.toFixed(value >= 10 ? 0 : 1))} ms`
}

export function count(value: number): string {
  return value.toLocaleString('en-US')
}

/** "4 s", "3 min", "2 h", "5 d": how long ago, from two ms timestamps. */
export function age(fromMs: number | null, nowMs: number): string {
  if (fromMs === null) return '–'
  const seconds = Math.max(0, Math.round((nowMs - fromMs) / 1000))
  if (seconds < 120) return `${seconds} s`
  const minutes = Math.round(seconds / 60)
  if (minutes < 120) return `${minutes} min`
  const hours = Math.round(minutes / 60)
  if (hours < 48) return `${hours} h`
  return `${Math.round(hours / 24)} d`
}

/** 2026-01-01 12:00:05 in the browser's time zone. */
export function timestamp(ms: number): string {
  const date = new Date(ms)
  const pad = (n: number) => String(n).padStart(2, '0')
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
}

/** v1.3=90 v1.4=10, the CLI's way of writing a split. */
export function splitText(weights: Readonly<Record<string, number>>): string {
  const entries = Object.entries(weights)
  return entries.length === 0 ? '(none)' : entries.map(([version, weight]) => `${version}=${weight}`).join(' ')
}
