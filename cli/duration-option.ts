import { parseDuration } from '../core/duration.js'
import { UsageError } from './usage-error.js'

/** A duration flag ("30s", "500ms", "2m"; a bare number is seconds), or a usage error naming the flag. */
export function durationOption(text: string, flag: string): number {
  try {
    return parseDuration(text, flag)
  } catch (error) {
    throw new UsageError((error as Error).message)
  }
}
