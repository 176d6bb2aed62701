/**
 * A bounded, seeded mutation fuzzer, shared by its targets: the hand-written decoders of the
 * importer (test/import/fuzz.ts) and stream cropping (test/stream/fuzz.ts). Input `i` of seed
 * `s` is a deterministic function of (s, i): a valid seed file with 1 to 4 mutations (bit flips,
 * byte and word sets, truncations, splices, inserted or deleted ranges), biased towards each
 * seed's "hot" ranges (headers, IFDs). Each input must succeed or fail with a Tessera code:
 * never another error, a hang, or unbounded memory. runFuzz runs a target's inputs in worker
 * processes (test/helpers/fuzz-child.ts) under a timeout and a memory budget.
 *
 * A target is a module exporting `fuzzInput(seed, i): FuzzInput` and `fuzzOne(path):
 * Promise<Outcome>`; its crashers are kept in a directory of testdata/bad/ and replayed by its
 * test.
 */
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

import { mulberry32 as random } from './random.js'

export { random }

/** A valid file the fuzzer mutates. */
export interface Seed {
  readonly name: string
  readonly bytes: Uint8Array
  /** Byte ranges worth mutating more often (headers, IFDs, chunk headers). */
  readonly hot: ReadonlyArray<readonly [number, number]>
}

const INTERESTING_8 = [0, 1, 0x7f, 0x80, 0xff, 2, 8, 16, 42, 43]
const INTERESTING_32 = [0, 1, 2, 7, 8, 16, 255, 256, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff]

// Mutation weights: bit flip, byte set, 16-bit set, 32-bit set, truncate, splice, repeat, delete.
const WEIGHTS = [20, 15, 15, 15, 5, 10, 10, 10]
const TOTAL = WEIGHTS.reduce((a, b) => a + b, 0)
function pick(r: number): number {
  let x = r * TOTAL
  for (let op = 0; op < WEIGHTS.length; op++) {
    x -= WEIGHTS[op]!
    if (x < 0) return op
  }
  return WEIGHTS.length - 1
}

/** One fuzz input: which seed, the mutations applied (for people), the bytes. */
export interface FuzzInput {
  readonly seed: string
  readonly ops: readonly string[]
  readonly bytes: Uint8Array
}

/** Input `i` of fuzz seed `seed` made from `all`: a pure function of the three. */
export function mutate(all: readonly Seed[], seed: number, i: number): FuzzInput {
  const next = random(Number.parseInt(createHash('sha256').update(`${seed}:${i}`).digest('hex').slice(0, 8), 16))
  const int = (n: number): number => Math.floor(next() * n)
  const base = all[int(all.length)]!
  // A copy, whatever the seed is: a Buffer's slice() is a view of the seed.
  let bytes = new Uint8Array(base.bytes)
  const ops: string[] = []
  const position = (): number => {
    if (bytes.length === 0) return 0
    if (next() < 0.6) {
      const [from, to] = base.hot[int(base.hot.length)]!
      const at = from + int(Math.max(1, to - from))
      if (at < bytes.length) return at
    }
    return int(bytes.length)
  }
  // Mostly one or two mutations: more inputs get past the first check and into the decoders.
  const n = next() < 0.5 ? 1 : 2 + int(3)
  for (let k = 0; k < n; k++) {
    const op = pick(next())
    const at = position()
    if (bytes.length === 0) break
    if (op === 0) {
      const bit = int(8)
      bytes[at] = bytes[at]! ^ (1 << bit)
      ops.push(`flip@${at}.${bit}`)
    } else if (op === 1) {
      const value = next() < 0.7 ? INTERESTING_8[int(INTERESTING_8.length)]! : int(256)
      bytes[at] = value
      ops.push(`byte@${at}=${value}`)
    } else if (op === 2 || op === 3) {
      const width = op === 2 ? 2 : 4
      const value = next() < 0.2 ? bytes.length + int(5) - 2 : INTERESTING_32[int(INTERESTING_32.length)]!
      const le = next() < 0.5
      const start = Math.min(at & ~1, Math.max(0, bytes.length - width))
      for (let b = 0; b < width && start + b < bytes.length; b++) {
        const shift = 8 * (le ? b : width - 1 - b)
        bytes[start + b] = Math.floor(value / 2 ** shift) & 0xff
      }
      ops.push(`word${width * 8}${le ? 'le' : 'be'}@${start}=${value}`)
    } else if (op === 4) {
      const length = int(bytes.length)
      bytes = bytes.slice(0, length)
      ops.push(`truncate@${length}`)
    } else if (op === 5) {
      const other = all[int(all.length)]!.bytes
      const from = int(other.length)
      const length = Math.min(1 + int(32), other.length - from, bytes.length - at)
      bytes.set(other.subarray(from, from + length), at)
      ops.push(`splice@${at}<-[${from},+${length}]`)
    } else if (op === 6) {
      const length = 1 + int(Math.min(64, bytes.length - at))
      bytes = Uint8Array.from([...bytes.subarray(0, at + length), ...bytes.subarray(at, at + length), ...bytes.subarray(at + length)])
      ops.push(`repeat@${at},+${length}`)
    } else {
      const length = 1 + int(Math.min(64, bytes.length - at))
      bytes = Uint8Array.from([...bytes.subarray(0, at), ...bytes.subarray(at + length)])
      ops.push(`delete@${at},+${length}`)
    }
  }
  return { seed: base.name, ops, bytes }
}

/** What decoding one input gave. */
export type Outcome =
  | { readonly kind: 'ok' | 'routed' | 'unknown' }
  | { readonly kind: 'coded'; readonly code: string }
  | { readonly kind: 'crash'; readonly error: string }

/** What a target module exports (loaded by path in the worker process). */
export interface FuzzTargetModule {
  fuzzInput(seed: number, i: number): FuzzInput
  fuzzOne(path: string): Promise<Outcome>
}

/** A fuzz target: its module's path and where its crashers are kept. */
export interface FuzzTarget {
  readonly name: string
  readonly module: string
  readonly crashers: string
}

/** A crasher's file name: what went wrong, where it came from, and a digest of its bytes. */
export function crasherName(kind: string, seed: number, i: number, bytes: Uint8Array): string {
  const digest = createHash('sha256').update(bytes).digest('hex').slice(0, 12)
  return `${kind}-s${seed}-i${i}-${digest}.bin`
}

/** Options of a fuzz run (`npm run chaos -- --only fuzz --seed S --iterations N`). */
export interface FuzzRunOptions {
  readonly target: FuzzTarget
  readonly seed: number
  readonly iterations: number
  /** Longest one input may take (default 5000 ms): no output for that long is a hang. */
  readonly timeoutMs?: number
  /** Peak RSS of the worker process above which an input is a memory crasher (default 384 MiB). */
  readonly maxRssMiB?: number
  /** Where crashers are written (default the target's directory); null to keep none. */
  readonly crashersDir?: string | null
  readonly log?: (line: string) => void
}

/** A bad input the run found. */
export interface Crasher {
  readonly i: number
  /** 'crash' (an error without a Tessera code), 'hang', 'died' (the process ended) or 'memory'. */
  readonly kind: string
  readonly detail: string
  readonly file?: string
}

/** What a fuzz run did. */
export interface FuzzReport {
  readonly seed: number
  readonly iterations: number
  /** Inputs by outcome: ok, routed, unknown, or the Tessera code they failed with. */
  readonly outcomes: Record<string, number>
  readonly crashers: Crasher[]
  readonly peakRssMiB: number
  readonly ms: number
}

const CHILD = fileURLToPath(new URL('./fuzz-child.ts', import.meta.url))
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
/** Time a worker gets to start (tsx, the decoders) before its first input is due. */
const STARTUP_MS = 20_000

interface ChildLine {
  readonly i: number
  readonly start?: boolean
  readonly kind?: string
  readonly code?: string
  readonly error?: string
  readonly rss?: number
}

/**
 * Runs inputs 0..iterations-1 of `seed` of `target` in worker processes (fuzz-child.ts), one
 * after another: a worker that hangs on an input is killed after `timeoutMs`, one that dies or
 * goes over the memory budget is replaced, and each such input, like each that fails without a
 * Tessera code, is a crasher, written to `crashersDir` (with a .json beside it saying why).
 */
export async function runFuzz(options: FuzzRunOptions): Promise<FuzzReport> {
  const { seed, iterations } = options
  const timeoutMs = options.timeoutMs ?? 5000
  const maxRssMiB = options.maxRssMiB ?? 384
  const { target } = options
  const crashersDir = options.crashersDir === undefined ? target.crashers : options.crashersDir
  const { fuzzInput } = (await import(target.module)) as FuzzTargetModule
  const log = options.log ?? (() => undefined)
  const started = performance.now()
  const outcomes: Record<string, number> = {}
  const crashers: Crasher[] = []
  let peakRssMiB = 0
  const keep = (i: number, kind: string, detail: string): void => {
    const input = fuzzInput(seed, i)
    let file: string | undefined
    if (crashersDir !== null) {
      mkdirSync(crashersDir, { recursive: true })
      file = join(crashersDir, crasherName(kind, seed, i, input.bytes))
      writeFileSync(file, input.bytes)
      writeFileSync(
        file.replace(/\.bin$/, '.json'),
        `${JSON.stringify({ seed, i, kind, detail, base: input.seed, ops: input.ops }, null, 1)}\n`,
      )
    }
    crashers.push({ i, kind, detail, ...(file === undefined ? {} : { file }) })
    log(`crasher: input ${i} (${input.seed}: ${input.ops.join(' ')}): ${kind}: ${detail}${file === undefined ? '' : ` -> ${file}`}`)
  }
  let next = 0
  while (next < iterations) {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', CHILD, target.module, String(seed), String(next), String(iterations), String(maxRssMiB)],
      {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-2000)
    })
    let killed = false
    let timer = setTimeout(() => {
      killed = true
      child.kill('SIGKILL')
    }, STARTUP_MS + timeoutMs)
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
    let pending: number | undefined
    let lastDone: number | undefined
    let resumeAt = iterations
    for await (const text of createInterface({ input: child.stdout })) {
      if (!text.startsWith('{')) continue
      const line = JSON.parse(text) as ChildLine
      clearTimeout(timer)
      timer = setTimeout(() => {
        killed = true
        child.kill('SIGKILL')
      }, timeoutMs)
      if (line.start === true) {
        pending = line.i
        continue
      }
      pending = undefined
      lastDone = line.i
      peakRssMiB = Math.max(peakRssMiB, line.rss ?? 0)
      const outcome = line.kind === 'coded' ? line.code! : line.kind!
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1
      if (line.kind === 'crash') keep(line.i, 'crash', line.error ?? '')
      if (line.kind === 'memory') {
        keep(line.i, 'memory', `peak RSS ${line.rss} MiB > ${maxRssMiB} MiB`)
        resumeAt = line.i + 1
      }
      if ((line.i + 1) % 500 === 0) log(`fuzz: ${line.i + 1}/${iterations} inputs, ${crashers.length} crashers`)
    }
    clearTimeout(timer)
    const code = await exited
    if (pending !== undefined) {
      const kind = killed ? 'hang' : 'died'
      outcomes[kind] = (outcomes[kind] ?? 0) + 1
      keep(pending, kind, killed ? `no result within ${timeoutMs} ms` : `exit ${code}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`)
      resumeAt = pending + 1
    } else if (resumeAt === iterations && code !== 0) {
      // Ended between inputs: go on after the last one it finished.
      if (lastDone === undefined) throw new Error(`fuzz worker failed before its first input (exit ${code}): ${stderr}`)
      if (!killed) log(`fuzz: worker ended after input ${lastDone} (exit ${code}); restarting`)
      resumeAt = lastDone + 1
    }
    next = resumeAt
  }
  return { seed, iterations, outcomes, crashers, peakRssMiB, ms: Math.round(performance.now() - started) }
}
