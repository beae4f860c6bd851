// Where log lines go: stdout, written in batches.
//
// One write(2) per log line (one access line per request at LOG_LEVEL=info) was the largest single item
// of the benchmark profile (docs/performance.md, "Hot-path choices"). Lines are collected until about
// `bufferBytes` are pending and then written at once. A timer writes what is pending at least every
// FLUSH_INTERVAL_MS, so a quiet gateway's lines are never held longer than that; on close, and when
// the process exits, everything pending is written. What a crash that skips both (SIGKILL, the
// kernel's OOM killer) loses is at most `bufferBytes` of the last second's lines.
import { pino } from 'pino'

/** Longest a log line waits in the buffer. */
export const FLUSH_INTERVAL_MS = 1_000

export interface LogDestination {
  stream: pino.DestinationStream
  /** Writes what is pending and stops the timer. Idempotent. */
  close: () => void
}

export function bufferedStdout (bufferBytes: number, fd = 1): LogDestination {
  // sonic-boom writes each batch synchronously (a full pipe slows the gateway down rather than growing its
  // memory). The batching is done here because sonic-boom's own (minLength) measures its whole pending
  // buffer again on every line it appends: the lines are kept as they come and joined once per write.
  const dest = pino.destination({ dest: fd, sync: true })
  let lines: string[] = []
  // Characters pending: a byte each for the ASCII of JSON lines, so about bufferBytes are written at once.
  let size = 0
  const writePending = (): void => {
    if (lines.length === 0) return
    const text = lines.length === 1 ? lines[0] as string : lines.join('')
    lines = []
    size = 0
    dest.write(text)
  }
  const stream: pino.DestinationStream = {
    write (line: string) {
      lines.push(line)
      size += line.length
      if (size >= bufferBytes) writePending()
    }
  }
  const flush = (): void => {
    try {
      writePending()
    } catch {
      // stdout gone (closed pipe): nothing left to write to.
    }
  }
  // On close and at exit: everything, synchronously, before the process can end.
  const flushAll = (): void => {
    try {
      writePending()
      dest.flushSync()
    } catch {
      // stdout gone (closed pipe): nothing left to write to.
    }
  }
  const timer = setInterval(flush, FLUSH_INTERVAL_MS)
  timer.unref()
  process.once('exit', flushAll)
  let closed = false
  return {
    stream,
    close () {
      if (closed) return
      closed = true
      clearInterval(timer)
      process.off('exit', flushAll)
      flushAll()
    }
  }
}
