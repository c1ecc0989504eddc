import type { Table } from '../scenarios/scenario.js'

/** A table for the terminal: first column left-aligned, figures right-aligned. */
export function renderTextTable(table: Table): string {
  const widths = table.columns.map((column, index) => Math.max(column.length, ...table.rows.map((row) => (row[index] ?? '').length)))
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, index) => (index === 0 ? cell.padEnd(widths[index] as number) : cell.padStart(widths[index] as number)))
      .join('  ')
      .trimEnd()
  const out = [table.title, line(table.columns), widths.map((width) => '-'.repeat(width)).join('  '), ...table.rows.map(line)]
  for (const note of table.notes ?? []) out.push(`  ${note}`)
  return out.join('\n')
}
