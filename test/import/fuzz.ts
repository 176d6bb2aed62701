/**
 * A bounded, seeded mutation fuzzer of the hand-written decoders (TIFF and Netpbm,
 * src/import/decoders/tiff.ts and pnm.ts): input `i` of seed `s` is a deterministic function of
 * (s, i), a valid seed file with 1 to 4 mutations (bit flips, byte and word sets, truncations,
 * splices, inserted or deleted ranges), biased towards the headers and IFDs. Each input must
 * decode or fail with a Tessera code: never another error, a hang, or unbounded memory.
 *
 * Used by `npm run chaos -- --only fuzz` (bench/chaos.ts: a child process per run of inputs,
 * killed on a per-input timeout or over a memory budget; crashers are written to
 * testdata/bad/crashers/) and by test/import/fuzz.test.ts (replays the crashers, runs a slice).
 * Inputs that only libvips would decode are counted as "routed", not decoded: libvips is not
 * what this fuzzes.
 */
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { tesseraCode } from '../../src/errors.js'
import type { DecodedImage } from '../../src/import/decoders/interface.js'
import { isPnm, openPnm } from '../../src/import/decoders/pnm.js'
import { checkDimensions, readAt } from '../../src/import/decoders/rows.js'
import { isTiff, readTiffHeader, TiffImage, tiffRoute } from '../../src/import/decoders/tiff.js'
import { pnm, TIFF_DEFLATE, TIFF_ZSTD, tiff } from '../../testdata/bad/encoders.js'

const TESTDATA = fileURLToPath(new URL('../../testdata/', import.meta.url))
/** Where crashers are kept, one file each, replayed by test/import/fuzz.test.ts. */
export const CRASHERS = join(TESTDATA, 'bad/crashers')

/** Limits the fuzzed decodes run with: small, so a legitimate decode of a mutated header is quick. */
export const FUZZ_LIMITS = { maxPixels: 2 ** 24, maxDecodeBytes: 64 * 2 ** 20 } as const

/** mulberry32: a small, fast, seedable generator (public domain, Tommy Ettinger). */
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

interface Seed {
  readonly name: string
  readonly bytes: Uint8Array
  /** Byte ranges worth mutating more often: the header and the IFD / the PNM header. */
  readonly hot: ReadonlyArray<readonly [number, number]>
}

let seeds: Seed[] | undefined

/** The valid files mutated: small generated TIFFs and PNMs of every kind, and a few fixtures. */
export function fuzzSeeds(): readonly Seed[] {
  seeds ??= [
    ['strips-none-gray8.tif', tiff({ width: 23, height: 17, rowsPerStrip: 5 })],
    ['strips-deflate-rgb8-pred.tif', tiff({ width: 19, height: 13, samples: 3, rowsPerStrip: 4, compression: TIFF_DEFLATE, predictor: 2 })],
    [
      'tiles-zstd-rgba16.tif',
      tiff({ width: 40, height: 24, samples: 4, bits: 16, extraSamples: [2], tile: [16, 16], compression: TIFF_ZSTD }),
    ],
    ['tiles-deflate-graya8.tif', tiff({ width: 33, height: 33, samples: 2, extraSamples: [1], tile: [16, 16], compression: TIFF_DEFLATE })],
    [
      'bigtiff-be-tiles-rgb8.tif',
      tiff({ width: 20, height: 20, samples: 3, tile: [16, 16], compression: TIFF_DEFLATE, bigTiff: true, bigEndian: true }),
    ],
    ['strips-none-gray16-be.tif', tiff({ width: 9, height: 30, bits: 16, rowsPerStrip: 7, bigEndian: true })],
    ['strips-zstd-gray16-pred.tif', tiff({ width: 31, height: 9, bits: 16, rowsPerStrip: 2, compression: TIFF_ZSTD, predictor: 2 })],
    ['gray8.pgm', pnm('P5\n# a comment\n7 5\n255\n', pattern(35, 1))],
    ['rgb16.ppm', pnm('P6 6 4 65535\n', pattern(6 * 4 * 6, 2))],
    ['graya8.pam', pnm('P7\nWIDTH 5\nHEIGHT 3\nDEPTH 2\nMAXVAL 255\nTUPLTYPE GRAYSCALE_ALPHA\nENDHDR\n', pattern(30, 3))],
    ['rgba16.pam', pnm('P7\nWIDTH 3\nHEIGHT 3\nDEPTH 4\nMAXVAL 65535\nENDHDR\n', pattern(72, 4))],
    ['fixture-rgb8-tiled-zstd-be-bigtiff.tif', new Uint8Array(readFileSync(join(TESTDATA, 'rgb8-tiled-zstd-be-bigtiff.tif')))],
    ['fixture-graya8-strip-deflate.tif', new Uint8Array(readFileSync(join(TESTDATA, 'graya8-strip-deflate.tif')))],
    ['fixture-gray8.pam', new Uint8Array(readFileSync(join(TESTDATA, 'gray8.pam')))],
  ].map(([name, bytes]) => ({ name: name as string, bytes: bytes as Uint8Array, hot: hotRanges(bytes as Uint8Array) }))
  return seeds
}

function pattern(n: number, salt: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 31 + salt * 17 + (i >> 3)) & 0xff)
}

/** The header and first IFD of a TIFF, or the header of a PNM. */
function hotRanges(bytes: Uint8Array): Array<[number, number]> {
  if (isTiff(bytes)) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length)
    const le = bytes[0] === 0x49
    const big = view.getUint16(2, le) === 43
    const ifd = big ? Number(view.getBigUint64(8, le)) : view.getUint32(4, le)
    const count = big ? Number(view.getBigUint64(ifd, le)) : view.getUint16(ifd, le)
    const end = ifd + (big ? 8 : 2) + count * (big ? 20 : 12) + (big ? 8 : 4)
    // Past the byte-order mark, which only turns the file into an unknown one.
    return [
      [2, big ? 16 : 8],
      [ifd, Math.min(end, bytes.length)],
    ]
  }
  const text = Buffer.from(bytes.subarray(0, 200)).toString('latin1')
  const end = text.indexOf('ENDHDR\n')
  return [[2, end >= 0 ? end + 7 : Math.min(24, bytes.length)]]
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

/** Input `i` of fuzz seed `seed`: a pure function of both. */
export function fuzzInput(seed: number, i: number): FuzzInput {
  const all = fuzzSeeds()
  const next = random(Number.parseInt(createHash('sha256').update(`${seed}:${i}`).digest('hex').slice(0, 8), 16))
  const int = (n: number): number => Math.floor(next() * n)
  const base = all[int(all.length)]!
  let bytes = base.bytes.slice()
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

/**
 * Decodes `path` with the hand-written decoders only, the way openDecoder dispatches them
 * (src/import/decoders/index.ts), reading every band; a TIFF they would hand to libvips is
 * 'routed', a file of neither format 'unknown'.
 */
export async function decodeHandWritten(path: string): Promise<Outcome> {
  const handle = await open(path, 'r')
  let image: DecodedImage | undefined
  let owned = true
  try {
    const { size } = await handle.stat()
    if (size === 0) return { kind: 'unknown' }
    const head = await readAt(handle, 0, Math.min(16, size), 'header')
    if (isPnm(head)) {
      owned = false // openPnm closes it on failure, the image on close()
      image = await openPnm(handle, size, { ...FUZZ_LIMITS, tmpDir: '/nonexistent' })
    } else if (isTiff(head)) {
      const header = await readTiffHeader(handle, size)
      checkDimensions(header.width, header.height, FUZZ_LIMITS.maxPixels, 'TIFF')
      const route = tiffRoute(header, FUZZ_LIMITS.maxDecodeBytes)
      if (!route.stream) return { kind: 'routed' }
      image = new TiffImage(handle, header, route.format)
      owned = false
    } else return { kind: 'unknown' }
    for await (const _ of image.bands(64)) {
      // every band is decoded
    }
    return { kind: 'ok' }
  } catch (error) {
    const code = tesseraCode(error)
    if (code !== undefined) return { kind: 'coded', code }
    return { kind: 'crash', error: error instanceof Error ? `${error.name}: ${error.message}`.slice(0, 300) : String(error) }
  } finally {
    await image?.close()
    if (owned) await handle.close()
  }
}

/** A crasher's file name: what went wrong, where it came from, and a digest of its bytes. */
export function crasherName(kind: string, seed: number, i: number, bytes: Uint8Array): string {
  const digest = createHash('sha256').update(bytes).digest('hex').slice(0, 12)
  return `${kind}-s${seed}-i${i}-${digest}.bin`
}

/** Options of a fuzz run (`npm run chaos -- --only fuzz --seed S --iterations N`). */
export interface FuzzRunOptions {
  readonly seed: number
  readonly iterations: number
  /** Longest one input may take (default 5000 ms): no output for that long is a hang. */
  readonly timeoutMs?: number
  /** Peak RSS of the worker process above which an input is a memory crasher (default 384 MiB). */
  readonly maxRssMiB?: number
  /** Where crashers are written (default testdata/bad/crashers); undefined to keep none. */
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
 * Runs inputs 0..iterations-1 of `seed` in worker processes (test/import/fuzz-child.ts), one
 * after another: a worker that hangs on an input is killed after `timeoutMs`, one that dies or
 * goes over the memory budget is replaced, and each such input, like each that fails without a
 * Tessera code, is a crasher, written to `crashersDir` (with a .json beside it saying why).
 */
export async function runFuzz(options: FuzzRunOptions): Promise<FuzzReport> {
  const { seed, iterations } = options
  const timeoutMs = options.timeoutMs ?? 5000
  const maxRssMiB = options.maxRssMiB ?? 384
  const crashersDir = options.crashersDir === undefined ? CRASHERS : options.crashersDir
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
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, String(seed), String(next), String(iterations), String(maxRssMiB)], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
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
