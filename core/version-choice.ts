import { bucketOf } from './buckets.js'
import type { ServiceRoute, VersionRoute } from './route-table.js'
import { pickForced, pickRandom, pickSticky, pickWeighted, type FallbackListener } from './version-picker.js'

/** How requests without a forced version or sticky key are spread over the versions. */
export type WeightedChoice = 'smooth-round-robin' | 'random'

/** The rule that chose a version. */
export type ChoiceReason = 'forced' | 'sticky' | 'weighted'

/**
 * The version choice of both routers, in the documented order: a forced version by name,
 * else the version whose bucket range holds the sticky key, else weighted choice. An empty
 * sticky key is no key. Allocates nothing.
 *
 * Returns undefined when the forced version does not exist, or when no version with weight
 * has an instance. A forced version is returned whatever its weight and instances: whether
 * it can take the request is the caller's to judge (an HTTP request needs an instance, a
 * message only a queue).
 */
export function chooseVersion<E>(
  route: ServiceRoute<E>,
  forced: string | undefined,
  stickyKey: string | undefined,
  strategy: WeightedChoice,
  random: () => number,
  onFallback?: FallbackListener<E>
): VersionRoute<E> | undefined {
  if (forced !== undefined) return pickForced(route, forced)
  if (stickyKey !== undefined && stickyKey !== '') return pickSticky(route, bucketOf(stickyKey), onFallback)
  return strategy === 'random' ? pickRandom(route, random, onFallback) : pickWeighted(route, onFallback)
}

/** Which rule `chooseVersion` applies to these inputs. */
export function choiceReason(forced: string | undefined, stickyKey: string | undefined): ChoiceReason {
  if (forced !== undefined) return 'forced'
  return stickyKey !== undefined && stickyKey !== '' ? 'sticky' : 'weighted'
}
