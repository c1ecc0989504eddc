import closeWithGrace, { type AllEvents } from 'close-with-grace'

/** What a shutdown reports: a pino/Fastify logger fits. */
export interface ShutdownLogger {
  info(message: string): void
  error(detail: { err?: unknown }, message: string): void
}

export interface GracefulShutdown {
  /** something the process cannot go on after: close as on a signal, then exit 1 */
  fail(error: unknown): void
}

/**
 * How every foreground process ends (close-with-grace underneath): the first SIGTERM or
 * SIGINT runs `close` once and exits 0; a close that throws, an uncaught error or fail()
 * exits 1; a second signal while closing exits 1 at once. Closing is not timed here: each
 * close bounds its own draining (the router's drainTimeoutMs, a service's drainMs).
 */
export function closeOnSignals(close: () => Promise<void>, log: ShutdownLogger, options: { keepSignals?: readonly Extract<AllEvents, `SIG${string}`>[] } = {}): GracefulShutdown {
  let failure: { error: unknown } | undefined
  const grace = closeWithGrace(
    {
      delay: false,
      // beforeExit is a process whose work ran out (a failed start, a CLI exit code set): not a shutdown to run.
      // keepSignals: signals the process handles itself (the TLS router reloads its certificate on SIGHUP).
      skip: ['beforeExit', ...(options.keepSignals ?? [])],
      logger: { error: (what: unknown) => (what instanceof Error ? log.error({ err: what }, 'close failed') : log.error({}, String(what))) }
    },
    async ({ signal, err }) => {
      const cause = err ?? failure?.error
      if (cause === undefined) log.info(`${signal ?? 'shutdown'} received, closing`)
      else log.error({ err: cause }, 'failed; closing')
      await close()
      if (failure) process.exit(1)
    }
  )
  return {
    fail(error) {
      failure ??= { error }
      grace.close()
    }
  }
}
