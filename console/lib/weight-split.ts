/**
 * The weight editor's arithmetic, in basis points (1/100 of a percent) as the registry
 * counts, so a split always adds up to exactly 10,000 and is sent with at most 2 decimals.
 */
import { TOTAL_BASIS_POINTS } from '../../core/weights.js'

export type Split = readonly number[]

export function splitOf(versions: readonly string[], weights: Readonly<Record<string, number>>): number[] {
  return versions.map((version) => Math.round((weights[version] ?? 0) * 100))
}

export function weightsOf(versions: readonly string[], split: Split): Record<string, number> {
  return Object.fromEntries(versions.map((version, index) => [version, (split[index] ?? 0) / 100]))
}

/**
 * Sets one version's share and spreads the rest over the others in proportion to what
 * they had (evenly when they had nothing), largest remainders first: the total stays
 * exactly 100% whatever is typed or dragged.
 */
export function rebalance(split: Split, index: number, basisPoints: number): number[] {
  const value = Math.min(TOTAL_BASIS_POINTS, Math.max(0, Math.round(basisPoints)))
  const others = split.map((_, i) => i).filter((i) => i !== index)
  const next = [...split]
  next[index] = value
  if (others.length === 0) {
    next[index] = TOTAL_BASIS_POINTS
    return next
  }
  const rest = TOTAL_BASIS_POINTS - value
  const before = others.reduce((sum, i) => sum + (split[i] ?? 0), 0)
  const exact = others.map((i) => (before === 0 ? rest / others.length : (rest * (split[i] ?? 0)) / before))
  const floors = exact.map(Math.floor)
  let left = rest - floors.reduce((sum, share) => sum + share, 0)
  const order = exact.map((share, k) => ({ k, remainder: share - (floors[k] as number) })).sort((a, b) => b.remainder - a.remainder || a.k - b.k)
  for (const { k } of order) {
    if (left <= 0) break
    floors[k] = (floors[k] as number) + 1
    left--
  }
  others.forEach((i, k) => (next[i] = floors[k] as number))
  return next
}

/** A rollback: the canary's whole share goes to its baseline, the other versions keep theirs. */
export function rollBack(versions: readonly string[], split: Split, canary: string, baseline: string): number[] {
  const share = split[versions.indexOf(canary)] ?? 0
  return versions.map((version, i) => (version === canary ? 0 : version === baseline ? (split[i] ?? 0) + share : (split[i] ?? 0)))
}

/** A promotion: the canary gets everything. */
export function promote(versions: readonly string[], canary: string): number[] {
  return versions.map((version) => (version === canary ? TOTAL_BASIS_POINTS : 0))
}

export const total = (split: Split): number => split.reduce((sum, points) => sum + points, 0)

export const sameSplit = (a: Split, b: Split): boolean => a.length === b.length && a.every((points, i) => points === b[i])

/** The version most weight goes to (the baseline of a canary), first in order on a tie. */
export function heaviest(versions: readonly string[], split: Split): string | undefined {
  let best: number | undefined
  versions.forEach((_, i) => {
    if (best === undefined || (split[i] ?? 0) > (split[best] ?? 0)) best = i
  })
  return best === undefined ? undefined : versions[best]
}

/** What a change does, in words: "v1.3 100% → 90%, v1.4 0% → 10%" (unchanged versions left out). */
export function describeChange(versions: readonly string[], from: Split, to: Split): string {
  const parts = versions
    .filter((_, i) => from[i] !== to[i])
    .map((version) => `${version} ${(from[versions.indexOf(version)] ?? 0) / 100}% → ${(to[versions.indexOf(version)] ?? 0) / 100}%`)
  return parts.length === 0 ? 'no change' : parts.join(', ')
}
