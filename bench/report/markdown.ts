import type { Table } from '../scenarios/scenario.js'
import type { BenchRun } from './bench-run.js'

function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|')
}

export function renderMarkdownTable(table: Table): string {
  const align = table.columns.map((_, index) => (index === 0 ? '---' : '---:'))
  const lines = [
    `**${escapeCell(table.title)}**`,
    '',
    `| ${table.columns.map(escapeCell).join(' | ')} |`,
    `| ${align.join(' | ')} |`,
    ...table.rows.map((row) => `| ${row.map(escapeCell).join(' | ')} |`)
  ]
  if (table.notes?.length) lines.push('', ...table.notes.map((note) => `_${note}_`))
  return lines.join('\n')
}

/** The run's figures as Markdown: what ran where, then each scenario's tables and notes. */
export function renderMarkdown(run: BenchRun, chartFile: string | undefined): string {
  const { machine, identity } = run
  const lines = [
    `# switchyard benchmark: ${identity.startedAt.slice(0, 10)}, commit ${identity.commit}${identity.dirty ? ' (uncommitted changes)' : ''}${run.quick ? ' (quick run)' : ''}`,
    '',
    `Machine: ${machine.cores} cores, ${machine.cpuModel}, ${machine.memoryGiB} GiB, ${machine.os}, Node.js ${machine.node}, load average at start ${machine.loadAverageAtStart.join(' ')}.`,
    `Started ${identity.startedAt}, took ${Math.round(run.durationSeconds)} s. Command: \`${run.command}\`.`,
    ''
  ]
  if (chartFile) lines.push(`![throughput and p99 per configuration](${chartFile})`, '')
  for (const scenario of run.scenarios) {
    lines.push(`## ${scenario.name}`, '')
    if (scenario.skipped) {
      lines.push(`Skipped: ${scenario.skipped}.`, '')
      continue
    }
    for (const table of scenario.tables) lines.push(renderMarkdownTable(table), '')
    for (const note of scenario.notes) lines.push(`- ${note}`)
    lines.push('')
  }
  return `${lines.join('\n').trimEnd()}\n`
}
