// Reads a V8 .cpuprofile (from `node --cpu-prof`) and lists where the CPU went: the functions with the most
// self time (for a native function, also the nearest JavaScript caller, so "writeString" shows up as the
// logger's write that called it) and the self time per package. The first thing to look at before
// optimising the gateway's hot path.
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { repoRoot } from '../../support/workspaces.js'

interface CallFrame {
  functionName: string
  url: string
  lineNumber: number
}

interface ProfileNode {
  id: number
  callFrame: CallFrame
  children?: number[]
}

export interface CpuProfile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

export interface HotSpot {
  name: string
  location: string
  /** For native code or Node's own modules: the nearest caller in a package or in the repository. */
  via: string
  selfMs: number
  percent: number
}

export interface PackageShare {
  name: string
  selfMs: number
  percent: number
}

/** Paths relative to the repository (or to node_modules), so no machine path ends up in a report. */
function shortUrl (url: string): string {
  let path = url.replace(/^file:\/\//, '')
  const modules = path.lastIndexOf('node_modules/')
  if (modules >= 0) path = path.slice(modules + 'node_modules/'.length)
  else if (path.startsWith(repoRoot)) path = path.slice(repoRoot.length + 1)
  return path
}

function shortLocation (frame: CallFrame): string {
  return frame.url ? `${shortUrl(frame.url)}:${frame.lineNumber + 1}` : ''
}

/** The package a frame belongs to: an npm package, `node` (its built-in modules), the repo's own workspace, or native. */
function packageOf (frame: CallFrame | undefined): string {
  if (!frame?.url) return '(native code, GC, program)'
  if (frame.url.startsWith('node:')) return 'node (built-in modules)'
  const path = frame.url.replace(/^file:\/\//, '')
  const modules = path.lastIndexOf('node_modules/')
  if (modules >= 0) {
    const [scopeOrName = '', name = ''] = path.slice(modules + 'node_modules/'.length).split('/')
    return scopeOrName.startsWith('@') ? `${scopeOrName}/${name}` : scopeOrName
  }
  if (path.startsWith(repoRoot)) return path.slice(repoRoot.length + 1).split('/')[0] ?? path
  return shortUrl(path)
}

export function hotSpots (profile: CpuProfile, top = 15): { totalMs: number; spots: HotSpot[]; packages: PackageShare[] } {
  const nodeById = new Map(profile.nodes.map((node) => [node.id, node]))
  const parentOf = new Map<number, number>()
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id)
  // Native code and Node's own modules are rarely what one changes: charge them to the nearest caller in a
  // package or in the repository (e.g. writeString ← fs.write ← sonic-boom, i.e. the logger).
  const isApplicationCode = (frame: CallFrame | undefined): boolean => Boolean(frame?.url) && !frame!.url.startsWith('node:')
  const nearestApplicationCaller = (id: number): CallFrame | undefined => {
    for (let current = parentOf.get(id); current !== undefined; current = parentOf.get(current)) {
      const frame = nodeById.get(current)?.callFrame
      if (isApplicationCode(frame)) return frame
    }
    return undefined
  }

  const bySpot = new Map<string, { frame: CallFrame; via: string; micros: number }>()
  const byPackage = new Map<string, number>()
  let totalMicros = 0
  profile.samples.forEach((nodeId, index) => {
    const frame = nodeById.get(nodeId)?.callFrame
    const delta = profile.timeDeltas[index] ?? 0
    if (!frame || frame.functionName === '(idle)') return
    totalMicros += delta
    const caller = isApplicationCode(frame) ? undefined : nearestApplicationCaller(nodeId)
    const via = caller ? `${caller.functionName || '(anonymous)'} ${shortLocation(caller)}` : ''
    const key = `${frame.functionName}|${frame.url}|${frame.lineNumber}|${via}`
    const entry = bySpot.get(key) ?? { frame, via, micros: 0 }
    entry.micros += delta
    bySpot.set(key, entry)
    const owner = packageOf(caller ?? frame)
    byPackage.set(owner, (byPackage.get(owner) ?? 0) + delta)
  })
  const percent = (micros: number): number => (100 * micros) / Math.max(1, totalMicros)
  const spots = [...bySpot.values()]
    .sort((a, b) => b.micros - a.micros)
    .slice(0, top)
    .map(({ frame, via, micros }) => ({
      name: frame.functionName || '(anonymous)',
      location: shortLocation(frame),
      via,
      selfMs: micros / 1000,
      percent: percent(micros)
    }))
  const packages = [...byPackage.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 10)
    .map(([name, micros]) => ({ name, selfMs: micros / 1000, percent: percent(micros) }))
  return { totalMs: totalMicros / 1000, spots, packages }
}

export function readProfiles (dir: string): CpuProfile[] {
  return readdirSync(dir)
    .filter((file) => file.endsWith('.cpuprofile'))
    .map((file) => JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile)
}
