/** The audit log as GET /v1/services/:service/history answers it, and the console's filter over it. */

export interface HistoryEntry {
  revision: number
  /** ISO-8601 */
  at: string
  actor: string
  from: Record<string, number>
  to: Record<string, number>
}

export interface HistoryFilter {
  /** words that must all appear in the actor or a changed version's name (case-insensitive) */
  text: string
  /** only changes by rollouts ('rollout'), or only by people and tools ('manual'), or all */
  kind: 'all' | 'rollout' | 'manual'
}

/** Versions whose weight differs between from and to. */
export function changedVersions(entry: HistoryEntry): string[] {
  const versions = new Set([...Object.keys(entry.from), ...Object.keys(entry.to)])
  return [...versions].filter((version) => (entry.from[version] ?? 0) !== (entry.to[version] ?? 0))
}

export function isRolloutChange(entry: HistoryEntry): boolean {
  return entry.actor === 'rollout' || entry.actor.startsWith('rollout ')
}

/** Newest first, as people read an audit log. */
export function filterHistory(entries: readonly HistoryEntry[], filter: HistoryFilter): HistoryEntry[] {
  const words = filter.text.toLowerCase().split(/\s+/).filter(Boolean)
  return entries
    .filter((entry) => {
      if (filter.kind === 'rollout' && !isRolloutChange(entry)) return false
      if (filter.kind === 'manual' && isRolloutChange(entry)) return false
      const haystack = [entry.actor, ...changedVersions(entry), String(entry.revision)].join(' ').toLowerCase()
      return words.every((word) => haystack.includes(word))
    })
    .sort((a, b) => b.revision - a.revision)
}
