/**
 * PNG output (PNG spec, 3rd edition: https://www.w3.org/TR/png-3/), streamed band by band.
 *
 * Rows are filtered in WebAssembly SIMD (src/format/unpredict.c), each row with the filter
 * type libpng's heuristic picks (least sum of |residual|, on a sample of the row), a group of
 * rows (half of an output under 2 MiB, else 256 KiB) at a time; a group that comes out mostly
 * zeros (drawn content) is filtered None instead, which LZ77 compresses best there. The groups
 * are deflated in parallel on worker threads (deflate.ts, as pigz does) into segments that
 * concatenate into the one zlib stream the IDAT data must be, one IDAT chunk per segment, a few
 * in flight.
 */

import zlib from 'node:zlib'
import { InvalidArgumentError } from '../../errors.js'
import type { Band } from '../../format/interface.js'
import { bytesPerPixel } from '../../format/pixel.js'
import { type PngFilterType, pngFilter } from '../../format/unpredict.js'
import { checkedBands, checkInit, rowBytes } from './bands.js'
import { crc32 } from './crc32.js'
import {
  acquireDeflateThreads,
  adler32Combine,
  autoStrategy,
  FLAT_ZEROS,
  finishIdat,
  InOrder,
  type PngChunkJob,
  type PngChunkResult,
  WINDOW,
  Z_DEFAULT_STRATEGY,
} from './deflate.js'
import type { PngOptions, RasterInit } from './interface.js'

const SIGNATURE = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)
/** IHDR colour type per colour model (PNG spec 11.2.1). */
const COLOR_TYPE = { gray: 0, graya: 4, rgb: 2, rgba: 6 } as const
/** PNG limits width and height to 2^31-1 (PNG spec 11.2.1). */
const MAX_DIMENSION = 2 ** 31 - 1
/** Filtered bytes from which an output is cut into segments (two below SMALL_OUTPUT, of MAX_PIECE from it). */
const MIN_PIECE = 64 << 10
const SMALL_OUTPUT = 2 << 20
const MAX_PIECE = 256 << 10
/** Filtered bytes queued for the deflate threads at most (plus their output): bounds an output's memory. */
const IN_FLIGHT_BYTES = 8 << 20

/** writePng's options, with knobs for tests and benchmarks. */
export interface PngWriteOptions extends PngOptions {
  /** Filtered bytes per deflate segment (default from the output's size: 64 to 256 KiB). */
  readonly chunkBytes?: number
  /** 0 deflates on libuv's pool from this thread, 1 on the process's deflate threads; default: see acquireDeflateThreads. */
  readonly threads?: number
}

/**
 * Writes a PNG: IHDR, iCCP when `init.icc` is set, IDAT chunks, IEND. Without `level`,
 * photographic rows are deflated with runs only (Z_RLE) and flat ones with LZ77 at level 6
 * (see autoStrategy); a `level` deflates everything with LZ77 at that level. Throws
 * InvalidArgumentError at call time for a bad init or options; the iterable throws RangeError
 * for bad bands.
 */
export function writePng(
  init: RasterInit,
  bands: AsyncIterable<Band>,
  options: PngWriteOptions,
): AsyncGenerator<Uint8Array, void, undefined> {
  checkInit(init)
  if (init.width > MAX_DIMENSION || init.height > MAX_DIMENSION) {
    throw new InvalidArgumentError(`PNG dimensions are limited to ${MAX_DIMENSION} but received ${init.width}x${init.height}`)
  }
  const { compression } = options ?? {}
  if (compression !== 'deflate' && compression !== 'none') {
    throw new InvalidArgumentError(`Expected 'deflate' or 'none' for compression but received ${String(compression)}`)
  }
  const level = compression === 'none' ? 0 : options.level
  if (level !== undefined && !(Number.isInteger(level) && level >= 0 && level <= 9)) {
    throw new InvalidArgumentError(`Expected integer 0 to 9 for level but received ${String(options.level)}`)
  }
  const { chunkBytes, threads } = options
  if (chunkBytes !== undefined && !(Number.isSafeInteger(chunkBytes) && chunkBytes >= 1)) {
    throw new InvalidArgumentError(`Expected a positive integer for chunkBytes but received ${String(chunkBytes)}`)
  }
  if (threads !== undefined && !(Number.isInteger(threads) && threads >= 0)) {
    throw new InvalidArgumentError(`Expected a non-negative integer for threads but received ${String(threads)}`)
  }
  return png(init, bands, { level, chunkBytes, threads })
}

interface Settings {
  /** zlib level; 0 stores (and filters None); undefined chooses per group (autoStrategy). */
  readonly level: number | undefined
  readonly chunkBytes: number | undefined
  readonly threads: number | undefined
}

async function* png(init: RasterInit, bands: AsyncIterable<Band>, settings: Settings): AsyncGenerator<Uint8Array, void, undefined> {
  yield pngHead(init)
  const stride = rowBytes(init)
  const filterOptions = { stride, bpp: bytesPerPixel(init.format), wide: init.format.bitsPerSample === 16 }
  const total = (stride + 1) * init.height
  const piece = settings.chunkBytes ?? pieceBytes(total, init.height, stride + 1)
  const groupRows = Math.max(1, Math.floor(piece / (stride + 1)))
  // One segment needs no thread: a worker round trip would only add latency.
  const threads = acquireDeflateThreads(total, total <= piece ? 0 : settings.threads)
  // Enough work queued to keep the threads busy while this thread decodes the next band.
  const pending = new InOrder<PngChunkResult>(threads.size === 0 ? 2 : Math.max(2 * threads.size + 1, Math.ceil(IN_FLIGHT_BYTES / piece)))
  const level = settings.level
  const { height } = init
  // The row above the next group in PNG byte order (for Up, Average, Paeth), and the last 32
  // KiB of filtered bytes (the next segment's dictionary).
  const previous = new Uint8Array(stride)
  let window: Uint8Array = new Uint8Array(0)
  let adler = 1
  let done = 0

  /** Filters `count` rows and queues their deflate segments. */
  const submit = (rows: Uint8Array, count: number) => {
    const filtered = new Uint8Array(count * (stride + 1))
    const above = done === 0 ? undefined : previous
    const type: PngFilterType = level === 0 ? 0 : 5
    const zeros = pngFilter(rows, above, filtered, { ...filterOptions, type }, previous)
    const flat = level !== 0 && zeros >= FLAT_ZEROS * count * stride
    if (flat) pngFilter(rows, undefined, filtered, { ...filterOptions, type: 0 })
    const { level: chosen, strategy } = level === undefined ? autoStrategy(zeros, count * stride) : { level, strategy: Z_DEFAULT_STRATEGY }
    // Runs (Z_RLE) never look back more than a byte, and stored blocks not at all.
    const lz77 = strategy === Z_DEFAULT_STRATEGY && chosen > 0
    done += count
    for (let at = 0; at < filtered.length; at += piece) {
      // Each segment in a buffer of its own: the buffer moves to the worker thread.
      const data = filtered.length <= piece ? filtered : filtered.slice(at, at + piece)
      const job: PngChunkJob = {
        kind: 'png',
        data,
        ...(lz77 ? { dictionary: window } : {}),
        level: chosen,
        strategy,
        first: done === count && at === 0,
        last: done === height && at + piece >= filtered.length,
      }
      window = slide(window, data)
      pending.push(threads.run(job) as Promise<PngChunkResult>)
    }
  }
  const emit = async function* (all: boolean): AsyncGenerator<Uint8Array, void, undefined> {
    for await (const result of pending.ready(all)) {
      adler = adler32Combine(adler, result.adler, result.length)
      yield result.last ? finishIdat(result, adler) : result.idat
    }
  }

  try {
    const staging = new Uint8Array(Math.min(groupRows, height) * stride)
    let staged = 0
    for await (const band of checkedBands(init, bands)) {
      for (let r = 0; r < band.height; ) {
        const want = Math.min(groupRows, height - done)
        const take = Math.min(want - staged, band.height - r)
        if (staged === 0 && take === want) {
          submit(band.data.subarray(r * stride, (r + take) * stride), take)
        } else {
          staging.set(band.data.subarray(r * stride, (r + take) * stride), staged * stride)
          staged += take
          if (staged === want) {
            submit(staging.subarray(0, want * stride), want)
            staged = 0
          }
        }
        r += take
        yield* emit(false)
      }
    }
    yield* emit(true)
  } finally {
    await pending.settle()
    await threads.release()
  }
  yield chunk('IEND', new Uint8Array(0))
}

/**
 * Filtered bytes per deflate segment for an output of `total` of them in rows of `rowLength`:
 * one segment up to 64 KiB; two (whole rows each) below 2 MiB, such as a 512x512 crop, so that
 * one output still uses two cores; 256 KiB segments from 2 MiB. Each segment costs a zlib
 * stream (its setup, ~0.2 ms of this thread's time through zlib's async API) and a dictionary
 * copy: under 16 concurrent 512x512 PNG crops in `tessera serve`, eight segments each cost
 * ~2 ms more CPU per request than two (bench/README.md, HTTP server), and concurrent outputs
 * fill the cores anyway. A function of the output alone: the same crop always gives the same
 * bytes.
 */
function pieceBytes(total: number, height: number, rowLength: number): number {
  if (total <= MIN_PIECE) return total
  if (total < SMALL_OUTPUT) return Math.ceil(height / 2) * rowLength
  return MAX_PIECE
}

/** The last 32 KiB of `window` followed by `data`, in a buffer of its own. */
function slide(window: Uint8Array, data: Uint8Array): Uint8Array {
  if (data.length >= WINDOW) return data.slice(data.length - WINDOW)
  const keep = Math.min(window.length, WINDOW - data.length)
  const out = new Uint8Array(keep + data.length)
  out.set(window.subarray(window.length - keep))
  out.set(data, keep)
  return out
}

/** Signature, IHDR and, when there is a profile, iCCP. */
function pngHead(init: RasterInit): Uint8Array {
  const ihdr = new Uint8Array(13)
  const view = new DataView(ihdr.buffer)
  view.setUint32(0, init.width)
  view.setUint32(4, init.height)
  // bit depth, colour type, compression 0, filter method 0, interlace 0
  ihdr.set([init.format.bitsPerSample, COLOR_TYPE[init.format.colorModel], 0, 0, 0], 8)
  const parts = [SIGNATURE, chunk('IHDR', ihdr)]
  if (init.icc !== undefined) {
    // iCCP: Latin-1 profile name, NUL, compression method 0 (zlib), compressed profile (11.3.2.3).
    const name = new TextEncoder().encode('ICC profile')
    parts.push(chunk('iCCP', concat([name, Uint8Array.of(0, 0), zlib.deflateSync(init.icc)])))
  }
  return concat(parts)
}

/** A PNG chunk: length, type, data, CRC-32 of type and data (PNG spec 5.3). */
function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length)
  const view = new DataView(out.buffer)
  view.setUint32(0, data.length)
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i)
  out.set(data, 8)
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)))
  return out
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const part of parts) {
    out.set(part, at)
    at += part.length
  }
  return out
}
