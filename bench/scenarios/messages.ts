import { progress } from '../lib/progress.js'
import type { BenchContext, ScenarioResult } from './scenario.js'

/**
 * The message router's benchmark: not written yet. (The scenario was specified before
 * the message router existed; it has landed since, with RabbitMQ and in-memory brokers,
 * and its benchmark still has to be specified: throughput and added latency per message,
 * split error, confirm-then-ack cost.)
 */
export async function messagesScenario(_context: BenchContext): Promise<ScenarioResult> {
  const reason = 'message router benchmark not built yet'
  progress('messages', `skipped: ${reason}`)
  return { name: 'messages', skipped: reason, notes: [`skipped: ${reason}`], tables: [], data: { skipped: reason } }
}
