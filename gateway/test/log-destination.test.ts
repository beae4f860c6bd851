// The batched log destination (src/log-destination.ts) writing to a file: every line arrives whole, in order
// and byte for byte (multi-byte UTF-8 and lines longer than a batch included), batches are written once about
// bufferBytes are pending, and close() writes what is pending.
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { bufferedStdout } from '../src/log-destination.js'
import type { TapTest } from '../../support/test-context.js'

function fileDestination (t: TapTest, bufferBytes: number): { write: (line: string) => void, close: () => void, written: () => string } {
  const dir = mkdtempSync(join(tmpdir(), 'log-destination-'))
  const path = join(dir, 'out.log')
  const fd = openSync(path, 'w')
  const destination = bufferedStdout(bufferBytes, fd)
  t.teardown(() => {
    destination.close()
    closeSync(fd)
    rmSync(dir, { recursive: true, force: true })
  })
  return { write: (line) => { destination.stream.write(line) }, close: destination.close, written: () => readFileSync(path, 'utf8') }
}

t.test('lines are held until a batch is full, then written whole and in order', async (t) => {
  const out = fileDestination(t, 64)
  out.write('{"n":1}\n')
  t.equal(out.written(), '', 'a first short line waits for the batch')
  const lines = Array.from({ length: 20 }, (_, i) => `{"n":${i + 2}}\n`)
  for (const line of lines) out.write(line)
  const written = out.written()
  t.ok(written.length > 0, 'a full batch was written')
  t.ok(('{"n":1}\n' + lines.join('')).startsWith(written), 'what was written is a prefix of the lines, in order')
  t.ok(written.endsWith('\n'), 'no line is split between batches')
  out.close()
  t.equal(out.written(), '{"n":1}\n' + lines.join(''), 'close() writes the rest')
})

t.test('multi-byte UTF-8 and lines longer than a batch arrive byte for byte', async (t) => {
  const out = fileDestination(t, 64)
  const lines = [
    '{"userId":"é"}\n',
    '{"msg":"€ 😀 ✓"}\n',
    '{"long":"' + 'x'.repeat(200) + '"}\n',
    '{"userId":"ünïcødé"}\n',
    '{"long":"' + '€'.repeat(30) + '"}\n'
  ]
  for (const line of lines) out.write(line)
  out.close()
  t.equal(out.written(), lines.join(''))
  t.equal(Buffer.byteLength(out.written()), Buffer.byteLength(lines.join('')))
})

t.test('close() is idempotent and a closed destination has nothing pending', async (t) => {
  const out = fileDestination(t, 4096)
  out.write('{"a":1}\n')
  out.close()
  out.close()
  t.equal(out.written(), '{"a":1}\n')
})
