// Reads a V8 .cpuprofile (from `node --cpu-prof`) and lists the functions with the most self time: the
// first thing to look at before optimising the gateway's hot path.
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { repoRoot } from './gateway.js'

interface CallFrame {
  functionName: string
  url: string
  lineNumber: number
}

interface ProfileNode {
  id: number
  callFrame: CallFrame
}

interface CpuProfile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

export interface HotSpot {
  name: string
  location: string
  selfMs: number
  percent: number
}

/** Paths relative to the repository (or to node_modules), so no machine path ends up in a report. */
function shortLocation(frame: CallFrame): string {
  if (!frame.url) return ''
  let url = frame.url.replace(/^file:\/\//, '')
  const modules = url.lastIndexOf('node_modules/')
  if (modules >= 0) url = url.slice(modules + 'node_modules/'.length)
  else if (url.startsWith(repoRoot)) url = url.slice(repoRoot.length + 1)
  return `${url}:${frame.lineNumber + 1}`
}

export function hotSpots(profile: CpuProfile, top = 15): { totalMs: number; spots: HotSpot[] } {
  const frameById = new Map(profile.nodes.map((node) => [node.id, node.callFrame]))
  const selfMicros = new Map<string, { frame: CallFrame; micros: number }>()
  let totalMicros = 0
  profile.samples.forEach((nodeId, index) => {
    const frame = frameById.get(nodeId)
    const delta = profile.timeDeltas[index] ?? 0
    if (!frame || frame.functionName === '(idle)') return
    totalMicros += delta
    const key = `${frame.functionName}|${frame.url}|${frame.lineNumber}`
    const entry = selfMicros.get(key) ?? { frame, micros: 0 }
    entry.micros += delta
    selfMicros.set(key, entry)
  })
  const spots = [...selfMicros.values()]
    .sort((a, b) => b.micros - a.micros)
    .slice(0, top)
    .map(({ frame, micros }) => ({
      name: frame.functionName || '(anonymous)',
      location: shortLocation(frame),
      selfMs: micros / 1000,
      percent: (100 * micros) / Math.max(1, totalMicros)
    }))
  return { totalMs: totalMicros / 1000, spots }
}

export function readProfiles(dir: string): CpuProfile[] {
  return readdirSync(dir)
    .filter((file) => file.endsWith('.cpuprofile'))
    .map((file) => JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile)
}
