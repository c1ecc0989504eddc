import { useState } from 'preact/hooks'
import type { RouterView } from '../components/routers-applied.js'
import { useConsole, useLive, usePoll } from '../live/hooks.js'
import { age } from '../lib/format.js'

/** Every HTTP router and message router reporting to this registry, with its applied revision and lag. */
export function RoutersPage() {
  const { api, store } = useConsole()
  const live = useLive()
  const [answer, setAnswer] = useState<{ revision: number; routers: RouterView[] } | undefined>(undefined)
  usePoll(
    async (signal) => {
      setAnswer(await api.get<{ revision: number; routers: RouterView[] }>('/v1/routers', signal))
    },
    1000,
    []
  )
  const now = store.now()
  return (
    <section aria-labelledby="routers-title">
      <div class="page-head">
        <h1 id="routers-title">Routers</h1>
        <p class="muted">Registry revision {Math.max(live.view.revision, answer?.revision ?? 0)}. A router that stops reporting is dropped after the registry's router timeout.</p>
      </div>
      {!answer ? (
        <p>Loading…</p>
      ) : answer.routers.length === 0 ? (
        <p class="muted">No router is reporting to this registry.</p>
      ) : (
        <div class="table-wrap" tabIndex={0} role="region" aria-label="Routers">
          <table>
            <thead>
              <tr>
                <th scope="col">Router</th>
                <th scope="col">Kind</th>
                <th scope="col">Admin</th>
                <th scope="col">Applied revision</th>
                <th scope="col">Lag</th>
                <th scope="col">Last report</th>
                <th scope="col">Up since</th>
              </tr>
            </thead>
            <tbody>
              {answer.routers.map((router) => (
                <tr key={router.id}>
                  <th scope="row">{router.id}</th>
                  <td>{router.kind === 'http' ? 'HTTP router' : 'message router'}</td>
                  <td>
                    <code>{router.adminUrl}</code>
                  </td>
                  <td class="num">{router.appliedRevision}</td>
                  <td class={router.lag > 0 ? 'num gap' : 'num'}>{router.lag === 0 ? 'in step' : `${router.lag} behind`}</td>
                  <td>{age(Date.parse(router.lastReportAt), now)} ago</td>
                  <td>{age(Date.parse(router.startedAt), now)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  )
}
