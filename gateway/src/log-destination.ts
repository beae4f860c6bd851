// Where log lines go: stdout, written in batches.
//
// One write(2) per log line (one access line per request at LOG_LEVEL=info) was the largest single item
// of the benchmark profile (docs/performance.md, "Hot-path choices"). pino's destination (sonic-boom)
// collects lines until `bufferBytes` are pending and then writes them at once, still synchronously, so a full pipe slows
// the gateway down instead of growing its memory. A timer writes what is pending at least every
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

export function bufferedStdout (bufferBytes: number): LogDestination {
  const dest = pino.destination({ dest: 1, minLength: bufferBytes, sync: true })
  // Whether anything was written since the last flush: the timer writes only then (flushing an empty
  // buffer would still cost a write).
  let pending = false
  const stream: pino.DestinationStream = {
    write (line: string) {
      pending = true
      dest.write(line)
    }
  }
  const flush = (): void => {
    if (!pending) return
    pending = false
    try {
      // flush(), not flushSync(): a write of what is pending, without the fsync flushSync adds (a disk
      // flush every second when stdout is a file).
      dest.flush()
    } catch {
      // stdout gone (closed pipe): nothing left to write to.
    }
  }
  // On close and at exit: everything, synchronously, before the process can end.
  const flushAll = (): void => {
    try {
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
