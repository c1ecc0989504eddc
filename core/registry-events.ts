/**
 * The registry's data model as routers see it: a snapshot, then a stream of typed
 * changes, each with the revision it produced. The registry journals exactly these
 * changes, and routers apply exactly these changes, so there is one model, not two.
 */
import type { RolloutState } from './rollout/rollout-machine.js'

export type InstanceStatus = 'up' | 'draining'

export interface InstanceRecord {
  readonly id: string
  readonly service: string
  readonly version: string
  readonly host: string
  readonly port: number
  readonly metadata: Readonly<Record<string, string>>
  readonly status: InstanceStatus
  /** ms since the epoch, from the registry's clock */
  readonly registeredAt: number
}

export interface ServiceRecord {
  readonly name: string
  /** percent per version as last set (versions left out are at 0) */
  readonly weights: Readonly<Record<string, number>>
  readonly instances: readonly InstanceRecord[]
}

export interface RegistrySnapshot {
  readonly revision: number
  readonly services: readonly ServiceRecord[]
}

export type RemovalReason = 'deregistered' | 'evicted'

export type RegistryChange =
  | { readonly type: 'instance-registered'; readonly revision: number; readonly at: number; readonly instance: InstanceRecord }
  | { readonly type: 'instance-status-changed'; readonly revision: number; readonly at: number; readonly service: string; readonly id: string; readonly status: InstanceStatus }
  | { readonly type: 'instance-removed'; readonly revision: number; readonly at: number; readonly service: string; readonly id: string; readonly reason: RemovalReason }
  | {
      readonly type: 'weights-changed'
      readonly revision: number
      readonly at: number
      readonly service: string
      readonly weights: Readonly<Record<string, number>>
      readonly previous: Readonly<Record<string, number>>
      /** who made the change: a token's name, never its value */
      readonly actor: string
    }
  | {
      /** a rollout's new state, journaled like any change so it survives a restart and reaches watchers */
      readonly type: 'rollout-changed'
      readonly revision: number
      readonly at: number
      readonly service: string
      readonly rollout: RolloutState
      /** what happened: started, step-passed, paused, rolled-back... */
      readonly event: string
      readonly actor: string
    }

export type RegistryChangeType = RegistryChange['type']
