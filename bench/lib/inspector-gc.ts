import WebSocket from 'ws'
import type { Child } from './children.js'
import { waitUntil } from './http.js'

/**
 * A full garbage collection in another Node.js process, through its inspector: the
 * process runs with `--inspect=127.0.0.1:0` (INSPECT_FLAG), prints where its inspector
 * listens, and HeapProfiler.collectGarbage is sent there. Memory measured right after it
 * counts what is alive, not garbage that no collection has reached yet. The inspector
 * stays otherwise idle (no debugger enabled): the process runs as it would without it.
 */
export const INSPECT_FLAG = '--inspect=127.0.0.1:0'

export async function inspectorUrl(child: Child): Promise<string> {
  return waitUntil(() => /Debugger listening on (ws:\/\/\S+)/.exec(child.output())?.[1], `the inspector address of ${child.name}`, 10_000)
}

export async function collectGarbage(child: Child, timeoutMs = 30_000): Promise<void> {
  const url = await inspectorUrl(child)
  const socket = new WebSocket(url, { perMessageDeflate: false })
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer from the inspector of ${child.name} within ${timeoutMs} ms`)), timeoutMs)
      socket.once('error', (error) => {
        clearTimeout(timer)
        reject(error)
      })
      socket.once('open', () => socket.send(JSON.stringify({ id: 1, method: 'HeapProfiler.collectGarbage' })))
      socket.on('message', (data: WebSocket.RawData) => {
        const answer = JSON.parse(String(data)) as { id?: number; error?: { message: string } }
        if (answer.id !== 1) return
        clearTimeout(timer)
        if (answer.error) reject(new Error(`HeapProfiler.collectGarbage in ${child.name}: ${answer.error.message}`))
        else resolve()
      })
    })
  } finally {
    socket.close()
  }
}
