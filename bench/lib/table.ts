// Renders rows as a Markdown table: readable in a terminal and pasteable into docs/performance.md as is.

export type Cell = string | number

export function formatNumber (value: number, digits = 0): string {
  if (!Number.isFinite(value)) return '–'
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
}

export function formatRatio (value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)}×` : '–'
}

export function markdownTable (header: string[], rows: Cell[][], rightAligned: boolean[] = []): string {
  const cells = [header, ...rows.map((row) => row.map(String))]
  const widths = header.map((_, column) => Math.max(3, ...cells.map((row) => (row[column] ?? '').length)))
  const line = (row: string[]): string =>
    `| ${row.map((cell, column) => (rightAligned[column] ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!))).join(' | ')} |`
  const separator = `|${widths.map((width, column) => (rightAligned[column] ? `${'-'.repeat(width + 1)}:` : '-'.repeat(width + 2))).join('|')}|`
  return [line(header), separator, ...cells.slice(1).map(line)].join('\n')
}
