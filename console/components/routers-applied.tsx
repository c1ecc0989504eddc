import { useState } from 'preact/hooks'
import { usePoll, useConsole } from '../live/hooks.js'

export interface RouterView {
  id: string
  kind: 'http' | 'messages'
  adminUrl: string
  appliedRevision: number
  lag: number
  startedAt: string
  firstReportAt: string
  lastReportAt: string
}

/**
 * After a write: which routers have applied its revision (GET /v1/routers, every 500 ms
 * until every live router has, or 30 s have passed).
 */
export function RoutersApplied(props: { revision: number; since: number }) {
  const { api } = useConsole()
  const [routers, setRouters] = useState<RouterView[] | undefined>(undefined)
  const [done, setDone] = useState(false)
  usePoll(
    async (signal) => {
      if (done) return
      const answer = await api.get<{ routers: RouterView[] }>('/v1/routers', signal)
      setRouters(answer.routers)
      if (answer.routers.every((router) => router.appliedRevision >= props.revision) || Date.now() - props.since > 30_000) setDone(true)
    },
    500,
    [props.revision, done]
  )
  if (!routers) return <p class="muted">Asking the routers…</p>
  if (routers.length === 0) return <p class="warn">No router is reporting to this registry: nothing routes by this split yet.</p>
  const applied = routers.filter((router) => router.appliedRevision >= props.revision).length
  return (
    <div class="routers-applied" aria-live="polite">
      <p>
        <strong>
          {applied} of {routers.length}
        </strong>{' '}
        router{routers.length === 1 ? '' : 's'} applied revision {props.revision}
        {applied === routers.length ? '.' : done ? ' (stopped waiting after 30 s).' : '…'}
      </p>
      <ul class="router-list">
        {routers.map((router) => (
          <li key={router.id} class={router.appliedRevision >= props.revision ? 'ok' : 'pending'}>
            <span class="badge">{router.appliedRevision >= props.revision ? 'applied' : 'waiting'}</span> {router.id} ({router.kind === 'http' ? 'HTTP router' : 'message router'},
            at revision {router.appliedRevision})
          </li>
        ))}
      </ul>
    </div>
  )
}
