import { useEffect, useMemo, useRef, useState } from 'preact/hooks'
import { Chart } from '../components/chart.js'
import { RolloutPanel } from '../components/rollout-panel.js'
import { colorClass, SplitBar } from '../components/split-bar.js'
import { WeightEditor } from '../components/weight-editor.js'
import { ApiError } from '../live/api.js'
import { useConsole, useLive, useNow, usePoll } from '../live/hooks.js'
import { age, millis, percent, rate } from '../lib/format.js'
import { versionSummaries, type RestService, type ServiceView } from '../lib/model.js'
import { canChangeTraffic } from '../lib/permissions.js'
import { href } from '../lib/route.js'
import { observedShares, shareGap, SignalSeries, type Metric, type ServiceSignals } from '../lib/signals.js'

const POLL_MS = 2000
/** the window of the versions table and the observed shares */
const SHARE_WINDOW_S = 10
/** five minutes of 2-second points */
const SERIES_POINTS = 150

const CHARTS: { metric: Metric; title: string; unit: string; kind: 'http' | 'queue'; format: (value: number | null) => string }[] = [
  { metric: 'rps', title: 'Requests per second', unit: 'req/s', kind: 'http', format: rate },
  { metric: 'errorRatePercent', title: 'Error rate (5xx)', unit: '%', kind: 'http', format: (value) => percent(value, 2) },
  { metric: 'p50Ms', title: 'Latency p50', unit: 'ms', kind: 'http', format: millis },
  { metric: 'p99Ms', title: 'Latency p99', unit: 'ms', kind: 'http', format: millis },
  { metric: 'mps', title: 'Messages routed per second', unit: 'msg/s', kind: 'queue', format: rate },
  { metric: 'messagesRejected', title: 'Messages rejected', unit: 'per 2 s', kind: 'queue', format: (value) => (value === null ? '–' : String(value)) }
]

export function ServicePage(props: { name: string }) {
  const { api, store, identity } = useConsole()
  const live = useLive()
  // ages move on every second
  useNow()
  const service = live.view.services.get(props.name)
  const [recent, setRecent] = useState<ServiceSignals | undefined>(undefined)
  const [signalsError, setSignalsError] = useState<string | undefined>(undefined)
  const [missing, setMissing] = useState(false)
  const series = useRef(new SignalSeries(SERIES_POINTS))
  const [seriesVersion, setSeriesVersion] = useState(0)
  const path = `/v1/services/${encodeURIComponent(props.name)}`

  // Lease ages: only a REST read carries heartbeats.
  usePoll(
    async (signal) => {
      try {
        store.heartbeats(await api.get<RestService>(path, signal))
        setMissing(false)
      } catch (error) {
        if (error instanceof ApiError && error.code === 'SERVICE_NOT_FOUND') setMissing(true)
        throw error
      }
    },
    POLL_MS,
    [props.name]
  )

  // The charts start with the last 5 minutes the registry kept (router reports; a source
  // without history, Prometheus, answers none), then grow with each poll.
  useEffect(() => {
    const controller = new AbortController()
    api
      .get<{ points: { at: number; versions: ServiceSignals['versions'] }[] }>(
        `${path}/signals/series?window=${(SERIES_POINTS * POLL_MS) / 1000}s&step=${POLL_MS / 1000}s`,
        controller.signal
      )
      .then((answer) => {
        series.current.prefill(answer.points.map((point) => ({ t: point.at / 1000, versions: point.versions })))
        setSeriesVersion((version) => version + 1)
      })
      .catch(() => {
        // the live points come anyway
      })
    return () => controller.abort()
  }, [props.name])

  // Figures: the last 10 s for shares and the table (a version that stops getting its share
  // shows within seconds), the last poll interval for the charts.
  usePoll(
    async (signal) => {
      try {
        const [minute, point] = await Promise.all([
          api.get<ServiceSignals>(`${path}/signals?window=${SHARE_WINDOW_S}s`, signal),
          api.get<ServiceSignals>(`${path}/signals?window=${POLL_MS / 1000}s`, signal)
        ])
        setRecent(minute)
        series.current.add({ t: Date.now() / 1000, versions: point.versions })
        setSeriesVersion((version) => version + 1)
        setSignalsError(undefined)
      } catch (error) {
        setSignalsError(error instanceof ApiError ? `${error.code}: ${error.message}` : String(error))
        throw error
      }
    },
    POLL_MS,
    [props.name]
  )

  if (!service) {
    return (
      <section aria-labelledby="service-title">
        <h1 id="service-title">{props.name}</h1>
        <p class="muted">{!live.loaded ? 'Loading…' : missing ? `The registry has no service ${props.name}.` : `No service ${props.name} in the registry's view.`}</p>
        <p>
          <a href={href({ page: 'services' })}>All services</a>
        </p>
      </section>
    )
  }
  const canWrite = canChangeTraffic(identity, service.name)
  return (
    <section aria-labelledby="service-title" class="service-page">
      <div class="page-head">
        <h1 id="service-title">{service.name}</h1>
        <p>
          <a href={href({ page: 'history', service: service.name })}>History of {service.name}</a>
        </p>
      </div>
      <Traffic service={service} recent={recent} error={signalsError} />
      <section aria-labelledby="change-title" class="panel">
        <h2 id="change-title">Change traffic</h2>
        {canWrite ? (
          <WeightEditor service={service} revision={live.view.revision} lastChange={live.weightChanges.get(service.name)} />
        ) : (
          <p class="muted">
            Signed in as {identity.name} ({identity.role}): this token may not change the traffic of {service.name}.
          </p>
        )}
      </section>
      <section aria-labelledby="rollout-title" class="panel">
        <h2 id="rollout-title">Rollout</h2>
        <RolloutPanel service={service} rollout={live.rollouts.get(service.name)} canWrite={canWrite} />
      </section>
      <Charts service={service} series={series.current} version={seriesVersion} />
      <Instances service={service} now={store.now()} />
    </section>
  )
}

function Traffic(props: { service: ServiceView; recent: ServiceSignals | undefined; error: string | undefined }) {
  const { service, recent } = props
  const summaries = versionSummaries(service)
  const shares = observedShares(recent, service.versions)
  const figures = recent?.versions ?? {}
  const requests = Object.values(figures).reduce((sum, version) => sum + version.requests, 0)
  const messages = Object.values(figures).reduce((sum, version) => sum + version.messagesRouted, 0)
  const observedHttp = Object.fromEntries(service.versions.map((version) => [version, shares[version]?.http ?? 0]))
  const observedQueue = Object.fromEntries(service.versions.map((version) => [version, shares[version]?.queue ?? 0]))
  return (
    <section aria-labelledby="traffic-title" class="panel">
      <h2 id="traffic-title">Traffic</h2>
      <div class="bars">
        <div>
          <h3 class="bar-title">Configured</h3>
          <SplitBar versions={service.versions} weights={service.weights} label="Configured split" legend />
        </div>
        <div>
          <h3 class="bar-title">
            Observed, HTTP (last {SHARE_WINDOW_S} s, {requests} requests)
          </h3>
          {requests > 0 ? <SplitBar versions={service.versions} weights={observedHttp} label="Observed HTTP share" thin /> : <p class="muted">No HTTP traffic.</p>}
        </div>
        <div>
          <h3 class="bar-title">
            Observed, queue (last {SHARE_WINDOW_S} s, {messages} messages)
          </h3>
          {messages > 0 ? <SplitBar versions={service.versions} weights={observedQueue} label="Observed queue share" thin /> : <p class="muted">No queue traffic.</p>}
        </div>
      </div>
      {props.error && <p class="warn">Figures unavailable: {props.error}</p>}
      <div class="table-wrap" tabIndex={0} role="region" aria-label="Versions">
        <table class="versions">
          <caption>Versions: configured weight beside the share each actually got over the last {SHARE_WINDOW_S} s, HTTP and queue traffic side by side</caption>
          <thead>
            <tr>
              <th scope="col" rowSpan={2}>
                Version
              </th>
              <th scope="col" rowSpan={2}>
                Weight
              </th>
              <th scope="col" rowSpan={2}>
                Instances
              </th>
              <th scope="colgroup" colSpan={5} class="group">
                HTTP
              </th>
              <th scope="colgroup" colSpan={3} class="group">
                Queue
              </th>
            </tr>
            <tr>
              <th scope="col">Observed</th>
              <th scope="col">req/s</th>
              <th scope="col">Errors</th>
              <th scope="col">p50</th>
              <th scope="col">p99</th>
              <th scope="col">Observed</th>
              <th scope="col">Routed/s</th>
              <th scope="col">Rejected</th>
            </tr>
          </thead>
          <tbody>
            {summaries.map((summary, index) => {
              const version = figures[summary.version]
              const share = shares[summary.version]
              const httpGap = shareGap(summary.weight, share?.http ?? null, requests)
              const queueGap = shareGap(summary.weight, share?.queue ?? null, messages)
              return (
                <tr key={summary.version}>
                  <th scope="row">
                    <span class={`swatch ${colorClass(index)}`} aria-hidden="true" />
                    {summary.version}
                  </th>
                  <td class="num">{percent(summary.weight, 2)}</td>
                  <td>
                    {summary.up} up{summary.draining > 0 && `, ${summary.draining} draining`}
                    {summary.up === 0 && summary.weight > 0 && <span class="flag"> no instance up</span>}
                  </td>
                  <td class={httpGap ? 'num gap' : 'num'}>
                    {percent(share?.http)}
                    {httpGap && <span class="flag"> off by {percent(Math.abs((share?.http ?? 0) - summary.weight))}</span>}
                  </td>
                  <td class="num">{rate(version?.rps ?? 0)}</td>
                  <td class="num">{version && version.requests > 0 ? percent(version.errorRatePercent, 2) : '–'}</td>
                  <td class="num">{millis(version?.p50Ms)}</td>
                  <td class="num">{millis(version?.p99Ms)}</td>
                  <td class={queueGap ? 'num gap' : 'num'}>
                    {percent(share?.queue)}
                    {queueGap && <span class="flag"> off by {percent(Math.abs((share?.queue ?? 0) - summary.weight))}</span>}
                  </td>
                  <td class="num">{rate(version?.mps ?? 0)}</td>
                  <td class="num">
                    {version?.messagesRejected ?? 0}
                    {version && version.messagesRouted > 0 && <span class="muted"> ({percent(version.rejectRatePercent, 2)})</span>}
                  </td>
                </tr>
              )
            })}
          </tbody>
        </table>
      </div>
    </section>
  )
}

function Charts(props: { service: ServiceView; series: SignalSeries; version: number }) {
  const { service, series, version } = props
  const versions = useMemo(() => [...new Set([...service.versions, ...series.versions()])], [service.versions.join(','), version])
  const colors = versions.map((name) => Math.max(0, service.versions.indexOf(name)))
  // The kinds of traffic the service has: a queue consumer gets message charts only.
  const hasQueue = series.has('queue')
  const hasHttp = series.has('http') || !hasQueue
  const charts = CHARTS.filter((chart) => (chart.kind === 'http' ? hasHttp : hasQueue))
  // New arrays (and a redraw) only when a poll added a point, not on every registry change.
  const columns = useMemo(() => new Map(CHARTS.map((chart) => [chart.metric, series.columns(chart.metric, versions)])), [version, versions.join(',')])
  return (
    <section aria-labelledby="charts-title" class="panel">
      <h2 id="charts-title">Last {Math.round((series.size * POLL_MS) / 1000)} s per version</h2>
      {series.size < 2 ? (
        <p class="muted">Collecting figures every {POLL_MS / 1000} s…</p>
      ) : (
        <div class="charts">
          {charts.map((chart) => {
            const data = columns.get(chart.metric) ?? series.columns(chart.metric, versions)
            const summary = versions.map((name, i) => `${name} ${chart.format((data[i + 1] as (number | null)[]).at(-1) ?? null)}`).join(', ')
            return (
              <Chart
                key={chart.metric}
                title={chart.title}
                unit={chart.unit}
                data={data}
                series={versions.map((name, i) => ({ label: name, colorIndex: colors[i] ?? 0 }))}
                summary={`latest: ${summary}`}
              />
            )
          })}
          {!hasQueue && <p class="muted">No queue traffic for {service.name}: message charts appear when a topic routes to it.</p>}
        </div>
      )}
    </section>
  )
}

function Instances(props: { service: ServiceView; now: number }) {
  const { service, now } = props
  return (
    <section aria-labelledby="instances-title" class="panel">
      <h2 id="instances-title">Instances</h2>
      {service.versions.map((version, index) => {
        const instances = service.instances.filter((instance) => instance.version === version)
        return (
          <div key={version} class="instance-group">
            <h3>
              <span class={`swatch ${colorClass(index)}`} aria-hidden="true" />
              {version} <span class="muted">({instances.length})</span>
            </h3>
            {instances.length === 0 ? (
              <p class="muted">No instance.</p>
            ) : (
              <div class="table-wrap" tabIndex={0} role="region" aria-label={`Instances of ${version}`}>
                <table>
                  <thead>
                    <tr>
                      <th scope="col">Instance</th>
                      <th scope="col">Address</th>
                      <th scope="col">Status</th>
                      <th scope="col">Last heartbeat</th>
                      <th scope="col">Registered</th>
                      <th scope="col">Metadata</th>
                    </tr>
                  </thead>
                  <tbody>
                    {instances.map((instance) => (
                      <tr key={instance.id}>
                        <th scope="row">{instance.id}</th>
                        <td>
                          {instance.host}:{instance.port}
                        </td>
                        <td>
                          <span class={`badge status-${instance.status}`}>{instance.status}</span>
                        </td>
                        <td>{instance.lastHeartbeat === null ? '–' : `${age(instance.lastHeartbeat, now)} ago`}</td>
                        <td>{age(instance.registeredAt, now)} ago</td>
                        <td>
                          <ul class="metadata">
                            {Object.entries(instance.metadata).map(([key, value]) => (
                              <li key={key}>
                                <code>
                                  {key}={value}
                                </code>
                              </li>
                            ))}
                          </ul>
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
          </div>
        )
      })}
    </section>
  )
}
