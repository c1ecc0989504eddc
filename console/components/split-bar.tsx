import { percent } from '../lib/format.js'

/** The colour class of a version: by its place in the service's version order. */
export const colorClass = (index: number): string => `c${index % 8}`

/**
 * A split as one bar: a segment per version with weight. Text, not colour alone, carries
 * the figures (the accessible name and the legend).
 */
export function SplitBar(props: { versions: readonly string[]; weights: Readonly<Record<string, number | null>>; label: string; thin?: boolean; legend?: boolean }) {
  const { versions, weights } = props
  const parts = versions.map((version, index) => ({ version, index, weight: weights[version] ?? 0 }))
  const description = parts.map((part) => `${part.version} ${percent(part.weight, 2)}`).join(', ')
  return (
    <div class="split">
      <div class={props.thin ? 'split-bar thin' : 'split-bar'} role="img" aria-label={`${props.label}: ${description || 'no versions'}`}>
        {parts
          .filter((part) => (part.weight ?? 0) > 0)
          .map((part) => (
            <span key={part.version} class={`segment ${colorClass(part.index)}`} style={{ width: `${part.weight}%` }} title={`${part.version} ${percent(part.weight, 2)}`} />
          ))}
      </div>
      {props.legend && (
        <ul class="legend" aria-hidden="true">
          {parts.map((part) => (
            <li key={part.version}>
              <span class={`swatch ${colorClass(part.index)}`} />
              {part.version} {percent(part.weight, 2)}
            </li>
          ))}
        </ul>
      )}
    </div>
  )
}
