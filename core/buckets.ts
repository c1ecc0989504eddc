import { TOTAL_BASIS_POINTS } from './weights.js'

/**
 * Sticky routing maths. A key hashes to a stable bucket in [0, 10000); versions own
 * consecutive bucket ranges sized by their weight in basis points, laid out in version
 * order. Growing the last (newest) version's weight only extends its range downwards,
 * so every key already on the canary stays there as it ramps up.
 */
export const BUCKET_COUNT = TOTAL_BASIS_POINTS

/** FNV-1a over UTF-16 code units, finished with murmur3's fmix32 for avalanche. */
export function hashKey(key: string): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  hash ^= hash >>> 16
  hash = Math.imul(hash, 0x85ebca6b)
  hash ^= hash >>> 13
  hash = Math.imul(hash, 0xc2b2ae35)
  hash ^= hash >>> 16
  return hash >>> 0
}

export function bucketOf(key: string): number {
  return hashKey(key) % BUCKET_COUNT
}

/**
 * Upper bounds of each version's bucket range: version i owns
 * [bounds[i-1], bounds[i]). Weights are basis points summing to BUCKET_COUNT.
 */
export function cumulativeBounds(weights: readonly number[]): Uint32Array {
  const bounds = new Uint32Array(weights.length)
  let total = 0
  for (let i = 0; i < weights.length; i++) {
    total += weights[i] as number
    bounds[i] = total
  }
  return bounds
}

/** Index of the range that holds `point`, for point in [0, bounds[last]). -1 when the total is 0. */
export function indexForPoint(bounds: Uint32Array, point: number): number {
  // Version counts are small (<= 64): a linear scan beats a binary search's branches.
  for (let i = 0; i < bounds.length; i++) {
    if (point < (bounds[i] as number)) return i
  }
  return -1
}
