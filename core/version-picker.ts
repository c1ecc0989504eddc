import { BUCKET_COUNT, indexForPoint } from './buckets.js'
import type { ServiceRoute, VersionRoute } from './route-table.js'

/**
 * Version choice, shared by the HTTP router and the message router. Each function
 * returns the chosen version or undefined when no version can take the request; none
 * allocates.
 *
 * When the configured choice has no instance, the request goes to the versions that
 * can take it, in proportion to their weights; `onFallback` hears of it so it can be
 * counted.
 */
export type FallbackListener<E> = (from: VersionRoute<E>) => void

/** `x-switchyard-version`: exactly that version, at any weight, if it has an instance. */
export function pickForced<E>(route: ServiceRoute<E>, version: string): VersionRoute<E> | undefined {
  return route.byName.get(version)
}

/** A sticky key's bucket: the version whose range holds it, by configured weight. */
export function pickSticky<E>(route: ServiceRoute<E>, bucket: number, onFallback?: FallbackListener<E>): VersionRoute<E> | undefined {
  const index = indexForPoint(route.bounds, bucket)
  const version = index < 0 ? undefined : route.versions[index]
  if (version !== undefined && version.endpoints.length > 0) return version
  if (version !== undefined) onFallback?.(version)
  if (route.availableTotal === 0) return undefined
  // Same bucket, laid over the versions that can serve: keys of healthy versions never move.
  const point = Math.floor((bucket * route.availableTotal) / BUCKET_COUNT)
  return route.available[indexForPoint(route.availableBounds, point)]
}

/** Smooth weighted round-robin: exact shares over every 10,000 picks. */
export function pickWeighted<E>(route: ServiceRoute<E>, onFallback?: FallbackListener<E>): VersionRoute<E> | undefined {
  const version = route.versions[route.roundRobin.next()]
  if (version === undefined) return undefined
  if (!route.fallbackActive || version.endpoints.length > 0) return version
  onFallback?.(version)
  return route.available[route.availableRoundRobin.next()]
}

/** Weighted random choice with the caller's source of randomness in [0, 1). */
export function pickRandom<E>(route: ServiceRoute<E>, random: () => number, onFallback?: FallbackListener<E>): VersionRoute<E> | undefined {
  return pickSticky(route, Math.floor(random() * BUCKET_COUNT), onFallback)
}
