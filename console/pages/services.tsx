import { memo } from '../components/memo.js'
import { useLayoutEffect, useRef, useState } from 'preact/hooks'
import { PhaseBadge } from '../components/rollout-panel.js'
import { colorClass, SplitBar } from '../components/split-bar.js'
import { useConsole, useLive, usePoll } from '../live/hooks.js'
import type { RolloutView } from '../live/store.js'
import { count, percent } from '../lib/format.js'
import { versionSummaries, type ServiceView } from '../lib/model.js'
import { href } from '../lib/route.js'
import { observedShares, shareGap, type ObservedShare, type ServiceSignals } from '../lib/signals.js'

/** What the routers saw of one service over the last OBSERVED_WINDOW_S: shares and the totals they are shares of. */
interface Observed {
  shares: Record<string, ObservedShare>
  requests: number
  messages: number
}

const OBSERVED_WINDOW_S = 10
const POLL_MS = 2000

/** The observed share of one version, in words, flagged when far from its weight (as on the service page). */
function ObservedChip(props: { weight: number; observed: Observed | undefined; version: string }) {
  const { observed } = props
  if (!observed) return null
  // A version the routers sent nothing to (no instance up, say) got 0% of what they routed.
  const share = observed.shares[props.version] ?? { http: observed.requests > 0 ? 0 : null, queue: observed.messages > 0 ? 0 : null }
  if (share.http === null && share.queue === null) return null
  // HTTP when the service has requests, else its queue messages
  const http = share.http !== null
  const value = http ? share.http : share.queue
  const gap = shareGap(props.weight, value, http ? observed.requests : observed.messages)
  return (
    <span class={gap ? 'flag' : 'muted'}>
      {' '}
      · observed {percent(value)}
      {http ? '' : ' of messages'}
      {gap ? ', off its weight' : ''}
    </span>
  )
}

/** One row; redrawn only when its service, rollout or observed figures change (the store replaces only what changed). */
const ServiceRow = memo(function ServiceRow(props: { service: ServiceView; rollout: RolloutView | undefined; hidden: boolean; observed: Observed | undefined }) {
  const { service, rollout, observed } = props
  const summaries = versionSummaries(service)
  const up = summaries.reduce((sum, version) => sum + version.up, 0)
  const draining = summaries.reduce((sum, version) => sum + version.draining, 0)
  return (
    <tr hidden={props.hidden}>
      <th scope="row">
        <a href={href({ page: 'service', name: service.name })}>{service.name}</a>
      </th>
      <td class="split-cell">
        <SplitBar versions={service.versions} weights={service.weights} label={`Split of ${service.name}`} />
      </td>
      <td>
        <ul class="version-chips">
          {summaries.map((version, index) => (
            <li key={version.version}>
              <span class={`swatch ${colorClass(index)}`} aria-hidden="true" />
              <span class="version-name">{version.version}</span> {percent(version.weight, 2)}
              <ObservedChip weight={version.weight} observed={observed} version={version.version} />{' '}
              <span class="muted">
                {version.up} up{version.draining > 0 ? `, ${version.draining} draining` : ''}
              </span>
            </li>
          ))}
        </ul>
      </td>
      <td class="num">
        {up}
        {draining > 0 && <span class="muted"> +{draining} draining</span>}
      </td>
      <td>{rollout ? <PhaseBadge phase={rollout.phase} /> : <span class="muted">–</span>}</td>
    </tr>
  )
})

const FIRST_ROWS = 40

/** Every service: its split, its versions with instances, its rollout. */
export function ServicesPage() {
  const live = useLive()
  const { api } = useConsole()
  // Observed beside configured: what the routers saw of every service in the last 10 s, one call every 2 s.
  const [observed, setObserved] = useState<ReadonlyMap<string, Observed>>(new Map())
  usePoll(
    async (signal) => {
      const answer = await api.get<{ services: Record<string, ServiceSignals['versions']> }>(`/v1/signals?window=${OBSERVED_WINDOW_S}s`, signal)
      const next = new Map<string, Observed>()
      for (const [name, versions] of Object.entries(answer.services)) {
        let requests = 0
        let messages = 0
        for (const figures of Object.values(versions)) {
          requests += figures.requests
          messages += figures.messagesRouted
        }
        if (requests + messages > 0)
          next.set(name, { shares: observedShares({ service: name, windowMs: OBSERVED_WINDOW_S * 1000, source: 'routers', versions }, Object.keys(versions)), requests, messages })
      }
      setObserved(next)
    },
    POLL_MS,
    []
  )
  const [filter, setFilter] = useState('')
  // A screenful of rows first, the rest right after: the page is useful before 200 rows are drawn.
  const [limit, setLimit] = useState(FIRST_ROWS)
  const marked = useRef(false)
  // Filtered rows are hidden, not removed: typing in the filter never rebuilds 200 rows.
  const wanted = filter.trim().toLowerCase()
  const services = [...live.view.services.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  const shown = services.filter((service) => service.name.toLowerCase().includes(wanted)).length
  const instances = [...live.view.services.values()].reduce((sum, service) => sum + service.instances.length, 0)
  const loaded = live.loaded

  // First useful render: the list is on screen (measured by the browser tests).
  // Right after the rows are in the DOM; the mark goes in the next frame, once they are painted.
  useLayoutEffect(() => {
    if (!loaded || marked.current) return
    marked.current = true
    requestAnimationFrame(() => {
      performance.mark('console:services-rendered')
      setLimit(Infinity)
    })
  }, [loaded])
  useLayoutEffect(() => {
    if (limit === Infinity && loaded) requestAnimationFrame(() => performance.mark('console:services-complete'))
  }, [limit])

  return (
    <section aria-labelledby="services-title">
      <div class="page-head">
        <h1 id="services-title">Services</h1>
        <p class="muted">
          {count(live.view.services.size)} services, {count(instances)} instances, registry revision {live.view.revision}
        </p>
      </div>
      <div class="field inline">
        <label for="service-filter">Filter</label>
        <input id="service-filter" type="search" value={filter} placeholder="service name" onInput={(event) => setFilter((event.target as HTMLInputElement).value)} />
      </div>
      {!loaded && <p>Loading…</p>}
      {loaded && shown === 0 && <p class="muted">{services.length === 0 ? 'No service has registered yet.' : 'No service matches the filter.'}</p>}
      {services.length > 0 && (
        <div class="table-wrap" tabIndex={0} role="region" aria-label="Services">
          <table class="services">
            <thead>
              <tr>
                <th scope="col">Service</th>
                <th scope="col">Split</th>
                <th scope="col">Versions (weight, share the routers saw in 10 s, instances)</th>
                <th scope="col">Up</th>
                <th scope="col">Rollout</th>
              </tr>
            </thead>
            <tbody>
              {services.slice(0, limit).map((service) => (
                <ServiceRow
                  key={service.name}
                  service={service}
                  rollout={live.rollouts.get(service.name)}
                  hidden={!service.name.toLowerCase().includes(wanted)}
                  observed={observed.get(service.name)}
                />
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  )
}
