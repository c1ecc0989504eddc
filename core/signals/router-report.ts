import type { VersionCounters } from './counters.js'

export type RouterKind = 'http' | 'messages'

/**
 * What a router tells the registry every second or so: who it is, what revision it has
 * applied, and its running totals per service and version since `startedAt`.
 */
export interface RouterReport {
  readonly id: string
  readonly kind: RouterKind
  /** where its admin endpoints answer (for operators and the console) */
  readonly adminUrl: string
  /** the registry revision of the routing table in force */
  readonly appliedRevision: number
  /** ms since the epoch when its counters started; a new value means they restarted */
  readonly startedAt: number
  readonly services: Readonly<Record<string, Readonly<Record<string, VersionCounters>>>>
}

/** A router as the registry lists it. */
export interface RouterView {
  id: string
  kind: RouterKind
  adminUrl: string
  appliedRevision: number
  /** the registry's revision minus the applied one */
  lag: number
  startedAt: number
  firstReportAt: number
  lastReportAt: number
  /** who reports for it: the token's name */
  reporter: string
}
