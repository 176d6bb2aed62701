/**
 * Deflate for the PNG and TIFF writers on every core, as pigz does it: the filtered PNG rows
 * (or the TIFF tiles) are cut into pieces that worker threads compress in parallel, a few in
 * flight per output, and the writer emits the results in order.
 *
 * A PNG's IDAT data is one zlib stream (RFC 1950). Each piece is a raw deflate segment (RFC
 * 1951) that ends on a byte boundary with a sync flush (an empty stored block), the last with
 * Z_FINISH, so the segments concatenate into one valid deflate stream; a segment that looks
 * for matches gets the 32 KiB before it as its dictionary (zlib's deflateSetDictionary), so it
 * finds them across the cut. The writer prefixes the zlib header and appends the Adler-32 of
 * the whole, combined from the pieces' (`adler32Combine`). Each piece travels back as one
 * complete IDAT chunk, its CRC computed on the worker too.
 *
 * The threads are one pool per process, started by the first output that needs them and
 * stopped when the last one ends (so that a CLI process exits), unless a server keeps them
 * with `retainDeflateThreads`.
 */
import { promisify } from 'node:util'
import zlib from 'node:zlib'
import { encodePredictor } from '../../format/predictor.js'
import { adler32, wasmCrc32 } from '../../format/unpredict.js'
import { defaultThreads, WorkerPool } from '../../threads.js'
import { crc32 } from './crc32.js'

/** zlib's Z_RLE strategy: matches at distance 1 only (runs), no hash chains. */
export const Z_RLE = zlib.constants.Z_RLE
/** zlib's default strategy: LZ77 matches at the given level. */
export const Z_DEFAULT_STRATEGY = zlib.constants.Z_DEFAULT_STRATEGY

/** Bytes of history a deflate segment may refer to (RFC 1951: 32 KiB window). */
export const WINDOW = 32 << 10

/** A piece of a PNG's zlib stream, to be returned as one IDAT chunk. */
export interface PngChunkJob {
  readonly kind: 'png'
  /** Filtered rows (or part of them); transferred to the worker. */
  readonly data: Uint8Array
  /** Up to 32 KiB of filtered bytes just before `data`, for segments that look for matches. */
  readonly dictionary?: Uint8Array
  readonly level: number
  readonly strategy: number
  /** The stream's first piece: the chunk starts with the zlib header. */
  readonly first: boolean
  /** The stream's last piece: Z_FINISH, and 4 bytes left before the CRC for the Adler-32. */
  readonly last: boolean
}

/** A piece compressed: its IDAT chunk, and the checksums the writer needs. */
export interface PngChunkResult {
  /** The job's `data.length` and `last`. */
  readonly length: number
  readonly last: boolean
  /**
   * length, 'IDAT', data, CRC. Complete unless the job was the last: then the writer puts the
   * stream's Adler-32 in the 4 bytes before the CRC and the CRC in the last 4 (see finishIdat).
   */
  readonly idat: Uint8Array
  /** Adler-32 of `data` alone (start value 1). */
  readonly adler: number
  /** CRC-32 of the chunk's type and data so far: all of it but the Adler-32 of a last chunk. */
  readonly crc: number
}

/** A TIFF tile: the predictor (when 2), then one zlib stream, as libtiff's Adobe Deflate codec writes it. */
export interface TiffTileJob {
  readonly kind: 'tiff'
  /** The zero-padded tile; transferred, and modified by the predictor. */
  readonly tile: Uint8Array
  readonly tileSize: number
  readonly channels: number
  readonly bitsPerSample: 8 | 16
  readonly predictor: 1 | 2
  /** zlib level; undefined chooses per tile (see tiffOptions). */
  readonly level: number | undefined
}

export type DeflateJob = PngChunkJob | TiffTileJob
export type DeflateResult = PngChunkResult | Uint8Array

/**
 * Residual bytes that are zero from which data counts as flat (drawn: screenshots, diagrams):
 * measured per 256 KiB, screenshots had 0.90-0.99 of them and photographs 0.12-0.74.
 */
export const FLAT_ZEROS = 0.85

/**
 * How to deflate filtered or predicted image data of `bytes` bytes, `zeros` of them zero,
 * when no level is asked for. Photographs: runs only (Z_RLE), which on filtered 512x512 RGB
 * crops of the benchmark image came out 0.62x the size of libvips' default PNG (no filter,
 * level 6) for 7 ms of CPU, against 0.72x in 8 ms for level 1 and 0.61x in 50-60 ms for level
 * 6: their residuals are noise, where LZ77's matches buy little. Flat data: LZ77 at level 6,
 * which is fast on it, and where runs alone came out 1.7x larger (screenshots).
 */
export function autoStrategy(zeros: number, bytes: number): { level: number; strategy: number } {
  return { level: 6, strategy: zeros >= FLAT_ZEROS * bytes ? Z_DEFAULT_STRATEGY : Z_RLE }
}

/** zlib header (RFC 1950): deflate with a 32 KiB window, FLEVEL from `level`, FCHECK to a multiple of 31. */
export function zlibHeader(level: number): Uint8Array {
  const cmf = 0x78
  const flevel = level < 2 ? 0 : level < 6 ? 1 : level === 6 ? 2 : 3
  const flg = flevel << 6
  return Uint8Array.of(cmf, flg + (31 - ((cmf * 256 + flg) % 31)))
}

const BASE = 65521

/**
 * The Adler-32 of A followed by B from adler(A), adler(B) and B's length: zlib's
 * adler32_combine (adler32.c). With a = 1 + sum of bytes and b = sum of the a's after each
 * byte (RFC 1950 section 8.2), appending B's n bytes to A gives a = a1 + a2 - 1 and
 * b = b1 + b2 + n * (a1 - 1), everything modulo 65521.
 */
export function adler32Combine(adler1: number, adler2: number, length2: number): number {
  const rem = length2 % BASE
  const a1 = adler1 & 0xffff
  const b1 = adler1 >>> 16
  const a = (a1 + (adler2 & 0xffff) + BASE - 1) % BASE
  const b = (b1 + (adler2 >>> 16) + ((rem * a1) % BASE) + BASE - rem) % BASE
  return ((b << 16) | a) >>> 0
}

function deflateOptions(job: PngChunkJob): zlib.ZlibOptions {
  return {
    // Output buffers that hold the whole segment: one native call instead of one per 16 KiB.
    chunkSize: Math.max(64 << 10, job.data.length + (job.data.length >> 3)),
    level: job.level,
    strategy: job.strategy,
    finishFlush: job.last ? zlib.constants.Z_FINISH : zlib.constants.Z_SYNC_FLUSH,
    ...(job.dictionary === undefined || job.dictionary.length === 0 ? {} : { dictionary: job.dictionary }),
  }
}

/** CRC-32 of `data`: the WebAssembly kernel's where there is one (crc32.ts is a third of its speed). */
function checksum(data: Uint8Array, crc = 0): number {
  return wasmCrc32(data, crc) ?? crc32(data, crc)
}

/** Frames a compressed PNG piece as its IDAT chunk (see PngChunkResult). */
function idatOf(job: PngChunkJob, deflated: Uint8Array): PngChunkResult {
  const header = job.first ? zlibHeader(job.level) : new Uint8Array(0)
  const length = header.length + deflated.length + (job.last ? 4 : 0)
  const idat = new Uint8Array(12 + length)
  const view = new DataView(idat.buffer)
  view.setUint32(0, length)
  idat.set([0x49, 0x44, 0x41, 0x54], 4) // 'IDAT'
  idat.set(header, 8)
  idat.set(deflated, 8 + header.length)
  const crc = checksum(idat.subarray(4, 8 + header.length + deflated.length))
  if (!job.last) view.setUint32(8 + length, crc)
  return { length: job.data.length, last: job.last, idat, adler: adler32(job.data), crc }
}

/** Completes the last IDAT chunk of a stream with the stream's Adler-32 and the chunk's CRC. */
export function finishIdat(result: PngChunkResult, adler: number): Uint8Array {
  const { idat } = result
  const view = new DataView(idat.buffer, idat.byteOffset, idat.length)
  view.setUint32(idat.length - 8, adler)
  view.setUint32(idat.length - 4, crc32(idat.subarray(idat.length - 8, idat.length - 4), result.crc))
  return idat
}

/**
 * How a TIFF tile is deflated when no level is given: after Predictor 2, as autoStrategy,
 * counting its zero bytes (an 8192x4096 photograph: runs 9% larger than level 6, at 0.4x its
 * CPU); without it, level 6.
 */
function tiffOptions(job: TiffTileJob): zlib.ZlibOptions {
  if (job.level !== undefined) return { level: job.level }
  // Without the predictor, photographs are not noise around zero: runs alone do badly.
  if (job.predictor !== 2) return { level: 6 }
  let zeros = 0
  const tile = job.tile
  for (let i = 0; i < tile.length; i++) if (tile[i] === 0) zeros++
  return autoStrategy(zeros, tile.length)
}

/** tiffOptions with output buffers that hold the whole tile's stream. */
function tiffZlibOptions(job: TiffTileJob): zlib.ZlibOptions {
  return { ...tiffOptions(job), chunkSize: Math.max(64 << 10, job.tile.length + (job.tile.length >> 3)) }
}

function predict(job: TiffTileJob): void {
  if (job.predictor === 2) encodePredictor(job.tile, job.tileSize, job.channels, job.bitsPerSample)
}

/** Runs one job synchronously (on a worker thread); the result's buffer is transferred back. */
export function runDeflateJob(job: DeflateJob): { result: DeflateResult; transfer: ArrayBuffer[] } {
  if (job.kind === 'png') {
    const result = idatOf(job, zlib.deflateRawSync(job.data, deflateOptions(job)))
    return { result, transfer: [result.idat.buffer as ArrayBuffer] }
  }
  predict(job)
  // Adobe Deflate (Compression 8) tiles are zlib streams (RFC 1950), as zlib.deflate writes.
  const payload = new Uint8Array(zlib.deflateSync(job.tile, tiffZlibOptions(job)))
  return { result: payload, transfer: [payload.buffer as ArrayBuffer] }
}

const deflateRawAsync = promisify(zlib.deflateRaw) as (data: Uint8Array, options: zlib.ZlibOptions) => Promise<Buffer>
const deflateAsync = promisify(zlib.deflate) as (data: Uint8Array, options: zlib.ZlibOptions) => Promise<Buffer>

/**
 * The same job on this thread, its deflate on libuv's thread pool (so this thread stays free):
 * for small outputs, which a worker round trip would only slow down, and machines of one core.
 */
export async function runDeflateJobHere(job: DeflateJob): Promise<DeflateResult> {
  if (job.kind === 'png') return idatOf(job, await deflateRawAsync(job.data, deflateOptions(job)))
  predict(job)
  return new Uint8Array(await deflateAsync(job.tile, tiffZlibOptions(job)))
}

/** Where an output's deflate jobs run: worker threads, or here when `size` is 0. */
export interface DeflateThreads {
  readonly size: number
  /** Runs a job; its data buffer is transferred (unusable after) when it goes to a thread. */
  run(job: DeflateJob): Promise<DeflateResult>
  /** Lets the threads stop when no one else uses them; call once. */
  release(): Promise<void>
}

let shared: { pool: WorkerPool<DeflateJob, DeflateResult>; users: number } | undefined

/**
 * Bytes to compress from which an output starts the threads when they are not running: a
 * thread costs tens of milliseconds to start, and runs-only deflate of 8 MiB about 50 ms.
 * Smaller outputs deflate on libuv's pool, two pieces at a time.
 */
const SPAWN_BYTES = 8 << 20

const here: DeflateThreads = { size: 0, run: runDeflateJobHere, release: async () => {} }

/**
 * Where one output (of `bytes` bytes to compress) runs its deflate jobs. `threads`: 0 here
 * (on libuv's pool), a positive number the process's shared pool of defaultThreads() threads;
 * by default the shared pool when it is running or the output is large, else here. The pool
 * starts on first use and stops when its last user releases it, so that a CLI process exits.
 */
export function acquireDeflateThreads(bytes: number, threads?: number): DeflateThreads {
  if (threads === 0 || defaultThreads() < 2) return here
  if (shared === undefined) {
    if (threads === undefined && bytes < SPAWN_BYTES) return here
    const pool = new WorkerPool<DeflateJob, DeflateResult>({
      url: new URL('./deflate-worker.js', import.meta.url),
      size: defaultThreads(),
      inline: (job) => runDeflateJob(job).result,
    })
    shared = { pool, users: 0 }
  }
  const entry = shared
  entry.users++
  let released = false
  return {
    size: entry.pool.size,
    run: (job) => entry.pool.run(job, [job.kind === 'png' ? job.data.buffer : job.tile.buffer] as ArrayBuffer[]),
    release: async () => {
      if (released) return
      released = true
      if (--entry.users > 0) return
      if (shared === entry) shared = undefined
      await entry.pool.close()
    },
  }
}

/**
 * Keeps the process's deflate threads running until the returned function is called: for a
 * server, so that its PNG and deflate TIFF outputs do not start threads each time it idles.
 */
export function retainDeflateThreads(): () => Promise<void> {
  const threads = acquireDeflateThreads(0, 1)
  return () => threads.release()
}

/**
 * Results of jobs in submission order, at most `limit` in flight: `push` a job's promise, then
 * take what `ready` returns before pushing more. `settle` waits for the rest, for cleanup.
 */
export class InOrder<T> {
  readonly #queue: Array<{ result: Promise<T>; settled: boolean }> = []
  readonly limit: number

  constructor(limit: number) {
    this.limit = Math.max(1, limit)
  }

  /** Adds a job's result (a rejection surfaces when it is taken). */
  push(result: Promise<T>): void {
    const entry = { result, settled: false }
    const settle = () => {
      entry.settled = true
    }
    result.then(settle, settle)
    this.#queue.push(entry)
  }

  /**
   * The oldest results, awaited, while `limit` or more are in flight (all of them with `all`),
   * then those already done: an output streams as its pieces finish, not only once `limit` of
   * them are queued.
   */
  async *ready(all = false): AsyncGenerator<T, void, undefined> {
    while (this.#queue.length > 0 && (all || this.#queue.length >= this.limit || this.#queue[0]!.settled)) {
      yield await this.#queue.shift()!.result
    }
  }

  /** Waits for every job still in flight, ignoring their results. */
  async settle(): Promise<void> {
    await Promise.allSettled(this.#queue.splice(0).map((entry) => entry.result))
  }
}
