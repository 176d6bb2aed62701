/** Small helpers every benchmark script shares. */
import { readFileSync } from 'node:fs'

/**
 * mulberry32: a tiny seeded generator of numbers in [0, 1), so every run of a benchmark uses
 * the same positions (https://gist.github.com/tommyettinger/46a874533244883189143505d203312c).
 */
export function random(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** The `q` quantile (0..1) of `samples`, nearest rank. */
export function quantile(samples: readonly number[], q: number): number {
  const sorted = [...samples].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
}

/** The median of `samples`. */
export function median(samples: readonly number[]): number {
  return quantile(samples, 0.5)
}

/**
 * `base` (the environment) as bin/tessera (the package's bin) passes it on: its
 * `: "${NAME:=VALUE}"` lines set what `base` does not, and its NODE_OPTIONS line puts its own
 * options before those of `base` (later ones win). Benchmarks that start the CLI some other way
 * (node with flags, a bundle of the current source) run it in this environment, so that they
 * measure the process users run.
 */
export function wrapperEnv(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const script = readFileSync('bin/tessera', 'utf8')
  const env = { ...base }
  for (const [, name, value] of script.matchAll(/^: "\$\{(\w+):=([^}]*)\}"$/gm)) env[name!] ||= value!
  const options = /^NODE_OPTIONS="([^"$]*)\$\{NODE_OPTIONS:\+ \$NODE_OPTIONS\}"$/m.exec(script)?.[1]
  if (options === undefined) throw new Error('bin/tessera: its NODE_OPTIONS line was not found')
  env.NODE_OPTIONS = base.NODE_OPTIONS ? `${options} ${base.NODE_OPTIONS}` : options
  return env
}
