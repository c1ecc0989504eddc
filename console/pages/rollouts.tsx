import { PhaseBadge } from '../components/rollout-panel.js'
import { useLive, useNow } from '../live/hooks.js'
import { age } from '../lib/format.js'
import { href } from '../lib/route.js'

/** Every service's latest rollout, active ones first. */
export function RolloutsPage() {
  const live = useLive()
  const now = useNow()
  const order = { progressing: 0, paused: 1, promoted: 2, 'rolled-back': 2, aborted: 2 }
  const rollouts = [...live.rollouts.values()].sort((a, b) => order[a.phase] - order[b.phase] || b.updatedAt - a.updatedAt)
  return (
    <section aria-labelledby="rollouts-title">
      <div class="page-head">
        <h1 id="rollouts-title">Rollouts</h1>
        <p class="muted">Start, pause, resume, abort or promote one from its service's page.</p>
      </div>
      {rollouts.length === 0 ? (
        <p class="muted">No rollout yet.</p>
      ) : (
        <div class="table-wrap" tabIndex={0} role="region" aria-label="Rollouts">
          <table>
            <thead>
              <tr>
                <th scope="col">Service</th>
                <th scope="col">State</th>
                <th scope="col">Canary</th>
                <th scope="col">Baseline</th>
                <th scope="col">Step</th>
                <th scope="col">Canary weight</th>
                <th scope="col">Reason</th>
                <th scope="col">Updated</th>
              </tr>
            </thead>
            <tbody>
              {rollouts.map((rollout) => (
                <tr key={rollout.service}>
                  <th scope="row">
                    <a href={href({ page: 'service', name: rollout.service })}>{rollout.service}</a>
                  </th>
                  <td>
                    <PhaseBadge phase={rollout.phase} />
                  </td>
                  <td>{rollout.spec.canary}</td>
                  <td>{rollout.spec.baseline}</td>
                  <td>
                    {rollout.step} of {rollout.spec.steps.length}
                  </td>
                  <td class="num">{rollout.canaryWeight}%</td>
                  <td>{rollout.reason}</td>
                  <td>{age(rollout.updatedAt, now + live.clockOffsetMs)} ago</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  )
}
