/**
 * PNG read as it arrives (W3C PNG, third edition: https://www.w3.org/TR/png-3/): chunks parsed
 * and CRC-checked in order, the IDAT data inflated by node:zlib's streaming inflate (which runs
 * on libuv's thread pool, beside the unfiltering), rows unfiltered here, and reading stops after
 * the last row a region needs.
 *
 * Why no library: sharp (libvips) decodes whole files or pipes without an early stop and without
 * handing rows over as they come; the npm PNG decoders (pngjs, fast-png, UPNG) hold the whole
 * image. What is left to write is small: chunk framing, the five filters (§9, unfilter.ts, in
 * WebAssembly SIMD) and the sample conversions below.
 *
 * Pixels as the importer stores them (its decoder is libvips with libspng, checked by the tests):
 * a palette (of any bit depth) becomes RGB, or RGBA when tRNS is present (entries past tRNS
 * opaque; indices past the palette black); gray or RGB with tRNS gains an alpha channel (0 where
 * the sample equals the tRNS value, opaque elsewhere); 16-bit samples are little-endian. Gray of
 * 1, 2 or 4 bits is refused, as the importer refuses it (it would be rescaled; spec/format.md §9).
 * Adam7 interlacing is refused: its last pass holds every odd row, so no row is final before the
 * end of the file.
 *
 * A chunk's data is inflated only once its CRC has been checked (chunks up to 8 MiB; libpng
 * writes 8 KiB), so a corrupt chunk never reaches an output; rows before a truncation or a bad
 * chunk are still cropped when no region needs more.
 */
import { once } from 'node:events'
import type { TransformOptions } from 'node:stream'
import { crc32, createInflate, inflateSync, type ZlibOptions } from 'node:zlib'
import { CorruptInputError, LimitError, TesseraError, UnsupportedFormatError } from '../errors.js'
import type { Band, PixelFormat } from '../format/interface.js'
import { pixelFormat } from '../format/pixel.js'
import { checkDimensions } from '../import/decoders/rows.js'
import type { RowDecoder, ScanPlan, StreamStats } from './interface.js'
import type { ByteSource } from './source.js'
import { rowUnfilter } from './unfilter.js'

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]
/** Largest ancillary chunk read whole (iCCP); others are skipped piece by piece, CRC-checked. */
const MAX_ICCP_BYTES = 16 << 20
/** Largest decompressed ICC profile. */
const MAX_ICC_BYTES = 64 << 20
/** Bytes of IDAT data handed to inflate at a time. */
const PIECE_BYTES = 1 << 18
/** Bytes of inflate's output chunks. */
const INFLATED_BYTES = 1 << 20
/** IDAT chunks up to this size are CRC-checked before their data is inflated. */
const VERIFIED_CHUNK_BYTES = 8 << 20
/** IDAT data gathered into one write to inflate (a round trip to the thread pool). */
const BATCH_BYTES = 64 << 10
/** Inflated bytes buffered ahead of the unfiltering. */
const INFLATE_AHEAD = 2 << 20
/** IDAT data queued for inflate, so that its next job starts as soon as one ends. */
const INFLATE_QUEUE = 256 << 10
/** Target size of a band of output rows. */
const BAND_BYTES = 4 << 20

/** Whether the first bytes are the PNG signature. */
export function isPng(head: Uint8Array): boolean {
  return head.length >= 8 && SIGNATURE.every((b, i) => head[i] === b)
}

interface Header {
  readonly width: number
  readonly height: number
  readonly bitDepth: number
  readonly colorType: number
}

const DEPTHS: Record<number, readonly number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] }
const SAMPLES: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }
const LATIN1 = new TextDecoder('latin1')

/** Reads the chunks before the first IDAT and returns a decoder of the rows. */
export async function openPng(source: ByteSource, options: { readonly maxPixels: number }): Promise<RowDecoder> {
  const signature = await source.read(8, 'PNG signature')
  if (!isPng(signature)) throw new UnsupportedFormatError('Not a PNG file')
  let header: Header | undefined
  let palette: Uint8Array | undefined
  let trns: Uint8Array | undefined
  let icc: Uint8Array | undefined
  for (;;) {
    const head = await source.read(8, 'PNG chunk header')
    const length = new DataView(head.buffer, head.byteOffset, 8).getUint32(0)
    const type = LATIN1.decode(head.subarray(4, 8))
    if (length > 0x7fffffff || !/^[A-Za-z]{4}$/.test(type)) throw new CorruptInputError(`PNG chunk ${JSON.stringify(type)} is malformed`)
    if (header === undefined && type !== 'IHDR') throw new CorruptInputError('PNG does not start with IHDR')
    if (type === 'IDAT') {
      if (header === undefined) throw new CorruptInputError('PNG has IDAT before IHDR')
      if (header.colorType === 3 && palette === undefined) throw new CorruptInputError('Palette PNG without PLTE')
      return new PngRows(source, header, { palette, trns, icc, firstLength: length })
    }
    if (type === 'IEND') throw new CorruptInputError('PNG has no IDAT')
    const critical = type.charCodeAt(0) < 0x61
    const wanted = type === 'IHDR' || type === 'PLTE' || type === 'tRNS' || type === 'iCCP'
    if (critical && !wanted) throw new UnsupportedFormatError(`PNG has an unknown critical chunk ${type}`)
    if (type === 'iCCP' && length > MAX_ICCP_BYTES) throw new LimitError(`PNG iCCP chunk of ${length} bytes is too large`)
    if (!wanted) {
      await skipChunk(source, head.subarray(4, 8), length, type)
      continue
    }
    const data = (await source.read(length, `PNG ${type} chunk`)).slice()
    await checkCrc(source, crc32(data, crc32(head.subarray(4, 8))), type)
    if (type === 'IHDR') {
      if (header !== undefined || length !== 13) throw new CorruptInputError('PNG IHDR is malformed')
      header = parseHeader(data, options.maxPixels)
    } else if (type === 'PLTE') {
      if (length % 3 !== 0 || length === 0 || length > 768) throw new CorruptInputError(`PNG PLTE of ${length} bytes`)
      palette = data
    } else if (type === 'tRNS') {
      const expected = header!.colorType === 0 ? 2 : header!.colorType === 2 ? 6 : undefined
      if (header!.colorType === 4 || header!.colorType === 6) throw new CorruptInputError('PNG tRNS with an alpha channel')
      if (expected !== undefined ? length !== expected : length > 256) throw new CorruptInputError(`PNG tRNS of ${length} bytes`)
      trns = data
    } else if (type === 'iCCP') {
      icc = iccProfile(data)
    }
  }
}

function parseHeader(data: Uint8Array, maxPixels: number): Header {
  const view = new DataView(data.buffer, data.byteOffset, data.length)
  const width = view.getUint32(0)
  const height = view.getUint32(4)
  const [bitDepth, colorType, compression, filter, interlace] = data.subarray(8, 13)
  if (width > 0x7fffffff || height > 0x7fffffff) throw new CorruptInputError(`PNG dimensions ${width}x${height} are invalid`)
  checkDimensions(width, height, maxPixels, 'PNG')
  if (!DEPTHS[colorType!]?.includes(bitDepth!)) throw new CorruptInputError(`PNG colour type ${colorType} with bit depth ${bitDepth}`)
  if (compression !== 0 || filter !== 0) throw new CorruptInputError(`PNG compression ${compression} or filter method ${filter}`)
  if (interlace === 1) {
    throw new UnsupportedFormatError(
      'Interlaced (Adam7) PNG cannot be cropped as a stream: every pass spans the whole image; import it or save it without interlacing',
    )
  }
  if (interlace !== 0) throw new CorruptInputError(`PNG interlace method ${interlace}`)
  if (colorType === 0 && bitDepth! < 8) {
    throw new UnsupportedFormatError(
      `png with ${bitDepth}-bit gray samples is not supported (they would be rescaled to 8 bits); convert it to 8-bit first`,
    )
  }
  return { width, height, bitDepth: bitDepth!, colorType: colorType! }
}

function iccProfile(data: Uint8Array): Uint8Array {
  const nul = data.indexOf(0)
  if (nul < 1 || nul > 79 || data[nul + 1] !== 0) throw new CorruptInputError('PNG iCCP chunk is malformed')
  try {
    return new Uint8Array(inflateSync(data.subarray(nul + 2), { maxOutputLength: MAX_ICC_BYTES }))
  } catch (cause) {
    throw new CorruptInputError('PNG iCCP profile does not decompress', { cause })
  }
}

async function skipChunk(source: ByteSource, type: Uint8Array, length: number, name: string): Promise<void> {
  let crc = crc32(type)
  for (let rest = length; rest > 0; ) {
    const piece = await source.readSome(Math.min(rest, PIECE_BYTES))
    if (piece === undefined) throw new CorruptInputError(`PNG ${name} chunk: the input ends inside it (truncated?)`)
    crc = crc32(piece, crc)
    rest -= piece.length
  }
  await checkCrc(source, crc, name)
}

async function checkCrc(source: ByteSource, crc: number, type: string): Promise<void> {
  const stored = await source.read(4, `PNG ${type} CRC`)
  if (new DataView(stored.buffer, stored.byteOffset, 4).getUint32(0) !== crc >>> 0) {
    throw new CorruptInputError(`PNG ${type} chunk fails its CRC (corrupt)`)
  }
}

interface Extras {
  readonly palette: Uint8Array | undefined
  readonly trns: Uint8Array | undefined
  readonly icc: Uint8Array | undefined
  /** Length of the first IDAT chunk, whose header has been read. */
  readonly firstLength: number
}

/** The rows of an opened PNG. */
class PngRows implements RowDecoder {
  readonly width: number
  readonly height: number
  readonly format: PixelFormat
  readonly sourceFormat = 'png'
  readonly icc: Uint8Array | undefined
  readonly #source: ByteSource
  readonly #header: Header
  readonly #extras: Extras
  readonly #convert: (row: Uint8Array, out: Uint8Array, at: number) => void

  constructor(source: ByteSource, header: Header, extras: Extras) {
    this.#source = source
    this.#header = header
    this.#extras = extras
    this.width = header.width
    this.height = header.height
    this.icc = extras.icc
    const { colorType, bitDepth } = header
    const alpha = colorType === 4 || colorType === 6 || extras.trns !== undefined
    const model = colorType === 0 || colorType === 4 ? (alpha ? 'graya' : 'gray') : alpha ? 'rgba' : 'rgb'
    this.format = pixelFormat(model, bitDepth === 16 ? 16 : 8)
    this.#convert = converter(header, extras)
  }

  /**
   * The IDAT data, chunk after chunk, each handed over once its CRC has been checked (a chunk
   * larger than VERIFIED_CHUNK_BYTES piece by piece, before); ends at the first chunk that is not IDAT.
   */
  async *#data(): AsyncGenerator<Uint8Array> {
    const source = this.#source
    const idat = Uint8Array.of(0x49, 0x44, 0x41, 0x54)
    let length = this.#extras.firstLength
    for (;;) {
      let crc = crc32(idat)
      const held: Uint8Array[] = []
      const hold = length <= VERIFIED_CHUNK_BYTES
      for (let rest = length; rest > 0; ) {
        const piece = await source.readSome(Math.min(rest, PIECE_BYTES))
        if (piece === undefined) throw new CorruptInputError('PNG image data: the input ends inside an IDAT chunk (truncated?)')
        crc = crc32(piece, crc)
        rest -= piece.length
        if (hold) held.push(piece)
        else yield piece
      }
      await checkCrc(source, crc, 'IDAT')
      yield* held
      const head = await source.read(8, 'PNG chunk header')
      if (head[4] !== 0x49 || head[5] !== 0x44 || head[6] !== 0x41 || head[7] !== 0x54) return
      length = new DataView(head.buffer, head.byteOffset, 8).getUint32(0)
      if (length > 0x7fffffff) throw new CorruptInputError('PNG IDAT chunk is malformed')
    }
  }

  async *bands(plan: ScanPlan, stats: StreamStats, signal: AbortSignal | undefined): AsyncGenerator<Band> {
    const { width, colorType, bitDepth } = this.#header
    const stride = Math.ceil((width * SAMPLES[colorType]! * bitDepth) / 8)
    // Filters work on bytes, `bpp` apart: bytes per complete pixel, at least 1 (§9.2).
    const bpp = Math.max(1, (SAMPLES[colorType]! * bitDepth) >> 3)
    const outRow = width * this.format.channels * (this.format.bitsPerSample / 8)
    const bandRows = Math.max(1, Math.min(256, Math.floor(BAND_BYTES / outRow)))
    const needed = new Uint8Array(plan.endRow)
    for (const region of plan.regions) needed.fill(1, region.y, region.y + region.height)

    // Inflate runs on libuv's thread pool: let it work ahead of the unfiltering by a few MiB.
    const inflateOptions: ZlibOptions & TransformOptions = {
      chunkSize: INFLATED_BYTES,
      readableHighWaterMark: INFLATE_AHEAD,
      writableHighWaterMark: INFLATE_QUEUE,
    }
    const inflate = createInflate(inflateOptions)
    const stop = new AbortController()
    const data = this.#data()
    // Feeds inflate with backpressure. A failure of the input (truncated, a bad CRC) ends the
    // data there: the rows before it are still unfiltered, and the failure is reported if a
    // needed row lies past it.
    let failure: { readonly error: unknown } | undefined
    void (async () => {
      // IDAT chunks are often small (libpng: 8 KiB): hand inflate batches, each write being a
      // round trip to the thread pool.
      let batch: Uint8Array[] = []
      let batched = 0
      const flush = async () => {
        const piece = batch.length === 1 ? batch[0]! : Buffer.concat(batch)
        batch = []
        batched = 0
        if (!inflate.write(piece)) await once(inflate, 'drain', { signal: stop.signal })
      }
      try {
        try {
          for await (const piece of data) {
            if (stop.signal.aborted) return
            batch.push(piece)
            batched += piece.length
            if (batched >= BATCH_BYTES) await flush()
          }
        } catch (error) {
          failure = { error }
        }
        // What was read before a failure is verified: its rows may be all a region needs.
        if (batched > 0 && !stop.signal.aborted) await flush()
      } catch {
        // Inflate was stopped: the reader has what it needs, or its own error.
      }
      if (!inflate.destroyed) inflate.end()
    })()

    const rows = rowUnfilter(stride, bpp)
    let filled = 0
    let y = 0
    const band = new Uint8Array(bandRows * outRow)
    let bandY = 0
    let bandCount = 0
    try {
      for await (const out of inflate as AsyncIterable<Buffer>) {
        signal?.throwIfAborted()
        // Buffered chunks come through microtasks only: give the event loop a turn, where the
        // thread pool's completions start inflate's next job, so it runs beside the unfiltering.
        await new Promise((resolve) => setImmediate(resolve))
        let at = 0
        while (at < out.length) {
          const n = Math.min(stride + 1 - filled, out.length - at)
          rows.current.set(out.subarray(at, at + n), filled)
          filled += n
          at += n
          if (filled <= stride) break
          if (!rows.unfilter()) throw new CorruptInputError(`PNG row ${y} has filter type ${rows.current[0]}`)
          stats.rowsDecoded++
          if (needed[y] === 1) {
            if (bandCount === 0) bandY = y
            this.#convert(rows.current, band, bandCount * outRow)
            bandCount++
          }
          rows.swap()
          filled = 0
          y++
          const last = y === plan.endRow
          if (bandCount > 0 && (bandCount === bandRows || last || needed[y] !== 1)) {
            // Valid until the next band is asked for (RowDecoder): the buffer is reused.
            yield { y: bandY, height: bandCount, data: band.subarray(0, bandCount * outRow) }
            bandCount = 0
          }
          if (last) return
        }
      }
      if (failure !== undefined) throw failure.error
      throw new CorruptInputError(`PNG image data ends after ${y} of ${this.height} rows (truncated?)`)
    } catch (error) {
      if (failure !== undefined) throw failure.error
      if (error instanceof TesseraError || (error as Error).name === 'AbortError') throw error
      throw new CorruptInputError(`PNG image data does not inflate: ${(error as Error).message}`, { cause: error })
    } finally {
      stop.abort()
      inflate.destroy()
      // Not awaited: behind a read that never completes (a stalled upload) it would never settle.
      void data.return(undefined).catch(() => undefined)
    }
  }

  async close(): Promise<void> {}
}

/** The function turning an unfiltered PNG row (filter byte first) into output samples at `out[at]`. */
function converter(header: Header, extras: Extras): (row: Uint8Array, out: Uint8Array, at: number) => void {
  const { width, colorType, bitDepth } = header
  const { palette, trns } = extras
  const samples = width * SAMPLES[colorType]!
  if (colorType === 3) {
    // Lookup tables of 256 entries: indices past the palette give black (libspng), past tRNS opaque.
    const channels = trns === undefined ? 3 : 4
    const table = new Uint8Array(256 * channels)
    for (let i = 0; i < palette!.length / 3; i++) {
      table.set(palette!.subarray(i * 3, i * 3 + 3), i * channels)
      if (channels === 4) table[i * channels + 3] = i < trns!.length ? trns![i]! : 255
    }
    if (channels === 4) for (let i = palette!.length / 3; i < 256; i++) table[i * 4 + 3] = 255
    return (row, out, at) => {
      for (let x = 0; x < width; x++) {
        const index = bitDepth === 8 ? row[1 + x]! : lowBits(row, x, bitDepth)
        const from = index * channels
        const to = at + x * channels
        for (let c = 0; c < channels; c++) out[to + c] = table[from + c]!
      }
    }
  }
  if (trns !== undefined) {
    // Gray or RGB with a transparent colour: an alpha channel, 0 where every sample matches.
    const view = new DataView(trns.buffer, trns.byteOffset, trns.length)
    const key = Array.from({ length: colorType === 0 ? 1 : 3 }, (_, i) => view.getUint16(i * 2))
    const colours = key.length
    if (bitDepth === 16) {
      return (row, out, at) => {
        for (let x = 0; x < width; x++) {
          let match = true
          const to = at + x * (colours + 1) * 2
          for (let c = 0; c < colours; c++) {
            const hi = row[1 + (x * colours + c) * 2]!
            const lo = row[2 + (x * colours + c) * 2]!
            if (((hi << 8) | lo) !== key[c]) match = false
            out[to + c * 2] = lo
            out[to + c * 2 + 1] = hi
          }
          out[to + colours * 2] = match ? 0 : 255
          out[to + colours * 2 + 1] = match ? 0 : 255
        }
      }
    }
    return (row, out, at) => {
      for (let x = 0; x < width; x++) {
        let match = true
        const to = at + x * (colours + 1)
        for (let c = 0; c < colours; c++) {
          const v = row[1 + x * colours + c]!
          if (v !== key[c]) match = false
          out[to + c] = v
        }
        out[to + colours] = match ? 0 : 255
      }
    }
  }
  if (bitDepth === 16) {
    return (row, out, at) => {
      for (let i = 0; i < samples; i++) {
        out[at + i * 2] = row[2 + i * 2]!
        out[at + i * 2 + 1] = row[1 + i * 2]!
      }
    }
  }
  return (row, out, at) => out.set(row.subarray(1, 1 + samples), at)
}

/** Palette index `x` of a row packed at 1, 2 or 4 bits, most significant bits first (§7.2). */
function lowBits(row: Uint8Array, x: number, bits: number): number {
  const bit = x * bits
  return (row[1 + (bit >> 3)]! >> (8 - bits - (bit & 7))) & ((1 << bits) - 1)
}
