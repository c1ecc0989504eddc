import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { appendFile, mkdtemp, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { crc32 } from 'node:zlib'
import t from 'tap'
import type { RegistryChange } from '../../core/registry-events.js'
import { Registry } from '../../registry/registry.js'
import { FileStore } from '../../registry/store/file-store.js'
import { CorruptStoreError } from '../../registry/store/registry-store.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { waitFor } from '../helpers/registry-harness.js'

type Test = { teardown(fn: () => unknown): void }

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'switchyard-file-store-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

function change(revision: number): RegistryChange {
  return {
    type: 'weights-changed',
    revision,
    at: 1_700_000_000_000 + revision,
    service: `svc-${revision % 7}`,
    weights: { v1: 100 - (revision % 100), v2: revision % 100 },
    previous: {},
    actor: `actor-${revision}`
  }
}

/** A journal line exactly as the store writes it. */
function record(entry: RegistryChange): string {
  const json = JSON.stringify(entry)
  return `${crc32(json).toString(16).padStart(8, '0')} ${json}\n`
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i)
}

async function openStore(t: Test, dataDir: string, options: { compactAfter?: number } = {}): Promise<{ store: FileStore; repairs: string[]; changes: readonly RegistryChange[] }> {
  const repairs: string[] = []
  const store = new FileStore({ dataDir, ...options, onRepair: (message) => repairs.push(message) })
  const loaded = await store.open()
  t.teardown(() => store.close())
  return { store, repairs, changes: loaded.changes }
}

/** Writes revisions 1..count through a store and closes it. */
async function writeJournal(t: Test, dataDir: string, count: number): Promise<void> {
  const { store } = await openStore(t, dataDir)
  for (const revision of range(1, count)) await store.append(change(revision))
  await store.close()
}

function flipByte(buffer: Buffer, at: number): Buffer {
  const copy = Buffer.from(buffer)
  copy[at] = (copy[at] as number) ^ 0x01
  return copy
}

void t.test('appends survive close and reopen, in order', async (t) => {
  const dir = await tempDir(t)
  const first = await openStore(t, dir)
  t.same(first.changes, [], 'a new directory starts empty')
  for (const revision of range(1, 25)) await first.store.append(change(revision))
  await first.store.close()
  await t.rejects(first.store.append(change(26)), /not open/, 'a closed store refuses appends')

  const second = await openStore(t, dir)
  t.same(second.changes, range(1, 25).map(change), 'every change, in order, exactly as appended')
  t.same(second.repairs, [], 'nothing needed repair')
  for (const revision of range(26, 30)) await second.store.append(change(revision))
  await second.store.close()

  const third = await openStore(t, dir)
  t.same(
    third.changes.map((entry) => entry.revision),
    range(1, 30),
    'appends after a reopen continue the journal'
  )
})

void t.test('200 concurrent appends all resolve and are all there after reopen', async (t) => {
  const dir = await tempDir(t)
  const { store } = await openStore(t, dir)
  const settled = await Promise.allSettled(range(1, 200).map((revision) => store.append(change(revision))))
  t.ok(
    settled.every((result) => result.status === 'fulfilled'),
    'every append resolved'
  )
  const text = await readFile(join(dir, 'journal.log'), 'utf8')
  t.equal(
    text,
    range(1, 200)
      .map((revision) => record(change(revision)))
      .join(''),
    'the journal holds one line per change, in append order'
  )
  await store.close()

  const reopened = await openStore(t, dir)
  t.same(
    reopened.changes.map((entry) => entry.revision),
    range(1, 200)
  )
  t.same(reopened.changes, range(1, 200).map(change))
})

void t.test('a torn final record without its newline is dropped, reported, and cut off', async (t) => {
  const dir = await tempDir(t)
  await writeJournal(t, dir, 3)
  const path = join(dir, 'journal.log')
  const goodSize = (await stat(path)).size
  await appendFile(path, record(change(4)).slice(0, 40))

  const reopened = await openStore(t, dir)
  t.same(
    reopened.changes.map((entry) => entry.revision),
    [1, 2, 3],
    'the acknowledged records are kept'
  )
  t.equal(reopened.repairs.length, 1, 'onRepair was called once')
  t.match(reopened.repairs[0], path, 'naming the journal')
  t.match(reopened.repairs[0], /torn final record/)
  t.equal((await stat(path)).size, goodSize, 'the torn bytes were truncated away')

  await reopened.store.append(change(4))
  await reopened.store.append(change(5))
  await reopened.store.close()
  const again = await openStore(t, dir)
  t.same(
    again.changes.map((entry) => entry.revision),
    [1, 2, 3, 4, 5],
    'later appends land on a clean line'
  )
  t.same(again.repairs, [], 'and need no repair')
})

void t.test('garbage appended without a newline is dropped', async (t) => {
  const dir = await tempDir(t)
  await writeJournal(t, dir, 2)
  const path = join(dir, 'journal.log')
  await appendFile(path, '\u0000\u0000\u0000garbage that is not a record')
  const reopened = await openStore(t, dir)
  t.same(
    reopened.changes.map((entry) => entry.revision),
    [1, 2]
  )
  t.equal(reopened.repairs.length, 1)
  await reopened.store.append(change(3))
  await reopened.store.close()
  t.equal(await readFile(path, 'utf8'), [1, 2, 3].map((revision) => record(change(revision))).join(''), 'the file is exactly the three records')
})

void t.test('a truncated last line is dropped and later appends are fine', async (t) => {
  const dir = await tempDir(t)
  await writeJournal(t, dir, 4)
  const path = join(dir, 'journal.log')
  const size = (await stat(path)).size
  await truncate(path, size - 15)

  const reopened = await openStore(t, dir)
  t.same(
    reopened.changes.map((entry) => entry.revision),
    [1, 2, 3],
    'the cut record is dropped'
  )
  t.equal(reopened.repairs.length, 1)
  t.equal((await stat(path)).size, size - record(change(4)).length, 'the file ends after the last whole record')
  await reopened.store.append(change(4))
  await reopened.store.close()
  const again = await openStore(t, dir)
  t.same(again.changes, range(1, 4).map(change), 'the re-appended record reads back whole')
})

void t.test('damage in a middle record stops open() and changes nothing', async (t) => {
  const dir = await tempDir(t)
  await writeJournal(t, dir, 5)
  const path = join(dir, 'journal.log')
  const original = await readFile(path)
  const lineTwo = original.indexOf('\n') + 1
  const damaged = flipByte(original, lineTwo + 30)
  await writeFile(path, damaged)

  const repairs: string[] = []
  const store = new FileStore({ dataDir: dir, onRepair: (message) => repairs.push(message) })
  const error = await store.open().then(
    () => undefined,
    (failure: unknown) => failure
  )
  t.ok(error instanceof CorruptStoreError, 'a CorruptStoreError')
  t.match((error as Error).message, path, 'the message names the file')
  t.match((error as Error).message, /line 2/, 'and the line')
  t.same(repairs, [], 'no repair was attempted')
  t.same(await readFile(path), damaged, 'the journal was left exactly as it was')

  // Fixing the file by hand makes it open again.
  await writeFile(path, original)
  const fixed = await openStore(t, dir)
  t.same(
    fixed.changes.map((entry) => entry.revision),
    range(1, 5)
  )
})

void t.test('a damaged newline between records is damage, not a torn tail', async (t) => {
  const dir = await tempDir(t)
  await writeJournal(t, dir, 5)
  const path = join(dir, 'journal.log')
  const original = await readFile(path)
  const newline = original.indexOf('\n', original.indexOf('\n') + 1) // end of line 2
  const damaged = Buffer.from(original)
  damaged[newline] = 0x20
  await writeFile(path, damaged)
  await t.rejects(new FileStore({ dataDir: dir }).open(), CorruptStoreError)
  t.same(await readFile(path), damaged, 'unchanged')
})

void t.test('a journal that skips a revision is refused', async (t) => {
  const dir = await tempDir(t)
  await writeFile(join(dir, 'journal.log'), [1, 2, 4, 5].map((revision) => record(change(revision))).join(''))
  const error = await new FileStore({ dataDir: dir }).open().then(
    () => undefined,
    (failure: unknown) => failure
  )
  t.ok(error instanceof CorruptStoreError)
  t.match((error as Error).message, /skips from revision 2 to 4/)
})

/** A registry over a FileStore that compacts after 10 records, with every kind of change made through it. */
async function compactedRegistry(t: Test, dir: string): Promise<Registry> {
  const store = new FileStore({ dataDir: dir, compactAfter: 10 })
  const clock = new FakeClock()
  const registry = await Registry.open({ store, clock: clock.now })
  t.teardown(() => registry.close())
  await registry.register('api', { version: 'v1', host: '127.0.0.1', port: 9001, id: 'api-1' })
  await registry.register('api', { version: 'v2', host: '127.0.0.1', port: 9002, id: 'api-2', metadata: { zone: 'a' } })
  for (let step = 1; step <= 6; step++) {
    clock.advance(1_000)
    await registry.setWeights('api', { v1: 100 - step * 10, v2: step * 10 }, { actor: `operator-${step}` })
  }
  await registry.register('billing', { version: 'v1', host: '127.0.0.1', port: 9100, id: 'billing-1' })
  await registry.setStatus('api', 'api-1', 'draining')
  await registry.register('api', { version: 'v2', host: '127.0.0.1', port: 9003, id: 'api-3' })
  await registry.deregister('billing', 'billing-1')
  // weights of a service whose last instance is gone: pre-provisioning, said explicitly
  await registry.setWeights('billing', { v1: 100 }, { actor: 'operator-x', allowUnregistered: true })
  return registry
}

void t.test('compaction writes snapshot.json, shrinks the journal, and reopening yields the same state', async (t) => {
  const dir = await tempDir(t)
  const registry = await compactedRegistry(t, dir)
  const revision = registry.revision
  t.ok(revision > 10, `made ${revision} changes`)
  const state = await registry.snapshot()
  const history = registry.weightHistory('api')
  const allChanges = registry.hub.changesSince(0) ?? []
  t.equal(allChanges.length, revision)
  await registry.close()

  const snapshotText = await readFile(join(dir, 'snapshot.json'), 'utf8')
  t.match(snapshotText, /^switchyard-registry-snapshot\/1 crc32=[0-9a-f]+ length=\d+\n/, 'snapshot.json appeared with its header')
  const journal = await readFile(join(dir, 'journal.log'), 'utf8')
  const journalLines = journal.split('\n').filter((line) => line !== '')
  t.ok(journalLines.length < 10, `the journal shrank to ${journalLines.length} records`)
  const snapshotRevision = (JSON.parse(snapshotText.slice(snapshotText.indexOf('\n') + 1)) as { snapshot: { revision: number } }).snapshot.revision
  t.ok(snapshotRevision >= 10, `the snapshot is at revision ${snapshotRevision}`)
  t.equal(snapshotRevision + journalLines.length, revision, 'snapshot plus journal account for every revision')

  const reopened = await Registry.open({ store: new FileStore({ dataDir: dir, compactAfter: 10 }) })
  t.teardown(() => reopened.close())
  t.equal(reopened.revision, revision, 'the same revision')
  t.same(await reopened.snapshot(), state, 'the same state')
  t.same(reopened.weightHistory('api'), history, 'the same weight history (it lives in the snapshot too)')
  const next = await reopened.setWeights('api', { v1: 0, v2: 100 }, { actor: 'after' })
  t.equal(next.revision, revision + 1, 'the next change continues the revisions')
  const finalState = await reopened.snapshot()
  await reopened.close()

  // A crash after the snapshot was renamed into place but before the journal was emptied
  // leaves records at or below the snapshot's revision in the journal: they are skipped.
  const full = [...allChanges, ...(reopened.hub.changesSince(revision) ?? [])]
  await writeFile(join(dir, 'journal.log'), full.map(record).join(''))
  const afterCrash = await Registry.open({ store: new FileStore({ dataDir: dir }) })
  t.teardown(() => afterCrash.close())
  t.equal(afterCrash.revision, revision + 1, 'replayed to the last revision, once')
  t.same(await afterCrash.snapshot(), finalState, 'the same state as before the crash')
  t.same(afterCrash.weights('api'), { weights: { v1: 0, v2: 100 }, revision: revision + 1 })
  t.same(afterCrash.weightHistory('api').history.length, history.history.length + 1, 'no history entry was applied twice')
})

void t.test('a damaged snapshot.json stops open()', async (t) => {
  const dir = await tempDir(t)
  const registry = await compactedRegistry(t, dir)
  await registry.close()
  const path = join(dir, 'snapshot.json')
  const original = await readFile(path)

  const bodyDamaged = flipByte(original, original.indexOf('\n') + 20)
  await writeFile(path, bodyDamaged)
  const error = await new FileStore({ dataDir: dir }).open().then(
    () => undefined,
    (failure: unknown) => failure
  )
  t.ok(error instanceof CorruptStoreError, 'a flipped byte in the body is a CorruptStoreError')
  t.match((error as Error).message, path, 'naming snapshot.json')
  t.match((error as Error).message, /checksum/)
  t.same(await readFile(path), bodyDamaged, 'the snapshot was left as it was')

  await writeFile(path, `not a snapshot\n${original.toString('utf8').split('\n').slice(1).join('\n')}`)
  const header = await new FileStore({ dataDir: dir }).open().then(
    () => undefined,
    (failure: unknown) => failure
  )
  t.ok(header instanceof CorruptStoreError, 'a bad header too')
  t.match((header as Error).message, path)

  await writeFile(path, original.subarray(0, original.length - 30))
  await t.rejects(new FileStore({ dataDir: dir }).open(), CorruptStoreError, 'and a truncated snapshot')

  await writeFile(path, original)
  const fixed = await openStore(t, dir)
  t.ok(fixed.changes.length < 10, 'the restored snapshot opens again')
})

/** A separate node process holding a FileStore open on `dir` until its stdin closes. */
async function holdInAnotherProcess(t: Test, dir: string): Promise<{ pid: number; release: () => Promise<void> }> {
  const moduleUrl = pathToFileURL(join(import.meta.dirname, '../../registry/store/file-store.ts')).href
  const script = `
    const { FileStore } = await import(${JSON.stringify(moduleUrl)})
    const store = new FileStore({ dataDir: ${JSON.stringify(dir)} })
    await store.open()
    process.stdout.write('open\\n')
    process.stdin.resume()
    process.stdin.on('end', async () => { await store.close(); process.exit(0) })
  `
  const loader = process.execArgv.filter((arg) => arg.includes('typescript'))
  const child = spawn(process.execPath, [...loader, '--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] })
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
  await waitFor(
    () => {
      if (child.exitCode !== null) throw new Error(`the lock holder exited with ${child.exitCode}`)
      return output.includes('open') ? true : undefined
    },
    'the other process to open the store',
    30_000
  )
  return {
    pid: child.pid as number,
    release: async () => {
      const exited = once(child, 'exit')
      child.stdin.end()
      await exited
    }
  }
}

void t.test('a second FileStore on a directory another process has open is refused', async (t) => {
  const dir = await tempDir(t)
  const holder = await holdInAnotherProcess(t, dir)
  t.equal((await readFile(join(dir, 'registry.lock'), 'utf8')).trim(), String(holder.pid), 'the lock names the holder')

  const error = await new FileStore({ dataDir: dir }).open().then(
    () => undefined,
    (failure: unknown) => failure
  )
  t.ok(error instanceof Error, 'open() rejects')
  t.match((error as Error).message, `data directory ${dir} is in use by another registry (pid ${holder.pid})`, 'with a clear message naming the directory and pid')
  t.equal((await readFile(join(dir, 'registry.lock'), 'utf8')).trim(), String(holder.pid), 'the lock is untouched')

  await holder.release()
  const opened = await openStore(t, dir)
  t.same(opened.changes, [], 'once the holder closed its store, the directory opens')
  t.equal((await readFile(join(dir, 'registry.lock'), 'utf8')).trim(), String(process.pid), 'and the lock is ours')
})

void t.test('a lock left by a dead process is taken over', async (t) => {
  const dir = await tempDir(t)
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' })
  await once(child, 'exit')
  await writeFile(join(dir, 'registry.lock'), `${child.pid}\n`)
  await writeJournal(t, dir, 2)
  const opened = await openStore(t, dir)
  t.same(
    opened.changes.map((entry) => entry.revision),
    [1, 2]
  )
  await opened.store.close()
  await t.rejects(stat(join(dir, 'registry.lock')), { code: 'ENOENT' }, 'close() removes the lock')
})

void t.test('a second FileStore on a directory this process has open is refused too', async (t) => {
  const dir = await tempDir(t)
  const first = new FileStore({ dataDir: dir })
  await first.open()
  await t.rejects(new FileStore({ dataDir: dir }).open(), { message: `data directory ${dir} is already open in this process; two registries must not share one` })
  t.equal((await readFile(join(dir, 'registry.lock'), 'utf8')).trim(), String(process.pid), "the lock is still the first store's")
  await first.close()
  const second = new FileStore({ dataDir: dir })
  await second.open()
  t.pass('once the first store closed, the directory opens again')
  await second.close()
})
