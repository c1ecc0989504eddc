import { useState } from 'preact/hooks'
import type { JudgedFigures } from '../../core/rollout/canary-judge.js'
import { ApiError } from '../live/api.js'
import { useConsole, usePoll } from '../live/hooks.js'
import type { RolloutView } from '../live/store.js'
import { millis, percent, timestamp } from '../lib/format.js'
import type { ServiceView } from '../lib/model.js'
import { heaviest, splitOf } from '../lib/weight-split.js'
import { ConfirmDialog } from './confirm-dialog.js'

const ACTIVE = new Set(['progressing', 'paused'])

export function PhaseBadge(props: { phase: string }) {
  return <span class={`badge phase-${props.phase}`}>{props.phase}</span>
}

function Figures(props: { figures: JudgedFigures }) {
  const { figures } = props
  return (
    <span class="figures">
      {figures.requests} req, {percent(figures.errorRatePercent, 2)} errors, p99 {millis(figures.p99Ms)}
      {figures.messagesRouted > 0 && `, ${figures.messagesRouted} msgs, ${percent(figures.rejectRatePercent, 2)} rejected`}
    </span>
  )
}

type Command = 'pause' | 'resume' | 'abort' | 'promote'

/** A service's rollout: where it is, each verdict with its reason, and its commands. */
export function RolloutPanel(props: { service: ServiceView; rollout: RolloutView | undefined; canWrite: boolean }) {
  const { api, store } = useConsole()
  const { service, rollout, canWrite } = props
  const [error, setError] = useState<string | undefined>(undefined)
  const [confirm, setConfirm] = useState<Command | undefined>(undefined)
  const [busy, setBusy] = useState(false)
  const active = rollout !== undefined && ACTIVE.has(rollout.phase)
  const base = `/v1/services/${encodeURIComponent(service.name)}/rollout`

  // While a rollout runs: the figures only GET has (routers behind, next decision), every 2 s.
  usePoll(
    async (signal) => {
      if (active) store.rollout(await api.get<RolloutView>(base, signal))
    },
    2000,
    [service.name, active]
  )

  const command = async (name: Command) => {
    setBusy(true)
    setError(undefined)
    try {
      store.rollout(await api.request<RolloutView>('POST', `${base}/${name}`))
    } catch (caught) {
      setError(caught instanceof ApiError ? `${caught.code}: ${caught.message}` : String(caught))
    } finally {
      setBusy(false)
      setConfirm(undefined)
    }
  }

  return (
    <div class="rollout">
      {rollout ? (
        <div class="rollout-state">
          <p>
            <PhaseBadge phase={rollout.phase} /> <strong>{rollout.spec.canary}</strong> against baseline <strong>{rollout.spec.baseline}</strong>, started by {rollout.startedBy} at{' '}
            {timestamp(rollout.startedAt)}
          </p>
          <p class="rollout-step" data-testid="rollout-step">
            Step {rollout.step} of {rollout.spec.steps.length}: {rollout.spec.canary} at {rollout.canaryWeight}%
            {rollout.failures > 0 && `, ${rollout.failures} failed step${rollout.failures === 1 ? '' : 's'} of ${rollout.spec.failureLimit} allowed`}
            {active && rollout.nextDecisionInSeconds !== null && `, next decision in ${rollout.nextDecisionInSeconds} s`}
            {active && rollout.routersBehind.length > 0 && `, waiting for ${rollout.routersBehind.length} router(s) to apply the step`}
          </p>
          <ol class="steps" aria-label="Steps">
            {rollout.spec.steps.map((step, index) => (
              <li key={index} class={index < rollout.stepIndex || rollout.phase === 'promoted' ? 'done' : index === rollout.stepIndex && active ? 'current' : ''}>
                {step}%{index === rollout.stepIndex && active ? ' (current)' : ''}
              </li>
            ))}
          </ol>
          <p class="reason">{rollout.reason}</p>
          {rollout.lastCheck && active && <p class="muted">Last look: {rollout.lastCheck.reason}</p>}
          {rollout.history.length > 0 && (
            <div class="table-wrap" tabIndex={0} role="region" aria-label="Verdicts">
              <table>
                <caption>Verdicts, one per judged step</caption>
                <thead>
                  <tr>
                    <th scope="col">Step</th>
                    <th scope="col">Weight</th>
                    <th scope="col">Verdict</th>
                    <th scope="col">Reason</th>
                    <th scope="col">Canary</th>
                    <th scope="col">Baseline</th>
                    <th scope="col">At</th>
                  </tr>
                </thead>
                <tbody>
                  {rollout.history.map((record, index) => (
                    <tr key={index}>
                      <td>{record.stepIndex + 1}</td>
                      <td>{record.weight}%</td>
                      <td>
                        <span class={`badge verdict-${record.verdict}`}>{record.verdict}</span>
                      </td>
                      <td>{record.reason}</td>
                      <td>
                        <Figures figures={record.canary} />
                      </td>
                      <td>
                        <Figures figures={record.baseline} />
                      </td>
                      <td>{timestamp(record.at)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          {canWrite && active && (
            <div class="actions">
              {rollout.phase === 'progressing' && (
                <button type="button" disabled={busy} onClick={() => void command('pause')}>
                  Pause
                </button>
              )}
              {rollout.phase === 'paused' && (
                <button type="button" disabled={busy} onClick={() => void command('resume')}>
                  Resume
                </button>
              )}
              <button type="button" disabled={busy} onClick={() => setConfirm('promote')}>
                Promote…
              </button>
              <button type="button" class="danger" disabled={busy} onClick={() => setConfirm('abort')}>
                Abort…
              </button>
            </div>
          )}
        </div>
      ) : (
        <p class="muted">No rollout of {service.name} yet.</p>
      )}
      {error && (
        <p class="error" role="alert">
          Refused: {error}
        </p>
      )}
      {canWrite && !active && <StartRollout service={service} onStarted={(started) => store.rollout(started)} />}
      {canWrite && (
        <ConfirmDialog
          open={confirm !== undefined}
          title={confirm === 'abort' ? `Abort the rollout of ${service.name}?` : `Promote ${rollout?.spec.canary ?? 'the canary'} now?`}
          confirmLabel={confirm === 'abort' ? 'Abort' : 'Promote'}
          danger={confirm === 'abort'}
          busy={busy}
          onCancel={() => setConfirm(undefined)}
          onConfirm={() => confirm && void command(confirm)}
        >
          <p>
            {confirm === 'abort'
              ? `The baseline ${rollout?.spec.baseline ?? ''} gets 100% again and the rollout ends.`
              : `${rollout?.spec.canary ?? ''} gets 100% at once, without judging the remaining steps.`}
          </p>
        </ConfirmDialog>
      )}
    </div>
  )
}

function StartRollout(props: { service: ServiceView; onStarted: (rollout: RolloutView) => void }) {
  const { api } = useConsole()
  const { service } = props
  const versions = service.versions
  const heaviestVersion = heaviest(versions, splitOf(versions, service.weights))
  const [canary, setCanary] = useState(versions.find((version) => version !== heaviestVersion) ?? '')
  const [baseline, setBaseline] = useState(heaviestVersion ?? '')
  const [steps, setSteps] = useState('1, 5, 25, 50, 100')
  const [interval, setIntervalSeconds] = useState('60')
  const [maxErrorRate, setMaxErrorRate] = useState('1')
  const [maxP99, setMaxP99] = useState('500')
  const [maxLatencyRatio, setMaxLatencyRatio] = useState('1.5')
  const [minRequests, setMinRequests] = useState('50')
  const [error, setError] = useState<string | undefined>(undefined)
  const [busy, setBusy] = useState(false)
  if (versions.length < 2) return <p class="muted">A rollout needs a second version of {service.name}.</p>

  const start = async (event: Event) => {
    event.preventDefault()
    setBusy(true)
    setError(undefined)
    try {
      const body = {
        canary,
        baseline,
        steps: steps
          .split(/[\s,]+/)
          .filter(Boolean)
          .map(Number),
        intervalSeconds: Number(interval),
        analysis: { maxErrorRatePercent: Number(maxErrorRate), maxP99Ms: Number(maxP99), maxLatencyRatio: Number(maxLatencyRatio), minRequests: Number(minRequests) }
      }
      props.onStarted(await api.request<RolloutView>('POST', `/v1/services/${encodeURIComponent(service.name)}/rollout`, body))
    } catch (caught) {
      setError(caught instanceof ApiError ? `${caught.code}: ${caught.message}` : String(caught))
    } finally {
      setBusy(false)
    }
  }

  const field = (id: string, label: string, value: string, set: (value: string) => void, type: 'text' | 'number' = 'number') => (
    <div class="field">
      <label for={id}>{label}</label>
      {type === 'text' ? (
        <input id={id} type="text" value={value} onInput={(event) => set((event.target as HTMLInputElement).value)} />
      ) : (
        <input id={id} type="number" step="any" min={0} value={value} onInput={(event) => set((event.target as HTMLInputElement).value)} />
      )}
    </div>
  )

  return (
    <form class="start-rollout" onSubmit={(event) => void start(event)}>
      <h4>Start a rollout</h4>
      <div class="fields">
        <div class="field">
          <label for="rollout-canary">Canary</label>
          <select id="rollout-canary" value={canary} onChange={(event) => setCanary((event.target as HTMLSelectElement).value)}>
            {versions.map((version) => (
              <option key={version} value={version}>
                {version}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="rollout-baseline">Baseline</label>
          <select id="rollout-baseline" value={baseline} onChange={(event) => setBaseline((event.target as HTMLSelectElement).value)}>
            {versions.map((version) => (
              <option key={version} value={version}>
                {version}
              </option>
            ))}
          </select>
        </div>
        {field('rollout-steps', 'Steps (%)', steps, setSteps, 'text')}
        {field('rollout-interval', 'Interval (s)', interval, setIntervalSeconds)}
        {field('rollout-error-rate', 'Max error rate (%)', maxErrorRate, setMaxErrorRate)}
        {field('rollout-p99', 'Max p99 (ms)', maxP99, setMaxP99)}
        {field('rollout-latency-ratio', 'Max p99 / baseline p99', maxLatencyRatio, setMaxLatencyRatio)}
        {field('rollout-min-requests', 'Min requests per step', minRequests, setMinRequests)}
      </div>
      <button type="submit" class="primary" disabled={busy || !canary || canary === baseline}>
        Start rollout
      </button>
      {error && (
        <p class="error" role="alert">
          Refused: {error}
        </p>
      )}
    </form>
  )
}
