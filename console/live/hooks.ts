import { createContext } from 'preact'
import { useContext, useEffect, useRef, useState } from 'preact/hooks'
import type { Identity } from '../lib/permissions.js'
import type { Api } from './api.js'
import type { LiveState, LiveStore } from './store.js'

export interface ConsoleContext {
  api: Api
  store: LiveStore
  identity: Identity
}

export const Console = createContext<ConsoleContext | undefined>(undefined)

export function useConsole(): ConsoleContext {
  const context = useContext(Console)
  if (!context) throw new Error('useConsole outside the signed-in console')
  return context
}

/** The live state; the component renders again when the store says it changed. */
export function useLive(): LiveState {
  const { store } = useConsole()
  const [, setTick] = useState(0)
  useEffect(() => store.subscribe(() => setTick((tick) => tick + 1)), [store])
  return store.state
}

/** Runs `task` now and every `intervalMs` while mounted (never two at once). */
export function usePoll(task: (signal: AbortSignal) => Promise<void>, intervalMs: number, deps: unknown[]): void {
  const latest = useRef(task)
  latest.current = task
  useEffect(() => {
    const controller = new AbortController()
    let timer: ReturnType<typeof setTimeout> | undefined
    const run = async () => {
      try {
        await latest.current(controller.signal)
      } catch {
        // the next poll tries again; pages show their own errors
      }
      if (!controller.signal.aborted) timer = setTimeout(() => void run(), intervalMs)
    }
    void run()
    return () => {
      controller.abort()
      clearTimeout(timer)
    }
  }, deps)
}

/** A clock that ticks every `intervalMs`, for ages ("4 s ago"). */
export function useNow(intervalMs = 1000): number {
  const [now, setNow] = useState(Date.now())
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), intervalMs)
    return () => clearInterval(timer)
  }, [intervalMs])
  return now
}
