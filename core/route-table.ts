import { cumulativeBounds } from './buckets.js'
import type { InstanceRecord } from './registry-events.js'
import { knownVersions, type RegistryModel, type ServiceModel } from './registry-model.js'
import { SmoothWeightedRoundRobin } from './smooth-weighted-round-robin.js'

/**
 * The routing table: what a router knows at one registry revision, laid out for the hot
 * path. Tables are immutable and swapped whole; the only mutable parts are the endpoint
 * objects (in-flight counts, outlier state), which outlive tables, and each service's
 * round-robin cursor.
 *
 * `E` is the router's endpoint type (it holds the connection pool); core never does I/O.
 */
export interface VersionRoute<E> {
  readonly service: string
  readonly name: string
  /** configured weight in basis points */
  readonly weight: number
  /** instances with status up, in id order */
  readonly endpoints: readonly E[]
}

export interface ServiceRoute<E> {
  readonly name: string
  /** every known version in layout order (weight 0 included: reachable when forced) */
  readonly versions: readonly VersionRoute<E>[]
  readonly byName: ReadonlyMap<string, VersionRoute<E>>
  /** bucket layout by configured weights: sticky keys land here first */
  readonly bounds: Uint32Array
  /** versions that can take traffic now (weight > 0 and at least one instance) */
  readonly available: readonly VersionRoute<E>[]
  /** bucket layout over `available`, its total being the sum of their weights */
  readonly availableBounds: Uint32Array
  readonly availableTotal: number
  /** true when a version with weight has no instance and its share goes to the others */
  readonly fallbackActive: boolean
  /** weighted choice over `versions` by configured weight */
  readonly roundRobin: SmoothWeightedRoundRobin
  /** weighted choice over `available`, used when the configured pick has no instance */
  readonly availableRoundRobin: SmoothWeightedRoundRobin
}

export interface RouteTable<E> {
  readonly revision: number
  readonly services: ReadonlyMap<string, ServiceRoute<E>>
}

export function emptyTable<E>(): RouteTable<E> {
  return { revision: 0, services: new Map() }
}

export function buildServiceRoute<E>(service: ServiceModel, endpointFor: (instance: InstanceRecord) => E): ServiceRoute<E> {
  const upByVersion = new Map<string, InstanceRecord[]>()
  for (const instance of service.instances.values()) {
    if (instance.status !== 'up') continue
    const list = upByVersion.get(instance.version)
    if (list) list.push(instance)
    else upByVersion.set(instance.version, [instance])
  }
  const versions = knownVersions(service).map((name): VersionRoute<E> => {
    const instances = (upByVersion.get(name) ?? []).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    return { service: service.name, name, weight: service.weights.get(name) ?? 0, endpoints: instances.map(endpointFor) }
  })
  const available = versions.filter((version) => version.weight > 0 && version.endpoints.length > 0)
  const availableWeights = available.map((version) => version.weight)
  return {
    name: service.name,
    versions,
    byName: new Map(versions.map((version) => [version.name, version])),
    bounds: cumulativeBounds(versions.map((version) => version.weight)),
    available,
    availableBounds: cumulativeBounds(availableWeights),
    availableTotal: availableWeights.reduce((sum, weight) => sum + weight, 0),
    fallbackActive: versions.some((version) => version.weight > 0 && version.endpoints.length === 0),
    roundRobin: new SmoothWeightedRoundRobin(versions.map((version) => version.weight)),
    availableRoundRobin: new SmoothWeightedRoundRobin(availableWeights)
  }
}

/**
 * A new table from the registry model, reusing the routes of services that did not
 * change (`changed` undefined rebuilds everything).
 */
export function buildTable<E>(model: RegistryModel, endpointFor: (instance: InstanceRecord) => E, previous?: RouteTable<E>, changed?: ReadonlySet<string>): RouteTable<E> {
  const services = new Map<string, ServiceRoute<E>>()
  for (const [name, service] of model.services) {
    const reusable = changed && !changed.has(name) ? previous?.services.get(name) : undefined
    services.set(name, reusable ?? buildServiceRoute(service, endpointFor))
  }
  return { revision: model.revision, services }
}
