import { mkdir, open, readFile, rename, rm, writeFile, type FileHandle } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { crc32 } from 'node:zlib'
import type { RegistryChange } from '../../core/registry-events.js'
import { CorruptStoreError, type LoadedState, type PersistedState, type RegistryStore } from './registry-store.js'

const SNAPSHOT_FILE = 'snapshot.json'
const JOURNAL_FILE = 'journal.log'
const LOCK_FILE = 'registry.lock'
const SNAPSHOT_MAGIC = 'switchyard-registry-snapshot/1'
/** Data directories open in this process: the pid in the lock file cannot tell two stores of one process apart. */
const openHere = new Set<string>()

export interface FileStoreOptions {
  dataDir: string
  /** journal records after which the state is compacted into a new snapshot */
  compactAfter?: number
  /** called with each repair made while opening (a torn final record) */
  onRepair?: (message: string) => void
}

interface PendingAppend {
  line: string
  resolve: () => void
  reject: (error: Error) => void
}

/**
 * The embedded store: a snapshot plus an append-only journal in one directory.
 *
 * A change is acknowledged only after its journal record has been written and
 * fdatasync'd. Appends that arrive while a sync is in progress are written together by
 * the next one (group commit), so many writers share one disk flush. Each record line is
 * `<crc32 hex> <json>`; only a final record may be torn (a crash mid-write, never
 * acknowledged) and is cut off on open; damage anywhere else stops start-up.
 * Compaction writes the snapshot to a temporary file, syncs it, renames it into place
 * and then starts an empty journal; records at or below the snapshot's revision are
 * skipped on replay, so a crash between those steps loses nothing.
 */
export class FileStore implements RegistryStore {
  private readonly dir: string
  private readonly compactAfter: number
  private readonly onRepair: (message: string) => void
  private journal: FileHandle | undefined
  private queue: PendingAppend[] = []
  private flushing = false
  private failure: Error | undefined
  private recordsSinceSnapshot = 0
  private compactionSource: (() => PersistedState) | undefined
  private idle: Promise<void> = Promise.resolve()
  private markIdle: () => void = () => {}

  constructor(options: FileStoreOptions) {
    this.dir = options.dataDir
    this.compactAfter = options.compactAfter ?? 10_000
    this.onRepair = options.onRepair ?? (() => {})
  }

  async open(): Promise<LoadedState> {
    await mkdir(this.dir, { recursive: true })
    await this.lock()
    try {
      await rm(join(this.dir, `${SNAPSHOT_FILE}.tmp`), { force: true })
      await rm(join(this.dir, `${JOURNAL_FILE}.tmp`), { force: true })
      const base = await this.readSnapshot()
      const changes = await this.readJournal(base?.snapshot.revision ?? 0)
      this.recordsSinceSnapshot = changes.length
      this.journal = await open(join(this.dir, JOURNAL_FILE), 'a')
      return { base, changes }
    } catch (error) {
      openHere.delete(resolve(this.dir))
      throw error
    }
  }

  setCompactionSource(source: () => PersistedState): void {
    this.compactionSource = source
  }

  append(change: RegistryChange): Promise<void> {
    if (this.failure) return Promise.reject(this.failure)
    if (!this.journal) return Promise.reject(new Error('store is not open'))
    const json = JSON.stringify(change)
    const line = `${crc32(json).toString(16).padStart(8, '0')} ${json}\n`
    return new Promise((resolve, reject) => {
      this.queue.push({ line, resolve, reject })
      if (!this.flushing) void this.flush()
    })
  }

  async close(): Promise<void> {
    if (this.flushing) await this.idle
    await this.journal?.close()
    this.journal = undefined
    await rm(join(this.dir, LOCK_FILE), { force: true })
    openHere.delete(resolve(this.dir))
  }

  private async flush(): Promise<void> {
    this.flushing = true
    this.idle = new Promise((resolve) => (this.markIdle = resolve))
    try {
      while (this.queue.length > 0) {
        const batch = this.queue
        this.queue = []
        try {
          const journal = this.journal as FileHandle
          await journal.write(batch.map((entry) => entry.line).join(''))
          await journal.datasync()
        } catch (error) {
          this.failure = new Error(`cannot write the registry journal in ${this.dir}: ${(error as Error).message}`, { cause: error })
          for (const entry of [...batch, ...this.queue]) entry.reject(this.failure)
          this.queue = []
          return
        }
        for (const entry of batch) entry.resolve()
        this.recordsSinceSnapshot += batch.length
        // Compact only when nothing is queued: then the in-memory state is exactly what is durable.
        if (this.recordsSinceSnapshot >= this.compactAfter && this.queue.length === 0 && this.compactionSource) {
          await this.compact(this.compactionSource())
        }
      }
    } catch (error) {
      this.failure = new Error(`cannot compact the registry store in ${this.dir}: ${(error as Error).message}`, { cause: error })
      for (const entry of this.queue) entry.reject(this.failure)
      this.queue = []
    } finally {
      this.flushing = false
      this.markIdle()
    }
  }

  private async compact(state: PersistedState): Promise<void> {
    const body = JSON.stringify(state)
    await writeDurably(join(this.dir, SNAPSHOT_FILE), `${SNAPSHOT_MAGIC} crc32=${crc32(body).toString(16)} length=${Buffer.byteLength(body)}\n${body}\n`)
    await syncDirectory(this.dir)
    await this.journal?.close()
    await writeDurably(join(this.dir, JOURNAL_FILE), '')
    await syncDirectory(this.dir)
    this.journal = await open(join(this.dir, JOURNAL_FILE), 'a')
    this.recordsSinceSnapshot = 0
  }

  private async readSnapshot(): Promise<PersistedState | undefined> {
    const path = join(this.dir, SNAPSHOT_FILE)
    const text = await readIfExists(path)
    if (text === undefined) return undefined
    const newline = text.indexOf('\n')
    const header = /^switchyard-registry-snapshot\/1 crc32=([0-9a-f]+) length=(\d+)$/.exec(text.slice(0, newline))
    const body = text.slice(newline + 1).replace(/\n$/, '')
    if (!header) throw new CorruptStoreError(`${path} is not a switchyard registry snapshot (bad header); restore it from a backup or move it away to start empty`)
    if (Buffer.byteLength(body) !== Number(header[2]) || crc32(body).toString(16) !== header[1]) {
      throw new CorruptStoreError(`${path} is damaged (length or checksum mismatch); restore it from a backup or move it away to start empty`)
    }
    try {
      return JSON.parse(body) as PersistedState
    } catch (error) {
      throw new CorruptStoreError(`${path} holds invalid JSON: ${(error as Error).message}`)
    }
  }

  private async readJournal(afterRevision: number): Promise<RegistryChange[]> {
    const path = join(this.dir, JOURNAL_FILE)
    const text = await readIfExists(path)
    if (text === undefined || text === '') return []
    const lines = text.split('\n')
    const tail = lines.pop() as string // text after the final newline: empty unless the last write was torn
    const changes: RegistryChange[] = []
    let goodBytes = 0
    let expected = afterRevision + 1
    for (let i = 0; i < lines.length; i++) {
      const change = parseRecord(lines[i] as string)
      if (!change) {
        if (i === lines.length - 1 && tail === '') {
          this.onRepair(`dropped a torn final record in ${path} (written but never acknowledged)`)
          break
        }
        throw new CorruptStoreError(`${path} is damaged at line ${i + 1} (checksum or JSON invalid); restore it from a backup, the registry will not guess`)
      }
      goodBytes += Buffer.byteLength(lines[i] as string) + 1
      if (change.revision <= afterRevision) continue
      if (change.revision !== expected) {
        throw new CorruptStoreError(`${path} skips from revision ${expected - 1} to ${change.revision} at line ${i + 1}`)
      }
      changes.push(change)
      expected++
    }
    if (tail !== '' || goodBytes !== Buffer.byteLength(text)) {
      if (tail !== '') this.onRepair(`dropped a torn final record in ${path} (written but never acknowledged)`)
      const handle = await open(path, 'r+')
      try {
        await handle.truncate(goodBytes)
        await handle.datasync()
      } finally {
        await handle.close()
      }
    }
    return changes
  }

  private async lock(): Promise<void> {
    const here = resolve(this.dir)
    if (openHere.has(here)) throw new Error(`data directory ${this.dir} is already open in this process; two registries must not share one`)
    const path = join(this.dir, LOCK_FILE)
    const holder = Number.parseInt((await readIfExists(path)) ?? '', 10)
    if (Number.isInteger(holder) && holder !== process.pid && (await isAlive(holder))) {
      throw new Error(`data directory ${this.dir} is in use by another registry (pid ${holder}); two registries must not share one`)
    }
    await writeFile(path, `${process.pid}\n`)
    openHere.add(here)
  }
}

function parseRecord(line: string): RegistryChange | undefined {
  const space = line.indexOf(' ')
  if (space !== 8) return undefined
  const json = line.slice(9)
  if (crc32(json).toString(16).padStart(8, '0') !== line.slice(0, 8)) return undefined
  try {
    const change = JSON.parse(json) as RegistryChange
    return typeof change.revision === 'number' && typeof change.type === 'string' ? change : undefined
  } catch {
    return undefined
  }
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw error
  }
}

async function writeDurably(path: string, content: string): Promise<void> {
  const temporary = `${path}.tmp`
  const handle = await open(temporary, 'w')
  try {
    await handle.writeFile(content)
    await handle.sync()
  } finally {
    await handle.close()
  }
  await rename(temporary, path)
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

async function isAlive(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0)
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
  // A killed registry whose parent has not reaped it yet still answers kill(0) as a zombie.
  const stat = await readIfExists(`/proc/${pid}/stat`).catch(() => undefined)
  return stat === undefined || !/^\d+ \(.*\) Z/s.test(stat)
}
