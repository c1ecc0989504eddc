/**
 * The measured failure of issue #12: the whole `npm start` mesh crashes (kill -9 of every
 * process) and starts again; the instances that died with it must not stay routable.
 * Self-preservation holds them at first (half the fleet expired at once looks like a
 * partition) and its bound ends that: they are gone within lease + bound.
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { call } from '../helpers/http.js'
import { startLocalStack, type LocalStack } from '../helpers/local-stack.js'
import { waitFor as pollUntil } from '../helpers/registry-harness.js'

const TOKEN = 'self-preservation-restart-token-0123456789'
const LEASE_SECONDS = 4
const BOUND_SECONDS = 8

/** every descendant of `pid`, deepest first */
function descendants(pid: number): number[] {
  let children: number[] = []
  try {
    children = execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .map((line) => Number(line.trim()))
      .filter((child) => child > 0)
  } catch {
    // ps exits 1 when there are none
  }
  return children.flatMap((child) => [...descendants(child), child])
}

const waitFor = <T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number): Promise<T> => pollUntil(check, what, timeoutMs, 100)

async function instanceIds(stack: LocalStack): Promise<string[]> {
  const answer = await call('GET', `${stack.env.SWITCHYARD_REGISTRY_URL}/v1/services`, { token: TOKEN })
  if (answer.status !== 200) return []
  return (answer.json.services as { instances: { id: string }[] }[]).flatMap((service) => service.instances.map((instance) => instance.id)).sort()
}

void t.test('after a crash of the whole mesh and a restart, the dead instances are gone within lease + bound', async (t) => {
  const stateDir = await mkdtemp(join(tmpdir(), 'switchyard-crash-'))
  t.teardown(() => rm(stateDir, { recursive: true, force: true }))
  const env = {
    SWITCHYARD_LEASE_SECONDS: String(LEASE_SECONDS),
    SWITCHYARD_RENEW_SECONDS: '1',
    SWITCHYARD_EVICTION_INTERVAL_SECONDS: '0.5',
    SWITCHYARD_SELF_PRESERVATION_MAX_SECONDS: String(BOUND_SECONDS)
  }
  // 8 instances of api v1.3 before the crash, 2 after: 6 of the 13 instances are dead (the measured case).
  const first = await startLocalStack({ token: TOKEN, env: { ...env, SWITCHYARD_LOCAL_API_V13: '8' }, stateDir, keepState: true })
  const before = await waitFor(
    'the first mesh registered',
    async () => {
      const ids = await instanceIds(first)
      return ids.length >= 13 ? ids : undefined
    },
    60_000
  )
  const dead = before.filter((id) => /^api-v1\.3-[3-8]$/.test(id))

  // The crash: every process of the mesh at once, nothing deregisters.
  const pids = [...descendants(first.process.child.pid as number), first.process.child.pid as number]
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
  await first.process.exited

  // The same mesh on the same ports, watched from the moment it starts: self-preservation
  // first holds the dead ones, then its bound ends it.
  const registryUrl = first.env.SWITCHYARD_REGISTRY_URL
  const restarted = Date.now()
  let kept = 0
  let watching = true
  const watched = (async () => {
    while (watching) {
      try {
        const ready = await call('GET', `${registryUrl}/readyz`)
        if (ready.json.selfPreservation === true) kept = Math.max(kept, ready.json.expiredInstancesKept as number)
      } catch {
        // not up yet
      }
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  })()
  const second = await startLocalStack({ token: TOKEN, env: { ...env, SWITCHYARD_LOCAL_API_V13: '2' }, stateDir, keepState: true, ports: first.ports })
  t.teardown(() => second.stop())
  const gone = await waitFor(
    'the dead instances gone',
    async () => {
      const ids = await instanceIds(second)
      return ids.length > 0 && dead.every((id) => !ids.includes(id)) ? ids : undefined
    },
    (LEASE_SECONDS + BOUND_SECONDS + 90) * 1000
  )
  watching = false
  await watched
  const seconds = (Date.now() - restarted) / 1000
  t.equal(dead.length, 6, '6 of 13 instances died with the crash')
  t.ok(kept >= dead.length, `self-preservation held ${kept} expired instances at first (the ${dead.length} dead among them)`)
  t.same(
    gone,
    before.filter((id) => !dead.includes(id)),
    'the live instances remain, the dead ones are gone'
  )
  t.comment(`the dead instances were gone ${seconds.toFixed(1)} s after the restart (lease ${LEASE_SECONDS} s + bound ${BOUND_SECONDS} s + the new mesh starting)`)
  const ready = await call('GET', `${second.env.SWITCHYARD_REGISTRY_URL}/readyz`)
  t.equal(ready.json.selfPreservation, false, 'self-preservation is off again')
})
