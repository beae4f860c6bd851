// DATA_DIR holds the embedded database: only this service's user may read or write it. The directory is made
// (or made again) 0700, the process umask is set to 077 before PGlite creates a file, and PGlite's own chmods
// lose their group/other bits (OwnerOnlyNodeFS), so its files are 0600 and its directories 0700. Files an older
// version left readable by others are tightened at start.
import { chmod, lstat, mkdir, readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { NodeFS } from '@electric-sql/pglite/nodefs'

/** Permission bits for group and other. */
const GROUP_OTHER = 0o077

async function tighten (path: string): Promise<void> {
  const stats = await lstat(path)
  if (stats.isSymbolicLink()) return
  if ((stats.mode & GROUP_OTHER) !== 0) await chmod(path, stats.mode & 0o700)
  if (stats.isDirectory()) {
    for (const entry of await readdir(path)) await tighten(join(path, entry))
  }
}

/**
 * Creates dir (and missing parents) owner-only and sets the umask for files made later. With `contents`, also
 * tightens everything already inside (only for a folder this service owns entirely, such as DATA_DIR/pglite).
 */
export async function prepareDataDir (dir: string, options: { contents?: boolean } = {}): Promise<void> {
  process.umask(GROUP_OTHER)
  await mkdir(dir, { recursive: true, mode: 0o700 })
  if (options.contents === true) {
    await tighten(dir)
    return
  }
  const stats = await stat(dir)
  if ((stats.mode & GROUP_OTHER) !== 0) await chmod(dir, stats.mode & 0o700)
}

type SetAttr = (path: unknown, node: unknown, attr: unknown, chmod: (p: unknown, mode: number) => void, ...rest: unknown[]) => unknown

/**
 * PGlite's file system on disk, owner-only. PGlite's Emscripten layer creates every file through the umask but
 * then sets the mode it keeps in memory (0666, Emscripten has no umask) with an explicit chmod; this strips the
 * group and other bits from that chmod.
 */
export class OwnerOnlyNodeFS extends NodeFS {
  override async init (...args: Parameters<NodeFS['init']>): ReturnType<NodeFS['init']> {
    const result = await super.init(...args)
    const preRun = (result.emscriptenOpts.preRun ?? []) as ((mod: unknown) => void)[]
    result.emscriptenOpts.preRun = [...preRun, (mod: unknown) => {
      const nodefs = (mod as { NODEFS?: { doSetAttr?: SetAttr } }).NODEFS
      const doSetAttr = nodefs?.doSetAttr
      // Another PGlite build may not have it: prepareDataDir's tightening and the mode test still apply.
      if (nodefs === undefined || typeof doSetAttr !== 'function') return
      nodefs.doSetAttr = (path, node, attr, chmod, ...rest) =>
        doSetAttr.call(nodefs, path, node, attr, (p: unknown, mode: number) => chmod(p, mode & ~GROUP_OTHER), ...rest)
    }] as never
    return result
  }
}
