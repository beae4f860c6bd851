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
  // memory). The batching is done here, in a buffer the lines are encoded into as they come: one copy of
  // each line, no joined string and no second encoding when it is written (sonic-boom's own batching,
  // minLength, measures and re-encodes its pending string instead).
  // In buffer mode sonic-boom's write() takes Buffers; its types declare strings only.
  const dest = pino.destination({ dest: fd, sync: true, contentMode: 'buffer' }) as unknown as { write: (data: Buffer) => boolean, flushSync: () => void }
  let buffer = Buffer.allocUnsafe(bufferBytes)
  let used = 0
  const writePending = (): void => {
    if (used === 0) return
    const batch = buffer.subarray(0, used)
    // A new buffer for the next batch: sonic-boom may hold on to this one (the rest of a partial write).
    buffer = Buffer.allocUnsafe(bufferBytes)
    used = 0
    dest.write(batch)
  }
  const stream: pino.DestinationStream = {
    write (line: string) {
      // UTF-8 takes at most 3 bytes per UTF-16 code unit: room for that, so no line is measured first.
      const room = line.length * 3
      if (used + room > bufferBytes) {
        writePending()
        if (room > bufferBytes) {
          // Longer than a batch (an error's stack, say): written on its own.
          dest.write(Buffer.from(line, 'utf8'))
          return
        }
      }
      used += buffer.write(line, used)
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
