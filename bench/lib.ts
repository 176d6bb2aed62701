/** Small helpers every benchmark script shares. */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

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
 * `base` (the environment) as bin/tessera (the package's bin) passes it on to `node` for
 * `command`: the wrapper itself runs, with a program in place of node that prints the
 * environment it was given. Benchmarks that start the CLI some other way (node with flags, a
 * bundle of the current source) run it in this environment, so that they measure the process
 * users run. (Reading the script's lines instead missed settings once they moved inside its
 * `case`: bench:soak then ran the server without glibc's mmap threshold, 30-60 MiB higher.)
 */
export function wrapperEnv(command: string, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-wrapper-'))
  try {
    writeFileSync(join(dir, 'node'), '#!/bin/sh\nexec env -0\n', { mode: 0o755 })
    const run = spawnSync(resolve('bin/tessera'), [command], { env: { ...base, PATH: `${dir}:${base.PATH ?? ''}` } })
    if (run.status !== 0) throw new Error(`bin/tessera ${command} with a stand-in node: ${run.stderr}`)
    const env: NodeJS.ProcessEnv = {}
    for (const pair of run.stdout.toString().split('\0')) {
      const at = pair.indexOf('=')
      if (at > 0) env[pair.slice(0, at)] = pair.slice(at + 1)
    }
    // What the shell adds for itself, and the stand-in's directory, are not the wrapper's.
    for (const name of ['PWD', 'OLDPWD', 'SHLVL', '_']) {
      if (base[name] === undefined) delete env[name]
      else env[name] = base[name]
    }
    if (base.PATH === undefined) delete env.PATH
    else env.PATH = base.PATH
    return env
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
