// Writes the measured section of docs/performance.md. The harness owns only the text between the two
// markers; the prose around them (method, how to read the table) is written by people and kept as is.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { repoRoot } from '../../support/workspaces.js'

export const reportPath = join(repoRoot, 'docs', 'performance.md')

export function replaceMeasuredSection (section: 'proxy' | 'e2e', markdown: string): void {
  const start = `<!-- bench:${section}:start -->`
  const end = `<!-- bench:${section}:end -->`
  const block = `${start}\n${markdown.trim()}\n${end}`
  const current = existsSync(reportPath) ? readFileSync(reportPath, 'utf8') : '# Performance\n'
  const startAt = current.indexOf(start)
  const endAt = current.indexOf(end)
  const next =
    startAt >= 0 && endAt > startAt
      ? current.slice(0, startAt) + block + current.slice(endAt + end.length)
      : `${current.trimEnd()}\n\n${block}\n`
  writeFileSync(reportPath, next)
}

/** Where every run leaves its tables (git-ignored), ready to paste: `.bench/<section>.md`. */
export function writeBenchResult (section: 'proxy' | 'e2e', markdown: string): string {
  const dir = join(repoRoot, '.bench')
  mkdirSync(dir, { recursive: true })
  const file = join(dir, `${section}.md`)
  writeFileSync(file, `${markdown.trim()}\n`)
  return file
}
