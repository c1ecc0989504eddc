/** Small statistics over a handful of rounds or a few hundred samples. */

/** The median; NaN for no values. */
export function median(values: readonly number[]): number {
  const finite = values.filter((value) => Number.isFinite(value)).sort((a, b) => a - b)
  if (finite.length === 0) return NaN
  const middle = Math.floor(finite.length / 2)
  return finite.length % 2 === 1 ? (finite[middle] as number) : ((finite[middle - 1] as number) + (finite[middle] as number)) / 2
}

/** Nearest-rank quantile (q in [0, 1]); NaN for no values. */
export function quantile(values: readonly number[], q: number): number {
  const sorted = values.filter((value) => Number.isFinite(value)).sort((a, b) => a - b)
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number
}

/** Spread of rounds: (max - min) / median, so a reader sees how noisy a figure was. */
export function spread(values: readonly number[]): number {
  const finite = values.filter((value) => Number.isFinite(value))
  if (finite.length < 2) return 0
  const mid = median(finite)
  return mid === 0 ? NaN : (Math.max(...finite) - Math.min(...finite)) / mid
}

export function ratio(numerator: number, denominator: number): number {
  if (!Number.isFinite(numerator) || !Number.isFinite(denominator) || denominator === 0) return NaN
  return numerator / denominator
}
