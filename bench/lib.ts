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
 * The variables bin/tessera (the package's bin) sets when they are not set: its
 * `: "${NAME:=VALUE}"` lines. Benchmarks that start the CLI some other way (node with flags,
 * a bundle of the current source) give them, so that they measure the process users run.
 */
export function wrapperEnv(): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [, name, value] of readFileSync('bin/tessera', 'utf8').matchAll(/^: "\$\{(\w+):=([^}]*)\}"$/gm)) env[name!] = value!
  return env
}
