import { readFileSync, unwatchFile, watch, watchFile, type FSWatcher } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { createSecureContext } from 'node:tls'
import type { TlsFiles } from '../config.js'

export interface KeyPair {
  cert: Buffer
  key: Buffer
}

export interface CertificateLog {
  info(object: object, message: string): void
  warn(object: object, message: string): void
}

export interface CertificateWatchOptions {
  files: TlsFiles
  /** puts a new pair in force for new connections (server.setSecureContext) */
  apply: (pair: KeyPair) => void
  log: CertificateLog
  /** poll the files instead of watching their directories (what happens anyway where fs.watch is not available) */
  poll?: boolean
  pollIntervalMs?: number
  /** events on a directory are gathered for this long: a certificate and its key are rarely written at the same instant */
  settleMs?: number
}

/** Reads a certificate and key and checks that they make a TLS context (a key that does not match its certificate does not). */
export function loadKeyPair(files: TlsFiles): KeyPair {
  const pair = { cert: readFileSync(files.cert), key: readFileSync(files.key) }
  createSecureContext(pair)
  return pair
}

/**
 * Keeps the proxy port's certificate current: `reload()` (SIGHUP) and any change of the
 * files read them again, and a pair that differs from the one in force and makes a valid
 * context replaces it for new connections; connections already open keep theirs. A pair
 * that does not load (a key written before its certificate) is logged, and the pair in
 * force stays until the next change.
 *
 * The files' directories are watched, not the files: tools that replace certificates
 * write a new file and rename it over the old one (or swap a symlinked directory, as
 * Kubernetes secret volumes do), which a watch on the old file would never see. Where
 * fs.watch is not available, the files are polled.
 */
export class CertificateWatch {
  private current: KeyPair
  private readonly watchers: FSWatcher[] = []
  private polling = false
  private timer: NodeJS.Timeout | undefined
  private reloading: Promise<boolean> | undefined
  private again = false

  constructor(
    private readonly options: CertificateWatchOptions,
    initial: KeyPair
  ) {
    this.current = initial
  }

  start(): void {
    const { files } = this.options
    if (!this.options.poll) {
      try {
        for (const directory of new Set([dirname(files.cert), dirname(files.key)])) {
          const watcher = watch(directory, { persistent: false }, () => this.changed())
          watcher.on('error', () => this.startPolling())
          this.watchers.push(watcher)
        }
        return
      } catch {
        this.stopWatchers()
      }
    }
    this.startPolling()
  }

  stop(): void {
    this.stopWatchers()
    if (this.polling) {
      unwatchFile(this.options.files.cert, this.onPoll)
      unwatchFile(this.options.files.key, this.onPoll)
      this.polling = false
    }
    clearTimeout(this.timer)
  }

  /**
   * Reads the files now; true when a new pair went into force. Calls during a reload are
   * gathered into one more reload after it.
   */
  reload(): Promise<boolean> {
    if (this.reloading) {
      this.again = true
      return this.reloading
    }
    this.reloading = this.readAndApply().finally(() => {
      this.reloading = undefined
      if (this.again) {
        this.again = false
        void this.reload()
      }
    })
    return this.reloading
  }

  private async readAndApply(): Promise<boolean> {
    const { files, log } = this.options
    let pair: KeyPair
    try {
      pair = { cert: await readFile(files.cert), key: await readFile(files.key) }
      if (pair.cert.equals(this.current.cert) && pair.key.equals(this.current.key)) return false
      createSecureContext(pair)
    } catch (error) {
      log.warn({ cert: files.cert, key: files.key, reason: (error as Error).message }, 'TLS certificate not reloaded; the one in force stays')
      return false
    }
    this.options.apply(pair)
    this.current = pair
    log.info({ cert: files.cert }, 'TLS certificate reloaded for new connections')
    return true
  }

  private changed(): void {
    clearTimeout(this.timer)
    this.timer = setTimeout(() => void this.reload(), this.options.settleMs ?? 100)
    this.timer.unref()
  }

  private readonly onPoll = (): void => this.changed()

  private startPolling(): void {
    this.stopWatchers()
    if (this.polling) return
    this.polling = true
    const interval = this.options.pollIntervalMs ?? 2000
    watchFile(this.options.files.cert, { persistent: false, interval }, this.onPoll)
    watchFile(this.options.files.key, { persistent: false, interval }, this.onPoll)
  }

  private stopWatchers(): void {
    for (const watcher of this.watchers.splice(0)) watcher.close()
  }
}
