import type { ProxySummary } from '../scenarios/proxy.js'

/**
 * A hand-written SVG of the proxy scenario: throughput at saturation and p99 latency
 * (at saturation and at the fixed rate) per configuration, horizontal bars, switchyard
 * highlighted. No chart library: plain <rect> and <text>.
 */
const ROW = 30
const LABEL = 150
const PANEL = 330
const GAP = 40
const TOP = 70

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

function format(value: number, digits: number): string {
  return Number.isFinite(value) ? value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : 'n/a'
}

export function renderProxyChart(summaries: readonly ProxySummary[], subtitle: string): string {
  const saturation = summaries.filter((summary) => summary.phase === 'saturation')
  const fixedRate = new Map(summaries.filter((summary) => summary.phase === 'fixed-rate').map((summary) => [summary.configuration, summary]))
  const maxRps = Math.max(1, ...saturation.map((summary) => (Number.isFinite(summary.rps) ? summary.rps : 0)))
  const maxP99 = Math.max(0.001, ...saturation.flatMap((summary) => [summary.p99, fixedRate.get(summary.configuration)?.p99 ?? 0].filter(Number.isFinite)))
  const width = 2 * (LABEL + PANEL) + GAP + 40
  const height = TOP + saturation.length * ROW + 60
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="20" y="24" font-size="16" font-weight="bold">switchyard proxy benchmark</text>`,
    `<text x="20" y="44" fill="#555">${escapeXml(subtitle)}</text>`
  ]
  const panels = [
    { x: 20, title: 'requests/s at saturation (median)' },
    { x: 20 + LABEL + PANEL + GAP, title: 'p99 latency, ms (dark: saturation, light: fixed rate)' }
  ]
  for (const panel of panels) parts.push(`<text x="${panel.x}" y="${TOP - 10}" font-weight="bold">${escapeXml(panel.title)}</text>`)
  saturation.forEach((summary, index) => {
    const y = TOP + index * ROW
    const highlight = summary.configuration.startsWith('switchyard')
    const strong = highlight ? '#d9480f' : '#1c7ed6'
    const light = highlight ? '#ffc078' : '#a5d8ff'
    for (const panel of panels) {
      parts.push(`<text x="${panel.x + LABEL - 8}" y="${y + 17}" text-anchor="end"${highlight ? ' font-weight="bold"' : ''}>${escapeXml(summary.configuration)}</text>`)
    }
    const rpsWidth = Number.isFinite(summary.rps) ? (summary.rps / maxRps) * (PANEL - 70) : 0
    const left = panels[0] as { x: number }
    parts.push(`<rect x="${left.x + LABEL}" y="${y + 4}" width="${rpsWidth.toFixed(1)}" height="${ROW - 10}" fill="${strong}"/>`)
    parts.push(`<text x="${left.x + LABEL + rpsWidth + 5}" y="${y + 17}">${format(summary.rps, 0)}</text>`)
    const right = panels[1] as { x: number }
    const fixed = fixedRate.get(summary.configuration)
    const bars = [
      { value: summary.p99, color: strong, offset: 3 },
      { value: fixed?.p99 ?? NaN, color: light, offset: 3 + (ROW - 8) / 2 }
    ]
    for (const bar of bars) {
      const barWidth = Number.isFinite(bar.value) ? (bar.value / maxP99) * (PANEL - 70) : 0
      parts.push(`<rect x="${right.x + LABEL}" y="${(y + bar.offset).toFixed(1)}" width="${barWidth.toFixed(1)}" height="${((ROW - 10) / 2).toFixed(1)}" fill="${bar.color}"/>`)
      parts.push(`<text x="${right.x + LABEL + barWidth + 5}" y="${(y + bar.offset + 9).toFixed(1)}" font-size="10">${format(bar.value, 2)}</text>`)
    }
  })
  parts.push(
    `<text x="20" y="${height - 20}" fill="#555" font-size="11">Each proxy pinned to its own core where taskset exists; figures are medians of interleaved rounds measured in the same run.</text>`
  )
  parts.push('</svg>')
  return `${parts.join('\n')}\n`
}
