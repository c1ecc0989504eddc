/**
 * Runs `work` now and hands back its outcome as a promise: a throw becomes a rejection.
 * For synchronous implementations of asynchronous interfaces (the in-memory broker, the
 * routers' signals), whose callers must see failures the way a network implementation
 * reports them, never as a throw from the call itself. (Promise.try, once Node 20 is gone.)
 */
export function asPromise<T>(work: () => T): Promise<T> {
  return new Promise((resolve) => resolve(work()))
}
