import type { InstanceRecord, RegistryChange, RegistrySnapshot, ServiceRecord } from './registry-events.js'
import { SwitchyardError } from './errors.js'
import { compareVersions } from './names.js'
import { basisPointsToPercent, sortedByVersion, weightsToBasisPoints } from './weights.js'

export interface ServiceModel {
  readonly name: string
  /** non-zero weights in basis points, in version order */
  weights: Map<string, number>
  readonly instances: Map<string, InstanceRecord>
}

/**
 * The registry's state, rebuilt by applying changes in revision order. The registry
 * keeps one as its truth (and replays its journal into it); routers keep one as their
 * view and derive immutable routing tables from it.
 */
export class RegistryModel {
  revision = 0
  readonly services = new Map<string, ServiceModel>()

  static fromSnapshot(snapshot: RegistrySnapshot): RegistryModel {
    const model = new RegistryModel()
    model.revision = snapshot.revision
    for (const service of snapshot.services) {
      const entry = model.serviceFor(service.name)
      entry.weights = nonZero(weightsToBasisPoints(service.weights))
      for (const instance of service.instances) entry.instances.set(instance.id, instance)
    }
    return model
  }

  /** Applies one change; changes must arrive in revision order with no gaps. */
  apply(change: RegistryChange): void {
    if (change.revision !== this.revision + 1) {
      throw new SwitchyardError('REVISION_GAP', `change at revision ${change.revision} does not follow revision ${this.revision}`)
    }
    switch (change.type) {
      case 'instance-registered': {
        this.serviceFor(change.instance.service).instances.set(change.instance.id, change.instance)
        break
      }
      case 'instance-status-changed': {
        const instances = this.services.get(change.service)?.instances
        const current = instances?.get(change.id)
        if (instances && current) instances.set(change.id, { ...current, status: change.status })
        break
      }
      case 'instance-removed': {
        this.services.get(change.service)?.instances.delete(change.id)
        break
      }
      case 'weights-changed': {
        this.serviceFor(change.service).weights = nonZero(weightsToBasisPoints(change.weights))
        break
      }
      case 'rollout-changed':
        // Rollouts are the control plane's business; routers only follow the weights they write.
        break
    }
    this.revision = change.revision
  }

  /**
   * Applies `change` and returns what takes it back. A registry replica on a shared store
   * applies its drafts before the store has taken them; when another replica wrote first
   * it undoes them (in reverse order) instead of rebuilding the whole model, which cost
   * O(instances) per conflict.
   */
  applyUndoable(change: RegistryChange): () => void {
    const revision = this.revision
    let undo: () => void
    switch (change.type) {
      case 'instance-registered':
        undo = this.restoreInstance(change.instance.service, change.instance.id)
        break
      case 'instance-status-changed':
      case 'instance-removed':
        undo = this.restoreInstance(change.service, change.id)
        break
      case 'weights-changed': {
        const existed = this.services.get(change.service)
        const weights = existed?.weights
        undo = () => {
          if (existed && weights) existed.weights = weights
          else this.services.delete(change.service)
        }
        break
      }
      case 'rollout-changed':
        undo = () => {}
        break
    }
    this.apply(change)
    return () => {
      undo()
      this.revision = revision
    }
  }

  private restoreInstance(name: string, id: string): () => void {
    const service = this.services.get(name)
    const previous = service?.instances.get(id)
    return () => {
      if (!service) {
        this.services.delete(name)
        return
      }
      if (previous) service.instances.set(id, previous)
      else service.instances.delete(id)
    }
  }

  serviceFor(name: string): ServiceModel {
    let service = this.services.get(name)
    if (!service) {
      service = { name, weights: new Map(), instances: new Map() }
      this.services.set(name, service)
    }
    return service
  }

  findInstance(service: string, id: string): InstanceRecord | undefined {
    return this.services.get(service)?.instances.get(id)
  }

  instanceCount(): number {
    let count = 0
    for (const service of this.services.values()) count += service.instances.size
    return count
  }

  snapshot(): RegistrySnapshot {
    const services = [...this.services.keys()].sort().map((name) => serviceRecord(this.services.get(name) as ServiceModel))
    return { revision: this.revision, services }
  }
}

/** Versions a service knows: those with weight, and those with instances (at 0%). */
export function knownVersions(service: ServiceModel): string[] {
  const versions = new Set(service.weights.keys())
  for (const instance of service.instances.values()) versions.add(instance.version)
  return [...versions].sort(compareVersions)
}

/** The weights of every known version in percent, 0 for versions left out. */
export function weightsOf(service: ServiceModel): Record<string, number> {
  const out: Record<string, number> = {}
  for (const version of knownVersions(service)) out[version] = basisPointsToPercent(service.weights.get(version) ?? 0)
  return out
}

export function serviceRecord(service: ServiceModel): ServiceRecord {
  const instances = [...service.instances.values()].sort((a, b) => compareVersions(a.version, b.version) || (a.id < b.id ? -1 : 1))
  return { name: service.name, weights: weightsOf(service), instances }
}

function nonZero(weights: Map<string, number>): Map<string, number> {
  return sortedByVersion(new Map([...weights].filter(([, w]) => w > 0)))
}
