/**
 * Temporary files and directories named after the process that owns them
 * (`<prefix>p<pid>-<unique>`), so that what a killed process left behind can be told from what a
 * live one is still writing, and removed by the next process that looks (issue 10: libvips'
 * decode files, HTTP upload spools).
 */
import { lstat, readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'

/** Untouched for this long, a temporary whose owner is gone is left over (the default age floor). */
export const STALE_TEMP_MS = 60 * 60 * 1000

/** The start of a temporary's name owned by this process: `<prefix>p<pid>-`. */
export function ownedPrefix(prefix: string): string {
  return `${prefix}p${process.pid}-`
}

/** Whether a process with this pid exists on this machine (EPERM: it does, owned by someone else). */
export function processAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid < 1) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** When `path` (for a directory: it or anything directly in it) was last modified; undefined if gone. */
async function lastModified(path: string): Promise<number | undefined> {
  const stats = await lstat(path).catch(() => undefined)
  if (stats === undefined) return undefined
  if (!stats.isDirectory()) return stats.mtimeMs
  let latest = stats.mtimeMs
  for (const name of await readdir(path).catch(() => [])) {
    const inner = await lstat(join(path, name)).catch(() => undefined)
    if (inner !== undefined) latest = Math.max(latest, inner.mtimeMs)
  }
  return latest
}

/**
 * Removes the entries of `dir` named `<prefix>...` that a dead process left: those whose owner
 * (the pid in `<prefix>p<pid>-`) is not a live process on this machine, or that carry no pid,
 * and that nobody has modified for `maxAgeMs` (the floor keeps a live writer in another pid
 * namespace sharing the directory safe). Files, symbolic links and, with `directories`, whole
 * directories. Returns how many were removed; never fails on one entry.
 */
export async function removeStaleTemporaries(
  dir: string,
  prefix: string,
  options: { readonly maxAgeMs?: number; readonly directories?: boolean } = {},
): Promise<number> {
  const maxAgeMs = options.maxAgeMs ?? STALE_TEMP_MS
  let removed = 0
  for (const name of await readdir(dir)) {
    if (!name.startsWith(prefix)) continue
    const pid = /^p(\d+)-/.exec(name.slice(prefix.length))?.[1]
    if (pid !== undefined && processAlive(Number(pid))) continue
    const path = join(dir, name)
    const stats = await lstat(path).catch(() => undefined)
    if (stats === undefined || !(stats.isFile() || stats.isSymbolicLink() || (options.directories === true && stats.isDirectory())))
      continue
    const modified = await lastModified(path)
    if (modified === undefined || Date.now() - modified < maxAgeMs) continue
    await rm(path, { force: true, recursive: stats.isDirectory() }).then(
      () => removed++,
      () => undefined,
    )
  }
  return removed
}
