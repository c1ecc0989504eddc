/**
 * The registry as the console holds it: what GET /v1/services answered, kept current by
 * the watch stream's changes. Pure functions (tested under test/console/); each change
 * replaces only the service it touches, so the views of the others are not redrawn.
 */
import { compareVersions } from '../../core/names.js'
import type { InstanceStatus, RegistryChange, RegistrySnapshot } from '../../core/registry-events.js'

export interface InstanceView {
  readonly id: string
  readonly version: string
  readonly host: string
  readonly port: number
  readonly status: InstanceStatus
  readonly metadata: Readonly<Record<string, string>>
  /** ms since the epoch (registry clock) */
  readonly registeredAt: number
  /** the last heartbeat the registry saw (ms); only REST answers carry it, never the watch stream */
  readonly lastHeartbeat: number | null
}

export interface ServiceView {
  readonly name: string
  readonly weights: Readonly<Record<string, number>>
  /** every version with a weight or an instance, in the order people read them (v1.9 < v1.10) */
  readonly versions: readonly string[]
  readonly instances: readonly InstanceView[]
}

export interface RegistryView {
  readonly revision: number
  readonly services: ReadonlyMap<string, ServiceView>
}

/** GET /v1/services (and GET /v1/services/:service, with its revision). */
export interface RestService {
  name: string
  weights: Record<string, number>
  instances: {
    id: string
    version: string
    host: string
    port: number
    status: InstanceStatus
    metadata: Record<string, string>
    registeredAt: string
    lastHeartbeat: string | null
  }[]
}

export interface RestServices {
  revision: number
  services: RestService[]
}

/** As the registry counts them: versions with weight, and versions with instances (at 0%). */
export function versionsOf(weights: Readonly<Record<string, number>>, instances: readonly { version: string }[]): string[] {
  const versions = new Set(Object.keys(weights).filter((version) => (weights[version] ?? 0) > 0))
  for (const instance of instances) versions.add(instance.version)
  return [...versions].sort(compareVersions)
}

function service(name: string, weights: Readonly<Record<string, number>>, instances: readonly InstanceView[]): ServiceView {
  return { name, weights, instances, versions: versionsOf(weights, instances) }
}

const ms = (iso: string | null): number | null => (iso === null ? null : Date.parse(iso))

export function serviceFromRest(rest: RestService): ServiceView {
  return service(
    rest.name,
    rest.weights,
    rest.instances.map((instance) => ({ ...instance, registeredAt: Date.parse(instance.registeredAt), lastHeartbeat: ms(instance.lastHeartbeat) }))
  )
}

export function fromRest(rest: RestServices): RegistryView {
  return { revision: rest.revision, services: new Map(rest.services.map((entry) => [entry.name, serviceFromRest(entry)])) }
}

/**
 * A watch snapshot replaces everything, but it has no heartbeats: instances already known
 * keep theirs, new ones count their registration as the first.
 */
export function fromSnapshot(snapshot: RegistrySnapshot, previous?: RegistryView): RegistryView {
  const services = new Map<string, ServiceView>()
  for (const record of snapshot.services) {
    const known = new Map(previous?.services.get(record.name)?.instances.map((instance) => [instance.id, instance.lastHeartbeat]))
    const instances = record.instances.map(({ service: _service, ...instance }) => ({ ...instance, lastHeartbeat: known.get(instance.id) ?? instance.registeredAt }))
    services.set(record.name, service(record.name, record.weights, instances))
  }
  return { revision: snapshot.revision, services }
}

/** One change of the watch stream; changes the view already holds are ignored. */
export function applyChange(view: RegistryView, change: RegistryChange): RegistryView {
  if (change.revision <= view.revision) return view
  const services = new Map(view.services)
  switch (change.type) {
    case 'instance-registered': {
      const { service: name, ...instance } = change.instance
      const current = services.get(name)
      const others = (current?.instances ?? []).filter((candidate) => candidate.id !== instance.id)
      // A first version's 100% arrives as its own weights-changed change.
      services.set(name, service(name, current?.weights ?? {}, [...others, { ...instance, lastHeartbeat: instance.registeredAt }]))
      break
    }
    case 'instance-status-changed': {
      const current = services.get(change.service)
      if (current) {
        const instances = current.instances.map((instance) => (instance.id === change.id ? { ...instance, status: change.status } : instance))
        services.set(change.service, service(current.name, current.weights, instances))
      }
      break
    }
    case 'instance-removed': {
      const current = services.get(change.service)
      if (current) {
        services.set(
          change.service,
          service(
            current.name,
            current.weights,
            current.instances.filter((instance) => instance.id !== change.id)
          )
        )
      }
      break
    }
    case 'weights-changed': {
      const current = services.get(change.service)
      services.set(change.service, service(change.service, change.weights, current?.instances ?? []))
      break
    }
    case 'rollout-changed':
      // Rollouts are kept beside the services (see the store); the revision still moves.
      return { revision: change.revision, services: view.services }
  }
  return { revision: change.revision, services }
}

/** Heartbeats from a fresh GET of one service, laid over the live view without changing its shape. */
export function withHeartbeats(view: RegistryView, rest: RestService): RegistryView {
  const current = view.services.get(rest.name)
  if (!current) return view
  const beats = new Map(rest.instances.map((instance) => [instance.id, ms(instance.lastHeartbeat)]))
  let changed = false
  const instances = current.instances.map((instance) => {
    const beat = beats.get(instance.id)
    if (beat === undefined || beat === instance.lastHeartbeat) return instance
    changed = true
    return { ...instance, lastHeartbeat: beat }
  })
  if (!changed) return view
  const services = new Map(view.services)
  services.set(rest.name, { ...current, instances })
  return { revision: view.revision, services }
}

export interface VersionSummary {
  version: string
  weight: number
  up: number
  draining: number
}

export function versionSummaries(view: ServiceView): VersionSummary[] {
  return view.versions.map((version) => {
    let up = 0
    let draining = 0
    for (const instance of view.instances) {
      if (instance.version !== version) continue
      if (instance.status === 'up') up++
      else draining++
    }
    return { version, weight: view.weights[version] ?? 0, up, draining }
  })
}
