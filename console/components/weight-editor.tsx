import { useEffect, useState } from 'preact/hooks'
import { ApiError } from '../live/api.js'
import { useConsole } from '../live/hooks.js'
import type { WeightsChange } from '../live/store.js'
import { splitText } from '../lib/format.js'
import type { ServiceView } from '../lib/model.js'
import { describeChange, heaviest, promote, rebalance, rollBack, sameSplit, splitOf, total, weightsOf, type Split } from '../lib/weight-split.js'
import { ConfirmDialog } from './confirm-dialog.js'
import { RoutersApplied } from './routers-applied.js'
import { SplitBar } from './split-bar.js'

type Status =
  | { kind: 'idle' }
  | { kind: 'saving' }
  | { kind: 'unchanged' }
  | { kind: 'applied'; revision: number; at: number; text: string }
  | { kind: 'conflict'; revision: number; weights: Record<string, number>; by: WeightsChange | undefined }
  | { kind: 'error'; code: string; message: string }

interface Base {
  /** the registry revision the edited split was read at: sent as If-Match */
  revision: number
  split: number[]
}

/**
 * Sliders and fields that always add up to 100, a preview of the new split, a
 * confirmation, then a PUT with If-Match: a split someone else changed meanwhile is
 * refused (412) and shown as a conflict, never overwritten.
 */
export function WeightEditor(props: { service: ServiceView; revision: number; lastChange: WeightsChange | undefined }) {
  const { api, store } = useConsole()
  const { service } = props
  const versions = service.versions
  const current = splitOf(versions, service.weights)
  const [base, setBase] = useState<Base>({ revision: props.revision, split: current })
  const [draft, setDraft] = useState<number[]>(current)
  const [pending, setPending] = useState<{ split: number[]; title: string; restore?: { base: Base; draft: number[] } } | undefined>(undefined)
  const [status, setStatus] = useState<Status>({ kind: 'idle' })
  // What is being typed in a field, until it is committed (blur or Enter): a render in
  // between (the live view changes every second) must not put the old value back.
  const [typing, setTyping] = useState<Record<string, string>>({})
  const versionKey = versions.join(',')
  const dirty = !sameSplit(draft, base.split)
  const changedMeanwhile = !sameSplit(current, base.split)

  // Follow the registry while nothing is being edited; keep the draft (and its base) once it is.
  useEffect(() => {
    if (!dirty || draft.length !== versions.length) {
      setBase({ revision: props.revision, split: current })
      setDraft(current)
    }
  }, [versionKey, current.join(',')])

  const restart = () => {
    setBase({ revision: store.state.view.revision, split: current })
    setDraft(current)
    setTyping({})
    setStatus({ kind: 'idle' })
  }

  const apply = async (split: Split) => {
    setStatus({ kind: 'saving' })
    const weights = weightsOf(versions, split)
    let ifMatch = base.revision
    const path = `/v1/services/${encodeURIComponent(service.name)}/weights`
    for (let attempt = 0; ; attempt++) {
      try {
        const result = await api.request<{ weights: Record<string, number>; revision: number }>('PUT', path, { weights }, { 'if-match': `"${ifMatch}"` })
        setPending(undefined)
        setBase({ revision: result.revision, split: [...split] })
        setStatus({ kind: 'applied', revision: result.revision, at: Date.now(), text: splitText(result.weights) })
        return
      } catch (error) {
        if (!(error instanceof ApiError) || error.code !== 'REVISION_MISMATCH' || attempt >= 4) {
          setPending(undefined)
          setStatus(error instanceof ApiError ? { kind: 'error', code: error.code, message: error.message } : { kind: 'error', code: 'NETWORK', message: String(error) })
          return
        }
        // The registry moved on. Only a change to this service's weights is a conflict:
        // other changes (an instance registering) bump the revision too.
        const now = await api.get<{ weights: Record<string, number>; revision: number }>(path)
        if (!sameSplit(splitOf(versions, now.weights), base.split)) {
          setPending(undefined)
          setStatus({ kind: 'conflict', revision: now.revision, weights: now.weights, by: store.state.weightChanges.get(service.name) })
          return
        }
        ifMatch = now.revision
      }
    }
  }

  const setOne = (index: number, percentValue: number) => {
    if (!Number.isFinite(percentValue)) return
    setDraft(rebalance(draft, index, percentValue * 100))
    if (status.kind !== 'saving') setStatus({ kind: 'idle' })
  }

  // The canary is the newest version; its baseline the heaviest of the others.
  const canary = versions.length > 1 ? versions[versions.length - 1] : undefined
  const others = versions.filter((version) => version !== canary)
  const baseline = heaviest(
    others,
    others.map((version) => current[versions.indexOf(version)] ?? 0)
  )
  // A quick action starts from the split on screen now, whatever was being edited.
  const quick = (title: string, split: number[]) => {
    setBase({ revision: store.state.view.revision, split: current })
    setDraft(split)
    setStatus({ kind: 'idle' })
    // Cancelling a quick action gives back whatever was being edited.
    setPending({ split, title, restore: { base, draft } })
  }
  const cancel = () => {
    if (pending?.restore) {
      setBase(pending.restore.base)
      setDraft(pending.restore.draft)
    }
    setPending(undefined)
  }

  return (
    <div class="weight-editor">
      {changedMeanwhile && dirty && (
        <p class="warn" role="status">
          The weights changed since you started editing{props.lastChange ? ` (by ${props.lastChange.actor}, revision ${props.lastChange.revision})` : ''}: now{' '}
          {splitText(service.weights)}. Applying your split will be refused; start over from the current weights.
        </p>
      )}
      <fieldset>
        <legend>New split of {service.name}</legend>
        {versions.map((version, index) => {
          const value = (draft[index] ?? 0) / 100
          const id = `weight-${index}`
          return (
            <div class="weight-row" key={version}>
              <label for={id}>{version}</label>
              <input
                type="range"
                min={0}
                max={100}
                step={1}
                value={value}
                aria-label={`Weight of ${version} (slider)`}
                onInput={(event) => setOne(index, Number((event.target as HTMLInputElement).value))}
              />
              <input
                id={id}
                class="weight-number"
                type="number"
                min={0}
                max={100}
                step={0.01}
                value={typing[version] ?? value}
                onInput={(event) => setTyping({ ...typing, [version]: (event.target as HTMLInputElement).value })}
                onChange={(event) => {
                  setOne(index, Number((event.target as HTMLInputElement).value))
                  setTyping({})
                }}
              />
              <span aria-hidden="true">%</span>
            </div>
          )
        })}
        <p class="muted">Total: {total(draft) / 100}% (the others follow when one moves, so the split always adds up to 100%).</p>
      </fieldset>
      <div class="preview">
        <h4>Preview</h4>
        <SplitBar versions={versions} weights={Object.fromEntries(versions.map((version, i) => [version, (draft[i] ?? 0) / 100]))} label="New split" legend />
        <p>{describeChange(versions, base.split, draft)}</p>
      </div>
      <div class="actions">
        {/* Never disabled by the draft: a value typed and left with Tab is committed on blur, after the browser has picked the next control. */}
        <button type="button" onClick={restart}>
          Reset
        </button>
        <button
          type="button"
          class="primary"
          disabled={status.kind === 'saving'}
          onClick={() => (dirty && total(draft) === 10_000 ? setPending({ split: draft, title: 'Apply the new split?' }) : setStatus({ kind: 'unchanged' }))}
        >
          Apply…
        </button>
      </div>
      {canary && baseline && (
        <div class="quick-actions">
          <h4>Quick actions</h4>
          <button
            type="button"
            class="danger"
            disabled={(current[versions.indexOf(canary)] ?? 0) === 0}
            onClick={() => quick(`Roll back: ${canary} to 0%?`, rollBack(versions, current, canary, baseline))}
          >
            Roll back {canary} (0%)
          </button>
          <button
            type="button"
            disabled={(current[versions.indexOf(canary)] ?? 0) === 10_000}
            onClick={() => quick(`Send ${canary} all traffic (100%)?`, promote(versions, canary))}
          >
            Send {canary} 100%
          </button>
        </div>
      )}
      <div aria-live="polite">
        {status.kind === 'saving' && <p>Applying…</p>}
        {status.kind === 'unchanged' && <p class="muted">Nothing to apply: the split is the one the registry has.</p>}
        {status.kind === 'error' && (
          <p class="error" role="alert">
            Refused: {status.code}: {status.message}
          </p>
        )}
        {status.kind === 'conflict' && (
          <div class="error" role="alert">
            <p>
              <strong>Conflict:</strong> the weights of {service.name} were changed by {status.by ? status.by.actor : 'someone else'} while you edited (registry revision{' '}
              {status.revision}): now {splitText(status.weights)}. Your split was not applied.
            </p>
            <button type="button" onClick={restart}>
              Start over from the current weights
            </button>
          </div>
        )}
        {status.kind === 'applied' && (
          <div class="ok-box">
            <p>
              Applied at revision {status.revision}: {status.text}
            </p>
            <RoutersApplied revision={status.revision} since={status.at} />
          </div>
        )}
      </div>
      <ConfirmDialog
        open={pending !== undefined}
        title={pending?.title ?? ''}
        confirmLabel="Apply"
        busy={status.kind === 'saving'}
        onCancel={cancel}
        onConfirm={() => pending && void apply(pending.split)}
      >
        {pending && (
          <>
            <p>
              {service.name}: {describeChange(versions, current, pending.split)}
            </p>
            <SplitBar versions={versions} weights={weightsOf(versions, pending.split)} label="Split after the change" legend />
            <p class="muted">Written with If-Match: revision {base.revision}; refused if the weights changed since.</p>
          </>
        )}
      </ConfirmDialog>
    </div>
  )
}
