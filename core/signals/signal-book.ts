import { SwitchyardError } from '../errors.js'
import { addCounters, counterDelta, emptyCounters, isZero, type VersionCounters } from './counters.js'
import { figuresOf, type ServiceSignals } from './figures.js'
import type { RouterReport, RouterView } from './router-report.js'

export interface SignalBookOptions {
  /** ms since the epoch */
  clock: () => number
  /** a router silent for this long is dropped from the list and from every wait */
  routerTimeoutMs: number
  /** the longest window a query may ask for; older deltas are forgotten */
  maxWindowMs: number
}

interface RouterEntry {
  view: RouterView
  /** the last running totals per "service\nversion", to turn the next report into deltas */
  totals: Map<string, VersionCounters>
}

/** One second of one version's traffic, summed over every router. */
interface Slot {
  second: number
  counters: VersionCounters
}

/**
 * What every router reported, kept as per-second deltas summed over routers, so a window
 * query is a sum over at most maxWindowMs/1000 slots whatever the number of routers. A
 * lost report costs nothing (the next one carries the running total); a restarted router
 * (new startedAt, or totals that went down) starts from zero; a router's first report to
 * this book only sets its baseline (routers report once on start so nothing is lost).
 * Memory is spent only on versions with traffic: an idle second stores nothing.
 */
export class SignalBook {
  private readonly routers = new Map<string, RouterEntry>()
  /** service -> version -> slots, oldest first */
  private readonly slots = new Map<string, Map<string, Slot[]>>()
  private readonly options: SignalBookOptions
  private forgotAt = 0

  constructor(options: SignalBookOptions) {
    this.options = options
  }

  /**
   * Records a report. `reporter` is the authenticated name behind it: a router id belongs
   * to the first reporter while it is live, so one token cannot speak for another's router.
   */
  accept(report: RouterReport, reporter: string, registryRevision: number): RouterView {
    const now = this.options.clock()
    this.dropSilent(now)
    // Old deltas go at most every 5 s, not per report: with 10 routers reporting each second
    // a scan per report would be ten scans a second for nothing.
    if (now - this.forgotAt >= 5_000) this.forgetOld(now)
    let entry = this.routers.get(report.id)
    if (entry && entry.view.reporter !== reporter) {
      throw new SwitchyardError('FORBIDDEN', `router ${report.id} reports as ${entry.view.reporter}; a token may only report for its own routers`)
    }
    // Totals of a router this book has not heard from (a registry restart, or one dropped as
    // silent) reach back to an unknown past: they are its baseline, not traffic of this second.
    const baseline = !entry
    if (!entry || entry.view.startedAt !== report.startedAt) {
      entry = {
        view: {
          id: report.id,
          kind: report.kind,
          adminUrl: report.adminUrl,
          appliedRevision: 0,
          lag: 0,
          startedAt: report.startedAt,
          firstReportAt: now,
          lastReportAt: now,
          reporter
        },
        totals: new Map()
      }
      this.routers.set(report.id, entry)
    }
    const view = entry.view
    view.kind = report.kind
    view.adminUrl = report.adminUrl
    view.appliedRevision = report.appliedRevision
    view.lag = Math.max(0, registryRevision - report.appliedRevision)
    view.lastReportAt = now
    const second = Math.floor(now / 1000)
    for (const [service, versions] of Object.entries(report.services)) {
      for (const [version, totals] of Object.entries(versions)) {
        const key = `${service}\n${version}`
        const delta = counterDelta(totals, entry.totals.get(key))
        entry.totals.set(key, totals)
        if (!baseline && !isZero(delta)) this.addDelta(service, version, second, delta)
      }
    }
    return { ...view }
  }

  /** Live routers, oldest first, with their lag against the registry's revision. */
  list(registryRevision: number): RouterView[] {
    this.dropSilent(this.options.clock())
    return [...this.routers.values()].map(({ view }) => ({ ...view, lag: Math.max(0, registryRevision - view.appliedRevision) }))
  }

  /** Live routers that have not applied `revision` yet. */
  behind(revision: number): RouterView[] {
    return this.list(revision).filter((router) => router.appliedRevision < revision)
  }

  /** Services with traffic kept in the book (any version, any second still kept), sorted. */
  servicesWithTraffic(): string[] {
    this.forgetOld(this.options.clock())
    return [...this.slots.keys()].sort()
  }

  /** Per-version figures over [from, to] (ms), summed over every router. */
  signals(service: string, from: number, to: number = this.options.clock()): ServiceSignals {
    if (to - from > this.options.maxWindowMs) {
      throw new SwitchyardError('VALIDATION_FAILED', `windows longer than ${this.options.maxWindowMs / 1000} s are not kept`)
    }
    this.forgetOld(this.options.clock())
    const fromSecond = Math.floor(from / 1000)
    const toSecond = Math.floor(to / 1000)
    const versions: ServiceSignals['versions'] = {}
    for (const [version, slots] of this.slots.get(service) ?? []) {
      let sum = emptyCounters()
      // A delta is stamped with the second its report arrived: it counts when that second
      // is inside the window (from's own second is left out: its traffic came before).
      for (const slot of slots) if (slot.second > fromSecond && slot.second <= toSecond) sum = addCounters(sum, slot.counters)
      versions[version] = figuresOf(sum, to - from)
    }
    return { service, windowMs: to - from, source: 'routers', versions }
  }

  private addDelta(service: string, version: string, second: number, delta: VersionCounters): void {
    let versions = this.slots.get(service)
    if (!versions) this.slots.set(service, (versions = new Map()))
    let slots = versions.get(version)
    if (!slots) versions.set(version, (slots = []))
    const last = slots[slots.length - 1]
    if (last && last.second === second) last.counters = addCounters(last.counters, delta)
    else slots.push({ second, counters: delta })
  }

  private dropSilent(now: number): void {
    for (const [id, entry] of this.routers) if (now - entry.view.lastReportAt > this.options.routerTimeoutMs) this.routers.delete(id)
  }

  private forgetOld(now: number): void {
    this.forgotAt = now
    const oldest = Math.floor((now - this.options.maxWindowMs) / 1000)
    for (const [service, versions] of this.slots) {
      for (const [version, slots] of versions) {
        let drop = 0
        while (drop < slots.length && (slots[drop] as Slot).second <= oldest) drop++
        if (drop > 0) slots.splice(0, drop)
        if (slots.length === 0) versions.delete(version)
      }
      if (versions.size === 0) this.slots.delete(service)
    }
  }
}
