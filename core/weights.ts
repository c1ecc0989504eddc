import { SwitchyardError } from './errors.js'
import { compareVersions, isValidName } from './names.js'

/** Weights as the API speaks them: percent per version, 0..100 with at most 2 decimals. */
export type Weights = Readonly<Record<string, number>>

/**
 * Inside switchyard weights are integer basis points (1/100 of a percent), so 100% is
 * exactly 10,000 and sums never suffer from floating point. Buckets use the same unit.
 */
export const TOTAL_BASIS_POINTS = 10_000
export const MAX_VERSIONS = 64

export function percentToBasisPoints(percent: number): number {
  return Math.round(percent * 100)
}

export function basisPointsToPercent(basisPoints: number): number {
  return basisPoints / 100
}

/**
 * Checks a complete new split as an operator sends it. Throws a SwitchyardError naming
 * the first rule broken; returns the split in basis points, versions in layout order.
 */
export function parseWeights(input: unknown): Map<string, number> {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new SwitchyardError('VALIDATION_FAILED', 'weights must be an object mapping version names to percentages')
  }
  const entries = Object.entries(input as Record<string, unknown>)
  if (entries.length === 0) {
    throw new SwitchyardError('WEIGHTS_EMPTY', 'weights must name at least one version')
  }
  if (entries.length > MAX_VERSIONS) {
    throw new SwitchyardError('TOO_MANY_VERSIONS', `weights name ${entries.length} versions; at most ${MAX_VERSIONS} are allowed`)
  }
  const parsed = new Map<string, number>()
  let sum = 0
  for (const [version, value] of entries) {
    if (!isValidName(version)) {
      throw new SwitchyardError(
        'INVALID_NAME',
        `version name ${JSON.stringify(version.slice(0, 80))} is invalid: use 1-64 characters of letters, digits, '.', '_' or '-', starting with a letter or digit`
      )
    }
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw new SwitchyardError('WEIGHT_NOT_A_NUMBER', `weight of ${version} must be a number, got ${JSON.stringify(value)}`)
    }
    if (value < 0 || value > 100) {
      throw new SwitchyardError('WEIGHT_OUT_OF_RANGE', `weight of ${version} is ${value}; weights are percentages from 0 to 100`)
    }
    const basisPoints = percentToBasisPoints(value)
    // Exact: the double nearest to a 2-decimal literal (33.33) is also basisPoints / 100.
    if (basisPoints / 100 !== value) {
      throw new SwitchyardError('WEIGHT_TOO_PRECISE', `weight of ${version} is ${value}; at most 2 decimals are allowed`)
    }
    parsed.set(version, basisPoints)
    sum += basisPoints
  }
  if (sum !== TOTAL_BASIS_POINTS) {
    throw new SwitchyardError('WEIGHTS_SUM_NOT_100', `weights add up to ${basisPointsToPercent(sum)}; they must add up to exactly 100`)
  }
  return sortedByVersion(parsed)
}

/** A copy of a version map in layout order (see compareVersions). */
export function sortedByVersion<T>(map: ReadonlyMap<string, T>): Map<string, T> {
  return new Map([...map.entries()].sort(([a], [b]) => compareVersions(a, b)))
}

export function weightsFromBasisPoints(map: ReadonlyMap<string, number>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [version, basisPoints] of sortedByVersion(map)) out[version] = basisPointsToPercent(basisPoints)
  return out
}

export function weightsToBasisPoints(weights: Weights): Map<string, number> {
  const out = new Map<string, number>()
  for (const [version, percent] of Object.entries(weights)) out.set(version, percentToBasisPoints(percent))
  return sortedByVersion(out)
}
