import { memo } from '../components/memo.js'
import { useLayoutEffect, useRef, useState } from 'preact/hooks'
import { PhaseBadge } from '../components/rollout-panel.js'
import { colorClass, SplitBar } from '../components/split-bar.js'
import { useLive } from '../live/hooks.js'
import type { RolloutView } from '../live/store.js'
import { count, percent } from '../lib/format.js'
import { versionSummaries, type ServiceView } from '../lib/model.js'
import { href } from '../lib/route.js'

/** One row; redrawn only when its service or rollout object changes (the store replaces only what changed). */
const ServiceRow = memo(function ServiceRow(props: { service: ServiceView; rollout: RolloutView | undefined; hidden: boolean }) {
  const { service, rollout } = props
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
              <span class="version-name">{version.version}</span> {percent(version.weight, 2)}{' '}
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
                <th scope="col">Versions (weight, instances)</th>
                <th scope="col">Up</th>
                <th scope="col">Rollout</th>
              </tr>
            </thead>
            <tbody>
              {services.slice(0, limit).map((service) => (
                <ServiceRow key={service.name} service={service} rollout={live.rollouts.get(service.name)} hidden={!service.name.toLowerCase().includes(wanted)} />
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  )
}
