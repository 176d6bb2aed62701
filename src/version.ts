/**
 * Tessera's version: the `version` of the nearest package.json named "tessera" above this
 * module, wherever a build put it (src/, dist/, dist/bundle/, a benchmark's own bundle).
 */
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

let found: string | undefined

/** The package's version ('unknown' if no package.json of Tessera's is found above). */
export function tesseraVersion(): string {
  found ??= findVersion()
  return found
}

function findVersion(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown }
      if (pkg.name === 'tessera' && typeof pkg.version === 'string') return pkg.version
    } catch {
      // No package.json here, or not one that parses: look further up.
    }
    if (dirname(dir) === dir) return 'unknown'
  }
}
