// Writes the measured section of docs/performance.md. The harness owns only the text between the two
// markers; the prose around them (method, how to read the table) is written by people and kept as is.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { repoRoot } from '../../support/workspaces.js'

export const reportPath = join(repoRoot, 'docs', 'performance.md')

/** A section of docs/performance.md that a benchmark run writes, between its two markers. */
export type MeasuredSection = 'proxy' | 'e2e' | 'costs'

/**
 * The document with the text between the section's markers replaced by `markdown` (the markers kept), or
 * with a new marked section at the end when it has none yet.
 */
export function withMeasuredSection (current: string, section: MeasuredSection, markdown: string): string {
  const start = `<!-- bench:${section}:start -->`
  const end = `<!-- bench:${section}:end -->`
  const block = `${start}\n${markdown.trim()}\n${end}`
  const startAt = current.indexOf(start)
  const endAt = current.indexOf(end)
  return startAt >= 0 && endAt > startAt
    ? current.slice(0, startAt) + block + current.slice(endAt + end.length)
    : `${current.trimEnd()}\n\n${block}\n`
}

export function replaceMeasuredSection (section: MeasuredSection, markdown: string): void {
  const current = existsSync(reportPath) ? readFileSync(reportPath, 'utf8') : '# Performance\n'
  writeFileSync(reportPath, withMeasuredSection(current, section, markdown))
}

/** Where every run leaves its tables (git-ignored), ready to paste: `.bench/<section>.md`. */
export function writeBenchResult (section: MeasuredSection, markdown: string): string {
  const dir = join(repoRoot, '.bench')
  mkdirSync(dir, { recursive: true })
  const file = join(dir, `${section}.md`)
  writeFileSync(file, `${markdown.trim()}\n`)
  return file
}

/**
 * A run's tables: printed, left in `.bench/<section>.md`, and with `write` (full runs) put into
 * docs/performance.md between the section's markers.
 */
export function publishBenchResult (section: MeasuredSection, markdown: string, write: boolean): void {
  console.log(`\n${markdown}\n`)
  console.log(`wrote ${writeBenchResult(section, markdown)}`)
  if (write) {
    replaceMeasuredSection(section, markdown)
    console.log('wrote docs/performance.md')
  }
}
