import { useState } from 'preact/hooks'
import { ApiError } from '../live/api.js'
import { useConsole, useLive, usePoll } from '../live/hooks.js'
import { splitText, timestamp } from '../lib/format.js'
import { changedVersions, filterHistory, type HistoryEntry, type HistoryFilter } from '../lib/history.js'
import { href } from '../lib/route.js'

/** The audit log of weight changes of one service: who, when, from, to; filterable. */
export function HistoryPage(props: { service: string | undefined }) {
  const { api } = useConsole()
  const live = useLive()
  const names = [...live.view.services.keys()].sort()
  const service = props.service ?? names[0]
  const [entries, setEntries] = useState<HistoryEntry[] | undefined>(undefined)
  const [error, setError] = useState<string | undefined>(undefined)
  const [filter, setFilter] = useState<HistoryFilter>({ text: '', kind: 'all' })
  const changeRevision = service ? (live.weightChanges.get(service)?.revision ?? 0) : 0

  // Read again whenever the stream shows a weight change of this service.
  usePoll(
    async (signal) => {
      if (!service) return
      try {
        const answer = await api.get<{ history: HistoryEntry[] }>(`/v1/services/${encodeURIComponent(service)}/history`, signal)
        setEntries(answer.history)
        setError(undefined)
      } catch (caught) {
        setError(caught instanceof ApiError ? `${caught.code}: ${caught.message}` : String(caught))
      }
    },
    30_000,
    [service, changeRevision]
  )
  const shown = entries ? filterHistory(entries, filter) : []
  return (
    <section aria-labelledby="history-title">
      <div class="page-head">
        <h1 id="history-title">History{service ? ` of ${service}` : ''}</h1>
        <p class="muted">Every weight change, newest first: who made it, when, and the split before and after.</p>
      </div>
      <div class="filters">
        <div class="field">
          <label for="history-service">Service</label>
          <select
            id="history-service"
            value={service ?? ''}
            onChange={(event) => {
              location.hash = href({ page: 'history', service: (event.target as HTMLSelectElement).value })
            }}
          >
            {names.map((name) => (
              <option key={name} value={name}>
                {name}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="history-text">Actor, version or revision</label>
          <input id="history-text" type="search" value={filter.text} onInput={(event) => setFilter({ ...filter, text: (event.target as HTMLInputElement).value })} />
        </div>
        <div class="field">
          <label for="history-kind">Made by</label>
          <select id="history-kind" value={filter.kind} onChange={(event) => setFilter({ ...filter, kind: (event.target as HTMLSelectElement).value as HistoryFilter['kind'] })}>
            <option value="all">anyone</option>
            <option value="manual">people and tools</option>
            <option value="rollout">rollouts</option>
          </select>
        </div>
      </div>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {!service ? (
        <p class="muted">No service yet.</p>
      ) : !entries ? (
        <p>Loading…</p>
      ) : (
        <div class="table-wrap" tabIndex={0} role="region" aria-label="Weight changes">
          <table>
            <caption>
              {shown.length} of {entries.length} changes
            </caption>
            <thead>
              <tr>
                <th scope="col">Revision</th>
                <th scope="col">When</th>
                <th scope="col">Who</th>
                <th scope="col">From</th>
                <th scope="col">To</th>
                <th scope="col">Changed</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((entry) => (
                <tr key={entry.revision}>
                  <td class="num">{entry.revision}</td>
                  <td>{timestamp(Date.parse(entry.at))}</td>
                  <td>{entry.actor}</td>
                  <td>
                    <code>{splitText(entry.from)}</code>
                  </td>
                  <td>
                    <code>{splitText(entry.to)}</code>
                  </td>
                  <td>{changedVersions(entry).join(', ')}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  )
}
