/**
 * A streaming reader for the TIFFs Tessera can decode cheaply by itself: classic and BigTIFF,
 * either byte order, strips or tiles, chunky 8/16-bit unsigned gray/RGB (+alpha), compression
 * none, deflate or zstd, predictor 1 or 2. It exists because sharp's libvips cannot read zstd
 * TIFF, and because reading tiles by position keeps memory to one row of tiles.
 * Every other TIFF is routed to the sharp decoder (`tiffRoute`), except what would need its
 * samples converted (WhiteIsZero, which libvips would invert; CMYK, Lab; gray below 8 bits).
 * Hostile files (issue 10) are refused from the header: overlapping or oversized byte ranges,
 * IFD loops, millions of tiny chunks, rows of chunks larger than the memory budget.
 * Specs: TIFF 6.0 (https://www.itu.int/itudoc/itu-t/com16/tiff-fx/docs/tiff6.pdf),
 * BigTIFF (https://www.awaresystems.be/imaging/tiff/bigtiff.html), zstd id 50000 from libtiff.
 */
import type { FileHandle } from 'node:fs/promises'
import { inflateSync } from 'node:zlib'
import { CorruptInputError, InvalidArgumentError, LimitError, UnsupportedFormatError } from '../../errors.js'
import type { Band, PixelFormat } from '../../format/interface.js'
import { colorModelOf, pixelFormat } from '../../format/pixel.js'
import { decodePredictor } from '../../format/predictor.js'
import { zstdDecompress } from '../../format/tile-codec.js'
import { DEFAULT_MAX_DECODE_BYTES, MANY_CHUNKS, MIN_CHUNK_PIXELS } from '../limits.js'
import type { BandOptions, DecodedImage } from './interface.js'
import { checkBandHeight, readAt, readExact, swap16 } from './rows.js'

const MAX_IFD_ENTRIES = 4096
/** Most strips or tiles accepted: 4 Mi offsets already take 64 MiB to hold. */
const MAX_CHUNKS = 1 << 22
/** IFDs followed along the chain to find loops and offsets past the end (a longer chain is not read). */
const MAX_IFDS_WALKED = 1024
/** Compressed strips or tiles read ahead of the one being decoded, in bytes (at least one chunk). */
const READ_AHEAD_BYTES = 4 * 1024 * 1024

const TAG = {
  ImageWidth: 256,
  ImageLength: 257,
  BitsPerSample: 258,
  Compression: 259,
  Photometric: 262,
  StripOffsets: 273,
  SamplesPerPixel: 277,
  RowsPerStrip: 278,
  StripByteCounts: 279,
  PlanarConfiguration: 284,
  Predictor: 317,
  ColorMap: 320,
  TileWidth: 322,
  TileLength: 323,
  TileOffsets: 324,
  TileByteCounts: 325,
  ExtraSamples: 338,
  SampleFormat: 339,
  IccProfile: 34675,
} as const

const COMPRESSION_NONE = 1
const COMPRESSION_DEFLATE = 8
const COMPRESSION_DEFLATE_OLD = 32946
const COMPRESSION_ZSTD = 50000

// Bytes per value of each TIFF field type (TIFF 6.0 section 2; 16-18 from BigTIFF).
const TYPE_SIZE: Record<number, number> = {
  1: 1,
  2: 1,
  3: 2,
  4: 4,
  5: 8,
  6: 1,
  7: 1,
  8: 2,
  9: 4,
  10: 8,
  11: 4,
  12: 8,
  13: 4,
  16: 8,
  17: 8,
  18: 8,
}

/** The first IFD's fields that matter for decoding. */
export interface TiffHeader {
  readonly littleEndian: boolean
  readonly bigTiff: boolean
  readonly width: number
  readonly height: number
  readonly samplesPerPixel: number
  readonly bitsPerSample: readonly number[]
  readonly sampleFormat: readonly number[]
  readonly compression: number
  readonly photometric: number | undefined
  readonly planarConfiguration: number
  readonly predictor: number
  readonly extraSamples: readonly number[]
  readonly tiled: boolean
  /** Tile width, or the image width for strips. */
  readonly chunkWidth: number
  /** Tile length, or RowsPerStrip clamped to the image height. */
  readonly chunkHeight: number
  readonly offsets: readonly number[]
  readonly byteCounts: readonly number[]
  /** Whether a ColorMap (tag 320) is present: a palette image needs one. */
  readonly hasColorMap: boolean
  readonly icc?: Uint8Array | undefined
}

/** Whether the first bytes are a TIFF or BigTIFF header, either byte order. */
export function isTiff(head: Uint8Array): boolean {
  if (head.length < 4) return false
  const ii = head[0] === 0x49 && head[1] === 0x49 && head[3] === 0
  const mm = head[0] === 0x4d && head[1] === 0x4d && head[2] === 0
  return (ii && (head[2] === 42 || head[2] === 43)) || (mm && (head[3] === 42 || head[3] === 43))
}

interface Entry {
  readonly tag: number
  readonly type: number
  readonly count: number
  /** Where the value bytes are: inline in the IFD or at an offset. */
  readonly bytes: Uint8Array | undefined
  readonly offset: number
}

/**
 * Reads the header and first IFD. Throws CorruptInputError on anything malformed. With
 * `headerBytes` (a stream, whose first bytes only can be looked at), every read of the IFDs and
 * tag values must lie within them: UnsupportedFormatError otherwise, before anything is allocated.
 */
export async function readTiffHeader(handle: FileHandle, fileSize: number, headerBytes?: number): Promise<TiffHeader> {
  const read: HeaderRead = (position, length, what) => {
    if (headerBytes !== undefined && position + length > headerBytes) {
      throw new UnsupportedFormatError(
        `TIFF IFD or tag values at byte ${position}, past the first ${headerBytes} bytes (the IFD is at the end?): cannot stream it; pass a file`,
      )
    }
    return readAt(handle, position, length, what)
  }
  const head = await read(0, Math.min(16, fileSize), 'TIFF header')
  if (!isTiff(head)) throw new UnsupportedFormatError('Not a TIFF file')
  const littleEndian = head[0] === 0x49
  const view = new DataView(head.buffer, head.byteOffset, head.length)
  const bigTiff = view.getUint16(2, littleEndian) === 43
  if (head.length < (bigTiff ? 16 : 8)) throw new CorruptInputError('TIFF header is truncated')
  if (bigTiff && (view.getUint16(4, littleEndian) !== 8 || view.getUint16(6, littleEndian) !== 0)) {
    throw new CorruptInputError('BigTIFF header has an unsupported offset size')
  }
  const ifdOffset = bigTiff ? safe(view.getBigUint64(8, littleEndian)) : view.getUint32(4, littleEndian)
  const countSize = bigTiff ? 8 : 2
  const entrySize = bigTiff ? 20 : 12
  if (ifdOffset < 8 || ifdOffset + countSize > fileSize)
    throw new CorruptInputError(`TIFF IFD offset ${ifdOffset} is outside the file (truncated?)`)
  const countBytes = await read(ifdOffset, countSize, 'TIFF IFD')
  const countView = new DataView(countBytes.buffer)
  const count = bigTiff ? safe(countView.getBigUint64(0, littleEndian)) : countView.getUint16(0, littleEndian)
  if (count === 0 || count > MAX_IFD_ENTRIES) throw new CorruptInputError(`TIFF IFD has ${count} entries`)
  const ifd = await read(ifdOffset + countSize, count * entrySize, 'TIFF IFD')
  const ifdView = new DataView(ifd.buffer)
  await walkIfdChain(read, fileSize, { littleEndian, bigTiff, first: ifdOffset, nextAt: ifdOffset + countSize + count * entrySize })

  const entries = new Map<number, Entry>()
  for (let i = 0; i < count; i++) {
    const at = i * entrySize
    const tag = ifdView.getUint16(at, littleEndian)
    const type = ifdView.getUint16(at + 2, littleEndian)
    const size = TYPE_SIZE[type]
    if (size === undefined) continue // unknown types must be ignored (TIFF 6.0 section 2)
    const n = bigTiff ? safe(ifdView.getBigUint64(at + 4, littleEndian)) : ifdView.getUint32(at + 4, littleEndian)
    const valueAt = at + (bigTiff ? 12 : 8)
    const inline = n * size <= (bigTiff ? 8 : 4)
    const offset = inline ? 0 : bigTiff ? safe(ifdView.getBigUint64(valueAt, littleEndian)) : ifdView.getUint32(valueAt, littleEndian)
    entries.set(tag, { tag, type, count: n, offset, bytes: inline ? ifd.subarray(valueAt, valueAt + n * size) : undefined })
  }

  /**
   * The first `count` values' bytes of `entry` (all of them by default). Values are bounded by
   * the file only when read: a tag nobody reads may point anywhere, as libtiff lets it.
   */
  const bytesOf = async (entry: Entry, count = entry.count): Promise<Uint8Array> => {
    const length = count * TYPE_SIZE[entry.type]!
    if (entry.bytes !== undefined) return entry.bytes.subarray(0, length)
    if (entry.offset + length > fileSize) throw new CorruptInputError(`TIFF tag ${entry.tag} values lie outside the file (truncated?)`)
    return await read(entry.offset, length, 'TIFF tag')
  }
  /** The values of `tag`, at most `most` of them: a count mutated to billions reads no more than is used. */
  const numbers = async (tag: number, most = Number.POSITIVE_INFINITY): Promise<number[] | undefined> => {
    const entry = entries.get(tag)
    if (entry === undefined) return undefined
    const count = Math.min(entry.count, most)
    const bytes = await bytesOf(entry, count)
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length)
    const out = new Array<number>(count)
    for (let i = 0; i < count; i++) {
      switch (entry.type) {
        case 1:
        case 7:
          out[i] = dv.getUint8(i)
          break
        case 3:
          out[i] = dv.getUint16(i * 2, littleEndian)
          break
        case 4:
        case 13:
          out[i] = dv.getUint32(i * 4, littleEndian)
          break
        case 16:
        case 18:
          out[i] = safe(dv.getBigUint64(i * 8, littleEndian))
          break
        default:
          throw new CorruptInputError(`TIFF tag ${tag} has type ${entry.type}, expected an unsigned integer`)
      }
    }
    return out
  }
  const one = async (tag: number, fallback?: number): Promise<number> => {
    const values = await numbers(tag, 1)
    const value = values?.[0] ?? fallback
    if (value === undefined) throw new CorruptInputError(`TIFF is missing required tag ${tag}`)
    return value
  }

  const width = await one(TAG.ImageWidth)
  const height = await one(TAG.ImageLength)
  const samplesPerPixel = await one(TAG.SamplesPerPixel, 1)
  // A SHORT in TIFF 6.0; a mutated type can make it a 64-bit count.
  if (samplesPerPixel < 1 || samplesPerPixel > 0xffff) throw new CorruptInputError(`TIFF has ${samplesPerPixel} samples per pixel`)
  const perSample = async (tag: number, fallback: number): Promise<number[]> => {
    const values = (await numbers(tag, samplesPerPixel)) ?? [fallback]
    // One value may stand for all samples; libtiff accepts that too.
    return values.length >= samplesPerPixel ? values.slice(0, samplesPerPixel) : new Array<number>(samplesPerPixel).fill(values[0]!)
  }
  const tiled = entries.has(TAG.TileWidth) || entries.has(TAG.TileOffsets)
  const chunkWidth = tiled ? await one(TAG.TileWidth) : width
  const chunkHeight = tiled ? await one(TAG.TileLength) : Math.min(await one(TAG.RowsPerStrip, 0xffffffff), height)
  const what = tiled ? 'tile' : 'strip'
  if (chunkWidth < 1 || chunkHeight < 1) throw new CorruptInputError(`TIFF ${what} size is zero`)
  const offsetsCount = entries.get(tiled ? TAG.TileOffsets : TAG.StripOffsets)?.count ?? 0
  if (offsetsCount > MAX_CHUNKS) throw new LimitError(`TIFF has ${offsetsCount} strips or tiles, more than ${MAX_CHUNKS}`)
  // Planar images have one chunk per sample plane at each position.
  const planes = (await one(TAG.PlanarConfiguration, 1)) === 2 ? samplesPerPixel : 1
  chargePerChunk(width * height * planes, offsetsCount, what)
  const countsCount = entries.get(tiled ? TAG.TileByteCounts : TAG.StripByteCounts)?.count
  if (offsetsCount === 0 || countsCount !== offsetsCount) {
    throw new CorruptInputError('TIFF has missing or mismatched strip/tile offsets and byte counts')
  }
  const offsets = (await numbers(tiled ? TAG.TileOffsets : TAG.StripOffsets))!
  const byteCounts = (await numbers(tiled ? TAG.TileByteCounts : TAG.StripByteCounts))!
  checkRanges(offsets, byteCounts, fileSize, what)
  const iccEntry = entries.get(TAG.IccProfile)
  return {
    littleEndian,
    bigTiff,
    width,
    height,
    samplesPerPixel,
    bitsPerSample: await perSample(TAG.BitsPerSample, 1),
    sampleFormat: await perSample(TAG.SampleFormat, 1),
    compression: await one(TAG.Compression, COMPRESSION_NONE),
    photometric: (await numbers(TAG.Photometric, 1))?.[0],
    planarConfiguration: await one(TAG.PlanarConfiguration, 1),
    predictor: await one(TAG.Predictor, 1),
    extraSamples: (await numbers(TAG.ExtraSamples, samplesPerPixel)) ?? [],
    tiled,
    chunkWidth,
    chunkHeight,
    offsets,
    byteCounts,
    hasColorMap: entries.has(TAG.ColorMap),
    icc: iccEntry === undefined ? undefined : (await bytesOf(iccEntry)).slice(),
  }
}

/** A read of the header: `length` bytes at `position`. */
type HeaderRead = (position: number, length: number, what: string) => Promise<Uint8Array>

/**
 * Follows the next-IFD offsets after the first IFD: a loop, or an offset past the end of the
 * file, makes the file corrupt even though only the first IFD is imported (libtiff would stop
 * there, or loop). At most MAX_IFDS_WALKED IFDs are visited: two small reads each.
 */
async function walkIfdChain(
  read: HeaderRead,
  fileSize: number,
  at: { littleEndian: boolean; bigTiff: boolean; first: number; nextAt: number },
): Promise<void> {
  const { littleEndian, bigTiff } = at
  const offsetSize = bigTiff ? 8 : 4
  const countSize = bigTiff ? 8 : 2
  const seen = new Set([at.first])
  let nextAt = at.nextAt
  for (let walked = 1; walked < MAX_IFDS_WALKED; walked++) {
    const pointer = await read(nextAt, offsetSize, 'TIFF next IFD offset')
    const view = new DataView(pointer.buffer)
    const next = bigTiff ? safe(view.getBigUint64(0, littleEndian)) : view.getUint32(0, littleEndian)
    if (next === 0) return
    if (next < 8 || next + countSize > fileSize)
      throw new CorruptInputError(`TIFF next IFD offset ${next} is outside the file (truncated?)`)
    if (seen.has(next)) throw new CorruptInputError(`TIFF IFDs form a loop (IFD at ${next} is visited twice)`)
    seen.add(next)
    const countBytes = await read(next, countSize, 'TIFF IFD')
    const countView = new DataView(countBytes.buffer)
    const count = bigTiff ? safe(countView.getBigUint64(0, littleEndian)) : countView.getUint16(0, littleEndian)
    if (count === 0 || count > MAX_IFD_ENTRIES) throw new CorruptInputError(`TIFF IFD at ${next} has ${count} entries`)
    nextAt = next + countSize + count * (bigTiff ? 20 : 12)
    if (nextAt + offsetSize > fileSize) throw new CorruptInputError(`TIFF IFD at ${next} runs past the end of the file (truncated?)`)
  }
}

/**
 * Charges strips and tiles per chunk (issue 10, finding 8): each costs a read and a decoder call
 * whatever its size, so millions of tiny ones (2 million 1x1 tiles in a 16 MB file) would take
 * minutes. Refused from the header, before the offsets are even read.
 */
function chargePerChunk(pixels: number, chunks: number, what: string): void {
  if (chunks <= MANY_CHUNKS) return
  const perChunk = pixels / chunks
  if (perChunk < MIN_CHUNK_PIXELS) {
    throw new LimitError(
      `TIFF has ${chunks} ${what}s of ${Math.floor(perChunk)} pixels on average: more than ${MANY_CHUNKS} ${what}s must average at least ${MIN_CHUNK_PIXELS} pixels each`,
    )
  }
}

/**
 * Every strip or tile must lie inside the file, and no two may share bytes (issue 10, finding
 * 4): a writer stores each chunk once, and ranges that overlap let a small file claim its bytes
 * many times over. Empty ranges (count 0) are not compared; the decoders refuse them.
 */
function checkRanges(offsets: readonly number[], byteCounts: readonly number[], fileSize: number, what: string): void {
  let sorted = true
  for (let i = 0; i < offsets.length; i++) {
    if (offsets[i]! + byteCounts[i]! > fileSize) throw new CorruptInputError(`TIFF ${what} ${i} lies outside the file (truncated?)`)
    if (i > 0 && offsets[i]! < offsets[i - 1]!) sorted = false
  }
  // Writers put chunks in order; only files that do not are sorted (by offset, then length).
  const order = sorted
    ? undefined
    : Uint32Array.from(offsets.keys()).sort((a, b) => offsets[a]! - offsets[b]! || byteCounts[a]! - byteCounts[b]!)
  let end = 0
  let previous = -1
  for (let k = 0; k < offsets.length; k++) {
    const i = order === undefined ? k : order[k]!
    if (byteCounts[i] === 0) continue
    if (previous >= 0 && offsets[i]! < end) throw new CorruptInputError(`TIFF ${what}s ${previous} and ${i} share bytes`)
    end = offsets[i]! + byteCounts[i]!
    previous = i
  }
}

function safe(value: bigint): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new CorruptInputError('TIFF offset or count is too large')
  return Number(value)
}

/** Whether this reader streams the TIFF, or sharp must decode it (and why). */
export type TiffRoute = { readonly stream: true; readonly format: PixelFormat } | { readonly stream: false; readonly reason: string }

// PhotometricInterpretation values (TIFF 6.0 section 8; 8-10 from TIFF Technical Notes).
const WHITE_IS_ZERO = 0
const BLACK_IS_ZERO = 1
const RGB = 2
const PALETTE = 3
/** Colour spaces libvips would convert (or misread) on the way in: Tessera stores samples as encoded. */
const CONVERTED: Record<number, string> = {
  4: 'transparency mask',
  5: 'CMYK',
  8: 'CIELab',
  9: 'ICCLab',
  10: 'ITULab',
  32803: 'CFA',
  32844: 'LogL',
  32845: 'LogLuv',
  34892: 'LinearRaw',
}

/**
 * Decides who decodes `header`, or refuses it from the header alone (spec/format.md §9):
 * ERR_UNSUPPORTED_FORMAT for what would need its samples converted (WhiteIsZero, which libvips
 * would invert; CMYK, Lab and other colour spaces; signed or floating-point samples; gray
 * samples other than 8 or 16 bits, which libvips would rescale: 1-bit 0/1 to 0/255);
 * ERR_CORRUPT_INPUT for a palette image without its colour map (libvips would read the indices
 * as gray); ERR_LIMIT when a row of strips or tiles, decoded, exceeds `maxDecodeBytes` (both
 * this reader and libvips hold one at once), except uncompressed strips, read row by row.
 */
export function tiffRoute(header: TiffHeader, maxDecodeBytes: number = DEFAULT_MAX_DECODE_BYTES): TiffRoute {
  const { samplesPerPixel: spp, photometric } = header
  if (photometric === WHITE_IS_ZERO)
    throw new UnsupportedFormatError('TIFF Photometric WhiteIsZero is not supported (it would have to be inverted)')
  if (photometric !== undefined && CONVERTED[photometric] !== undefined) {
    throw new UnsupportedFormatError(`TIFF in colour space ${CONVERTED[photometric]} is not supported (it would need converting)`)
  }
  if (header.sampleFormat.some((f) => f !== 1 && f !== 4)) {
    throw new UnsupportedFormatError(
      `TIFF SampleFormat ${header.sampleFormat.join('/')} is not supported (only unsigned integer samples, not signed or floating-point)`,
    )
  }
  const bits = header.bitsPerSample[0]!
  const sameBits = header.bitsPerSample.every((b) => b === bits)
  if (photometric === PALETTE) {
    if (!header.hasColorMap) throw new CorruptInputError('TIFF palette image has no ColorMap')
    if (![1, 2, 4, 8, 16].includes(bits) || spp !== 1)
      throw new UnsupportedFormatError(`TIFF palette image with ${header.bitsPerSample.join('/')} bits per sample is not supported`)
  } else if (!sameBits || (bits !== 8 && bits !== 16)) {
    throw new UnsupportedFormatError(
      `TIFF with ${header.bitsPerSample.join('/')} bits per sample is not supported (only 8 or 16; other depths would need rescaling)`,
    )
  }
  const route = streamOrSharp(header, bits)
  // Uncompressed strips this reader streams are read row by row, whatever their size.
  const direct = route.stream && !header.tiled && header.compression === COMPRESSION_NONE
  const chunkRowBytes = Math.ceil(header.width / header.chunkWidth) * header.chunkWidth * header.chunkHeight * spp * (bits / 8)
  if (!direct && chunkRowBytes > maxDecodeBytes) {
    throw new LimitError(
      `TIFF ${header.tiled ? 'tiles' : 'strips'} of ${header.chunkWidth}x${header.chunkHeight}: a row of them is ${chunkRowBytes} bytes decoded, more than the limit of ${maxDecodeBytes} (maxDecodeBytes); re-tile the file`,
    )
  }
  return route
}

/** Whether this reader can stream `header` (whose samples are known to be storable). */
function streamOrSharp(header: TiffHeader, bits: number): TiffRoute {
  const { samplesPerPixel: spp, photometric } = header
  const sharp = (reason: string): TiffRoute => ({ stream: false, reason })
  if (spp < 1 || spp > 4) return sharp(`${spp} samples per pixel`)
  if (header.planarConfiguration !== 1 && spp > 1) return sharp('PlanarConfiguration 2')
  const compressions: readonly number[] = [COMPRESSION_NONE, COMPRESSION_DEFLATE, COMPRESSION_DEFLATE_OLD, COMPRESSION_ZSTD]
  if (!compressions.includes(header.compression)) return sharp(`compression ${header.compression}`)
  if (header.sampleFormat.some((f) => f !== 1)) return sharp(`SampleFormat ${header.sampleFormat.join('/')}`)
  const extra = spp === 2 || spp === 4 ? 1 : 0
  const gray = photometric === BLACK_IS_ZERO && (spp === 1 || spp === 2)
  const rgb = photometric === RGB && (spp === 3 || spp === 4)
  if (!gray && !rgb) return sharp(`Photometric ${photometric ?? 'missing'} with ${spp} samples`)
  // The extra sample must be alpha (1 associated, 2 unassociated) or unspecified (0).
  if (header.extraSamples.length !== extra || header.extraSamples.some((e) => e > 2))
    return sharp(`ExtraSamples ${header.extraSamples.join('/')}`)
  if (header.predictor !== 1 && header.predictor !== 2) return sharp(`Predictor ${header.predictor}`)
  // libtiff applies no predictor to uncompressed data; leave that oddity to it.
  if (header.predictor === 2 && header.compression === COMPRESSION_NONE) return sharp('Predictor 2 without compression')
  return { stream: true, format: pixelFormat(colorModelOf(spp), bits as 8 | 16) }
}

/**
 * Largest plausible encoding of a chunk of `raw` bytes. Uncompressed: exactly its bytes.
 * Deflate and zstd: stored blocks cost a few bytes per 64 KiB (zlib's deflateBound, libzstd's
 * compressBound, both under 1%); 1/8 more allows an encoder that always uses fixed Huffman codes.
 */
function maxChunkBytes(compression: number, raw: number): number {
  return compression === COMPRESSION_NONE ? raw : raw + Math.ceil(raw / 8) + 1024
}

/** A DecodedImage that reads the strips or tiles of a streamable TIFF by position. */
export class TiffImage implements DecodedImage {
  readonly width: number
  readonly height: number
  readonly format: PixelFormat
  readonly sourceFormat = 'tiff'
  readonly icc: Uint8Array | undefined
  readonly #handle: FileHandle
  readonly #header: TiffHeader
  readonly #bpp: number
  readonly #across: number
  #cache: { readonly row: number; readonly chunks: Uint8Array[] } | undefined
  #started = false
  #closed: Promise<void> | undefined

  /** Takes ownership of `handle`; `format` comes from `tiffRoute(header)`. */
  constructor(handle: FileHandle, header: TiffHeader, format: PixelFormat) {
    this.#handle = handle
    this.#header = header
    this.width = header.width
    this.height = header.height
    this.format = format
    this.icc = header.icc
    this.#bpp = format.channels * (format.bitsPerSample / 8)
    this.#across = Math.ceil(header.width / header.chunkWidth)
    const needed = this.#across * Math.ceil(header.height / header.chunkHeight)
    if (header.offsets.length < needed) {
      throw new CorruptInputError(`TIFF has ${header.offsets.length} ${header.tiled ? 'tiles' : 'strips'}, expected ${needed}`)
    }
    // Uncompressed strips are read row by row (only the rows needed); every other chunk is read
    // whole, so it may not claim more bytes than its encoding can take (issue 10, finding 4).
    if (header.tiled || header.compression !== COMPRESSION_NONE) {
      const limit = maxChunkBytes(header.compression, header.chunkWidth * header.chunkHeight * this.#bpp)
      for (let i = 0; i < needed; i++) {
        if (header.byteCounts[i]! > limit) {
          throw new CorruptInputError(
            `TIFF ${header.tiled ? 'tile' : 'strip'} ${i} claims ${header.byteCounts[i]} bytes, more than its encoding can need (${limit})`,
          )
        }
      }
    }
  }

  bands(bandHeight: number, options: BandOptions = {}): AsyncIterable<Band> {
    checkBandHeight(bandHeight)
    if (this.#started) throw new InvalidArgumentError('bands() can be called once per decoder')
    if (this.#closed !== undefined) throw new InvalidArgumentError('Decoder is closed')
    this.#started = true
    return this.#bands(bandHeight, options.signal)
  }

  async *#bands(bandHeight: number, signal: AbortSignal | undefined): AsyncGenerator<Band> {
    const direct = !this.#header.tiled && this.#header.compression === COMPRESSION_NONE
    for (let y = 0; y < this.height; y += bandHeight) {
      signal?.throwIfAborted()
      if (this.#closed !== undefined) throw new InvalidArgumentError('Decoder is closed')
      const height = Math.min(bandHeight, this.height - y)
      const data = new Uint8Array(height * this.width * this.#bpp)
      if (direct) await this.#readRows(data, y, height)
      else await this.#copyChunks(data, y, height)
      yield { y, height, data }
    }
    this.#cache = undefined
  }

  /** Uncompressed strips: rows are read straight from the file, whatever RowsPerStrip is. */
  async #readRows(data: Uint8Array, y: number, height: number): Promise<void> {
    const { chunkHeight: rps, offsets, byteCounts } = this.#header
    const rowBytes = this.width * this.#bpp
    for (let row = y; row < y + height; ) {
      const strip = Math.floor(row / rps)
      const first = row - strip * rps
      const rows = Math.min(rps - first, y + height - row)
      if (byteCounts[strip]! < (first + rows) * rowBytes) throw new CorruptInputError(`TIFF strip ${strip} is shorter than its rows`)
      const target = data.subarray((row - y) * rowBytes, (row - y + rows) * rowBytes)
      await readExact(this.#handle, target, offsets[strip]! + first * rowBytes, `TIFF strip ${strip}`)
      row += rows
    }
    if (!this.#header.littleEndian && this.format.bitsPerSample === 16) swap16(data)
  }

  /** Compressed strips or any tiles: decode each needed row of chunks once, copy its rows. */
  async #copyChunks(data: Uint8Array, y: number, height: number): Promise<void> {
    const { chunkWidth, chunkHeight } = this.#header
    const rowBytes = this.width * this.#bpp
    const chunkRowBytes = chunkWidth * this.#bpp
    for (let row = Math.floor(y / chunkHeight); row * chunkHeight < y + height; row++) {
      const chunks = await this.#chunkRow(row)
      const top = Math.max(y, row * chunkHeight)
      const bottom = Math.min(y + height, (row + 1) * chunkHeight)
      for (let across = 0; across < this.#across; across++) {
        const chunk = chunks[across]!
        const x = across * chunkWidth
        const bytes = Math.min(chunkWidth, this.width - x) * this.#bpp
        for (let r = top; r < bottom; r++) {
          const from = (r - row * chunkHeight) * chunkRowBytes
          data.set(chunk.subarray(from, from + bytes), (r - y) * rowBytes + x * this.#bpp)
        }
      }
    }
  }

  /**
   * Decodes one row of chunks. Compressed bytes are read a few at a time (READ_AHEAD_BYTES, at
   * least one chunk) and dropped once decoded: memory is the decoded row, which tiffRoute bounds
   * by maxDecodeBytes, plus one window of compressed bytes.
   */
  async #chunkRow(row: number): Promise<Uint8Array[]> {
    if (this.#cache?.row === row) return this.#cache.chunks
    this.#cache = undefined // let the previous row be collected before decoding the next
    const { offsets, byteCounts } = this.#header
    const first = row * this.#across
    const chunks: Uint8Array[] = []
    const reads: Array<Promise<Uint8Array>> = []
    let inFlight = 0
    let next = first
    while (chunks.length < this.#across) {
      while (next < first + this.#across && (reads.length === 0 || inFlight + byteCounts[next]! <= READ_AHEAD_BYTES)) {
        inFlight += byteCounts[next]!
        const read = readAt(this.#handle, offsets[next]!, byteCounts[next]!, `TIFF chunk ${next}`)
        read.catch(() => undefined) // awaited below, unless an earlier chunk fails first
        reads.push(read)
        next++
      }
      const index = first + chunks.length
      const bytes = await reads.shift()!
      inFlight -= bytes.length
      chunks.push(this.#decode(bytes, index, row))
    }
    this.#cache = { row, chunks }
    return chunks
  }

  /** Decompresses one strip or tile, makes 16-bit samples little-endian, undoes the predictor. */
  #decode(bytes: Uint8Array, index: number, row: number): Uint8Array {
    const { chunkWidth, chunkHeight, compression, tiled } = this.#header
    const name = `TIFF ${tiled ? 'tile' : 'strip'} ${index}`
    // Tiles are always whole; the last strip holds only the rows that remain.
    const rows = tiled ? chunkHeight : Math.min(chunkHeight, this.height - row * chunkHeight)
    const needed = rows * chunkWidth * this.#bpp
    const full = chunkHeight * chunkWidth * this.#bpp
    if (bytes.length === 0) throw new CorruptInputError(`${name} is empty`)
    let out: Uint8Array
    try {
      if (compression === COMPRESSION_ZSTD) {
        // libtiff's frames do not record their content size (it streams them): decode into
        // the size the tile or strip must have, which also bounds the output.
        out = zstdDecompress(bytes, full)
      } else if (compression === COMPRESSION_NONE) {
        out = bytes
      } else {
        out = inflateSync(bytes, { maxOutputLength: full })
      }
    } catch (cause) {
      throw new CorruptInputError(`${name} does not decompress`, { cause })
    }
    if (out.length < needed) throw new CorruptInputError(`${name} decoded to ${out.length} bytes, expected ${needed}`)
    // 16-bit samples need 2-byte alignment for the predictor's Uint16Array view.
    let pixels = out.subarray(0, needed)
    if (pixels.byteOffset % 2 !== 0) pixels = pixels.slice()
    if (this.format.bitsPerSample === 16 && !this.#header.littleEndian) swap16(pixels)
    // Predictor 2 works on sample values, so it runs after the byte swap (libtiff tif_predict.c).
    if (this.#header.predictor === 2) decodePredictor(pixels, chunkWidth, this.format.channels, this.format.bitsPerSample)
    return pixels
  }

  close(): Promise<void> {
    this.#cache = undefined
    this.#closed ??= this.#handle.close()
    return this.#closed
  }
}
