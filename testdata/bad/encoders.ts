/**
 * Tiny, deliberately permissive encoders for the bad-input corpus (make.ts): TIFF (classic and
 * BigTIFF, either byte order, strips or tiles, any tag values, hooks to lie about byte ranges),
 * PNG (any bit depth and colour type, Adam7 interlace, bad CRCs) and Netpbm. They write what
 * they are told, including files no sane encoder writes; nothing here validates.
 * Specs: TIFF 6.0 (sections 2, 8, 15), BigTIFF (awaresystems.be/imaging/tiff/bigtiff.html),
 * PNG (w3.org/TR/png-3, 5.3 CRC, 8.2 Adam7), Netpbm (netpbm.sourceforge.net/doc/pam.html).
 */
import { constants, crc32, deflateRawSync, deflateSync } from 'node:zlib'
import { zstdCompress } from '../../src/format/tile-codec.js'

// ---------------------------------------------------------------------------------------------
// zlib streams of zeros of any length, built in O(1) time: a full-flushed raw deflate block of
// 1 MiB of zeros decodes to the same bytes wherever it is placed, so it can be repeated.

const MIB = 1 << 20
let zeroBlock: Buffer | undefined

/** A zlib stream (RFC 1950) that inflates to `n` zero bytes, about n/1000 bytes long. */
export function zeroZlib(n: number): Uint8Array {
  zeroBlock ??= deflateRawSync(Buffer.alloc(MIB), { level: 9, finishFlush: constants.Z_FULL_FLUSH })
  const whole = Math.floor(n / MIB)
  const rest = deflateRawSync(Buffer.alloc(n - whole * MIB), { level: 9 }) // ends with the final block
  const parts: Uint8Array[] = [Uint8Array.of(0x78, 0xda)]
  for (let i = 0; i < whole; i++) parts.push(zeroBlock)
  parts.push(rest)
  // Adler-32 of n zeros: a = 1, b = n mod 65521 (RFC 1950 section 9).
  const b = n % 65521
  parts.push(Uint8Array.of(b >>> 8, b & 0xff, 0, 1))
  return concat(parts)
}

/** The bytes of `parts`, one after another. */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

/** A sample value for pixel (x, y), channel c: a smooth pattern that compresses a little. */
export type PixelFn = (x: number, y: number, c: number) => number
const pattern: PixelFn = (x, y, c) => x * 7 + y * 13 + c * 50 + ((x * y) >> 3)

// ---------------------------------------------------------------------------------------------
// TIFF

export const TIFF_NONE = 1
export const TIFF_DEFLATE = 8
export const TIFF_ZSTD = 50000

/** What to write. Every field maps to a tag; absent optional fields leave the tag out. */
export interface TiffSpec {
  readonly width: number
  readonly height: number
  readonly samples?: number
  readonly bits?: number
  readonly sampleFormat?: number
  /** PhotometricInterpretation; null leaves the tag out. Default: 1 (gray) or 2 (RGB). */
  readonly photometric?: number | null
  readonly compression?: number
  readonly predictor?: number
  /** Tile width and length; absent: strips. */
  readonly tile?: readonly [number, number]
  readonly rowsPerStrip?: number
  readonly planar?: 1 | 2
  readonly extraSamples?: readonly number[]
  /** Writes a ColorMap (3 x 2^bits SHORTs). */
  readonly colorMap?: boolean
  readonly bigTiff?: boolean
  readonly bigEndian?: boolean
  readonly pixel?: PixelFn
  /** Encodes one chunk's raw bytes; default: by `compression` (none, deflate, zstd). */
  readonly encode?: (raw: Uint8Array, index: number) => Uint8Array
  /**
   * Rewrites the strip/tile byte ranges written: given each chunk's [offset, count] and the
   * chunk data area [start, end), returns what the IFD will claim.
   */
  readonly ranges?: (ranges: Array<[number, number]>, area: { start: number; end: number }) => Array<[number, number]>
  /** Next-IFD offset: 'self' makes the IFD point at itself (a loop); default 0. */
  readonly nextIfd?: 'self' | number
  /** Extra entries: [tag, type, values]. */
  readonly extra?: ReadonlyArray<readonly [number, number, readonly number[]]>
  /** Bytes appended after everything (to make a file of a given size). */
  readonly pad?: number
}

interface TiffEntry {
  readonly tag: number
  readonly type: number
  readonly values: readonly number[]
}

const TYPE_BYTES: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 4, 7: 1, 16: 8 }

/** The raw (unencoded) bytes of each strip or tile, in file byte order, with predictor applied. */
function tiffChunks(spec: TiffSpec): { chunks: Uint8Array[]; chunkWidth: number; chunkHeight: number } {
  const spp = spec.samples ?? 1
  const bits = spec.bits ?? 8
  const planar = spec.planar ?? 1
  const pixel = spec.pixel ?? pattern
  const tiled = spec.tile !== undefined
  const chunkWidth = tiled ? spec.tile![0] : spec.width
  const chunkHeight = tiled ? spec.tile![1] : Math.min(spec.rowsPerStrip ?? spec.height, spec.height)
  const across = Math.ceil(spec.width / chunkWidth)
  const down = Math.ceil(spec.height / chunkHeight)
  const planes = planar === 2 ? spp : 1
  const perPixel = planar === 2 ? 1 : spp
  const mask = bits >= 32 ? 0xffffffff : 2 ** bits - 1
  const chunks: Uint8Array[] = []
  for (let plane = 0; plane < planes; plane++) {
    for (let cy = 0; cy < down; cy++) {
      for (let cx = 0; cx < across; cx++) {
        const rows = tiled ? chunkHeight : Math.min(chunkHeight, spec.height - cy * chunkHeight)
        const rowBytes = Math.ceil((chunkWidth * perPixel * bits) / 8)
        const out = new Uint8Array(rows * rowBytes)
        const view = new DataView(out.buffer)
        for (let r = 0; r < rows; r++) {
          const y = cy * chunkHeight + r
          const previous = new Array<number>(perPixel).fill(0)
          for (let i = 0; i < chunkWidth; i++) {
            const x = cx * chunkWidth + i
            for (let s = 0; s < perPixel; s++) {
              const c = planar === 2 ? plane : s
              let value = x < spec.width && y < spec.height ? pixel(x, y, c) & mask : 0
              if (spec.predictor === 2) {
                const diff = (value - previous[s]!) & mask
                previous[s] = value
                value = diff
              }
              const sampleIndex = i * perPixel + s
              if (bits < 8) {
                const bit = sampleIndex * bits
                out[r * rowBytes + (bit >> 3)]! |= value << (8 - bits - (bit & 7))
              } else if (bits === 8) {
                out[r * rowBytes + sampleIndex] = value
              } else if (bits === 16) {
                view.setUint16(r * rowBytes + sampleIndex * 2, value, !spec.bigEndian)
              } else if (bits === 32) {
                view.setUint32(r * rowBytes + sampleIndex * 4, value >>> 0, !spec.bigEndian)
              }
            }
          }
        }
        chunks.push(out)
      }
    }
  }
  return { chunks, chunkWidth, chunkHeight }
}

/** Encodes a chunk with TIFF compression `compression` (none, deflate or zstd). */
export function tiffEncode(raw: Uint8Array, compression: number): Uint8Array {
  if (compression === TIFF_DEFLATE) return deflateSync(raw)
  if (compression === TIFF_ZSTD) return zstdCompress(raw, 3)
  return raw
}

/** Builds a TIFF file from `spec`: header, chunk data, tag values, then the IFD. */
export function tiff(spec: TiffSpec): Uint8Array {
  const spp = spec.samples ?? 1
  const bits = spec.bits ?? 8
  const compression = spec.compression ?? TIFF_NONE
  const { chunks, chunkWidth, chunkHeight } = tiffChunks(spec)
  const encoded = chunks.map((raw, i) => (spec.encode ? spec.encode(raw, i) : tiffEncode(raw, compression)))
  return tiffFromChunks(spec, encoded, chunkWidth, chunkHeight, spp, bits, compression)
}

/** Builds a TIFF file around already-encoded chunks (for bombs: no pixels are generated). */
export function tiffFromChunks(
  spec: TiffSpec,
  encoded: readonly Uint8Array[],
  chunkWidth: number,
  chunkHeight: number,
  spp = spec.samples ?? 1,
  bits = spec.bits ?? 8,
  compression = spec.compression ?? TIFF_NONE,
): Uint8Array {
  const big = spec.bigTiff === true
  const le = spec.bigEndian !== true
  const headerBytes = big ? 16 : 8
  const dataStart = headerBytes
  let dataEnd = dataStart
  let ranges: Array<[number, number]> = encoded.map((chunk) => {
    const range: [number, number] = [dataEnd, chunk.length]
    dataEnd += chunk.length
    return range
  })
  if (spec.ranges) ranges = spec.ranges(ranges, { start: dataStart, end: dataEnd })
  const offsetType = big ? 16 : 4
  const tiled = spec.tile !== undefined
  const entries: TiffEntry[] = [
    { tag: 256, type: 4, values: [spec.width] },
    { tag: 257, type: 4, values: [spec.height] },
    { tag: 258, type: 3, values: new Array<number>(spp).fill(bits) },
    { tag: 259, type: 3, values: [compression] },
    { tag: 277, type: 3, values: [spp] },
    { tag: 284, type: 3, values: [spec.planar ?? 1] },
  ]
  const photometric = spec.photometric === undefined ? (spp >= 3 ? 2 : 1) : spec.photometric
  if (photometric !== null) entries.push({ tag: 262, type: 3, values: [photometric] })
  if (tiled) {
    entries.push({ tag: 322, type: 4, values: [chunkWidth] }, { tag: 323, type: 4, values: [chunkHeight] })
    entries.push({ tag: 324, type: offsetType, values: ranges.map((r) => r[0]) })
    entries.push({ tag: 325, type: offsetType, values: ranges.map((r) => r[1]) })
  } else {
    entries.push({ tag: 273, type: offsetType, values: ranges.map((r) => r[0]) })
    entries.push({ tag: 278, type: 4, values: [chunkHeight] })
    entries.push({ tag: 279, type: offsetType, values: ranges.map((r) => r[1]) })
  }
  if (spec.predictor !== undefined) entries.push({ tag: 317, type: 3, values: [spec.predictor] })
  if (spec.sampleFormat !== undefined) entries.push({ tag: 339, type: 3, values: new Array<number>(spp).fill(spec.sampleFormat) })
  if (spec.extraSamples !== undefined) entries.push({ tag: 338, type: 3, values: spec.extraSamples })
  if (spec.colorMap === true) {
    const n = 2 ** bits
    entries.push({ tag: 320, type: 3, values: Array.from({ length: 3 * n }, (_, i) => ((i * 40503) % 65536) & 0xffff) })
  }
  for (const [tag, type, values] of spec.extra ?? []) entries.push({ tag, type, values })
  entries.sort((a, b) => a.tag - b.tag)

  // Out-of-line values go after the chunk data, then the IFD.
  const inline = big ? 8 : 4
  const values: Uint8Array[] = []
  let valuesEnd = dataEnd
  const placed = entries.map((entry) => {
    const bytes = encodeValues(entry, le)
    if (bytes.length <= inline) return { entry, bytes, offset: -1 }
    const offset = valuesEnd
    values.push(bytes)
    valuesEnd += bytes.length
    if (valuesEnd % 2 === 1) {
      values.push(new Uint8Array(1)) // word alignment (TIFF 6.0 section 2)
      valuesEnd++
    }
    return { entry, bytes, offset }
  })
  const ifdOffset = valuesEnd
  const entrySize = big ? 20 : 12
  const ifd = new Uint8Array((big ? 8 : 2) + placed.length * entrySize + (big ? 8 : 4))
  const iv = new DataView(ifd.buffer)
  if (big) iv.setBigUint64(0, BigInt(placed.length), le)
  else iv.setUint16(0, placed.length, le)
  placed.forEach(({ entry, bytes, offset }, i) => {
    const at = (big ? 8 : 2) + i * entrySize
    iv.setUint16(at, entry.tag, le)
    iv.setUint16(at + 2, entry.type, le)
    if (big) iv.setBigUint64(at + 4, BigInt(entry.values.length), le)
    else iv.setUint32(at + 4, entry.values.length, le)
    const valueAt = at + (big ? 12 : 8)
    if (offset < 0) ifd.set(bytes, valueAt)
    else if (big) iv.setBigUint64(valueAt, BigInt(offset), le)
    else iv.setUint32(valueAt, offset, le)
  })
  const next = spec.nextIfd === 'self' ? ifdOffset : (spec.nextIfd ?? 0)
  if (big) iv.setBigUint64(ifd.length - 8, BigInt(next), le)
  else iv.setUint32(ifd.length - 4, next, le)

  const header = new Uint8Array(headerBytes)
  const hv = new DataView(header.buffer)
  header[0] = header[1] = le ? 0x49 : 0x4d
  hv.setUint16(2, big ? 43 : 42, le)
  if (big) {
    hv.setUint16(4, 8, le)
    hv.setBigUint64(8, BigInt(ifdOffset), le)
  } else hv.setUint32(4, ifdOffset, le)
  return concat([header, ...encoded, ...values, ifd, new Uint8Array(spec.pad ?? 0)])
}

function encodeValues(entry: TiffEntry, le: boolean): Uint8Array {
  const size = TYPE_BYTES[entry.type] ?? 4
  const out = new Uint8Array(size * entry.values.length)
  const view = new DataView(out.buffer)
  entry.values.forEach((value, i) => {
    if (size === 1) view.setUint8(i, value)
    else if (size === 2) view.setUint16(i * 2, value, le)
    else if (size === 4) view.setUint32(i * 4, value >>> 0, le)
    else view.setBigUint64(i * 8, BigInt(value), le)
  })
  return out
}

// ---------------------------------------------------------------------------------------------
// PNG

/** What to write. colorType: 0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA. */
export interface PngSpec {
  readonly width: number
  readonly height: number
  readonly bitDepth?: number
  readonly colorType?: number
  readonly interlace?: boolean
  readonly pixel?: PixelFn
  /** The zlib stream of the filtered scanlines, if not made from `pixel` (for bombs). */
  readonly idat?: Uint8Array
  /** Splits the IDAT data into chunks of this many bytes. */
  readonly idatChunk?: number
  /** Which chunk gets a wrong CRC. */
  readonly badCrc?: 'IHDR' | 'IDAT'
  /** A tEXt chunk whose CRC is wrong, before IDAT. */
  readonly badTextCrc?: boolean
}

const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }
// Adam7 passes: x start, y start, x step, y step (PNG 8.2).
const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
] as const

/** Bytes of the filtered scanline stream (filter 0 everywhere) for a PNG of this shape. */
export function pngRawBytes(width: number, height: number, bitDepth: number, channels: number, interlace: boolean): number {
  const line = (w: number): number => (w === 0 ? 0 : 1 + Math.ceil((w * channels * bitDepth) / 8))
  if (!interlace) return height * line(width)
  let n = 0
  for (const [x0, y0, dx, dy] of ADAM7) {
    const w = Math.ceil((width - x0) / dx)
    const h = Math.ceil((height - y0) / dy)
    if (w > 0 && h > 0) n += h * line(w)
  }
  return n
}

function pngScanlines(spec: PngSpec): Uint8Array {
  const bitDepth = spec.bitDepth ?? 8
  const channels = CHANNELS[spec.colorType ?? 2]!
  const pixel = spec.pixel ?? pattern
  const mask = 2 ** bitDepth - 1
  const out = new Uint8Array(pngRawBytes(spec.width, spec.height, bitDepth, channels, spec.interlace === true))
  let at = 0
  const passes = spec.interlace === true ? ADAM7 : [[0, 0, 1, 1] as const]
  for (const [x0, y0, dx, dy] of passes) {
    const w = Math.ceil((spec.width - x0) / dx)
    if (w <= 0) continue
    const lineBytes = Math.ceil((w * channels * bitDepth) / 8)
    for (let y = y0; y < spec.height; y += dy) {
      out[at++] = 0 // filter type None
      for (let i = 0; i < w; i++) {
        for (let c = 0; c < channels; c++) {
          const value = pixel(x0 + i * dx, y, c) & mask
          const sample = i * channels + c
          if (bitDepth < 8) {
            const bit = sample * bitDepth
            out[at + (bit >> 3)]! |= value << (8 - bitDepth - (bit & 7))
          } else if (bitDepth === 8) out[at + sample] = value
          else {
            out[at + sample * 2] = value >> 8
            out[at + sample * 2 + 1] = value & 0xff
          }
        }
      }
      at += lineBytes
    }
  }
  return out
}

function pngChunk(type: string, data: Uint8Array, badCrc = false): Uint8Array {
  const out = new Uint8Array(12 + data.length)
  const view = new DataView(out.buffer)
  view.setUint32(0, data.length)
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i)
  out.set(data, 8)
  const crc = crc32(out.subarray(4, 8 + data.length))
  view.setUint32(8 + data.length, badCrc ? crc ^ 0x01 : crc)
  return out
}

/** Builds a PNG file from `spec`. */
export function png(spec: PngSpec): Uint8Array {
  const colorType = spec.colorType ?? 2
  const bitDepth = spec.bitDepth ?? 8
  const ihdr = new Uint8Array(13)
  const view = new DataView(ihdr.buffer)
  view.setUint32(0, spec.width)
  view.setUint32(4, spec.height)
  ihdr.set([bitDepth, colorType, 0, 0, spec.interlace === true ? 1 : 0], 8)
  const chunks = [Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), pngChunk('IHDR', ihdr, spec.badCrc === 'IHDR')]
  if (colorType === 3) {
    const n = 2 ** bitDepth
    chunks.push(pngChunk('PLTE', Uint8Array.from({ length: 3 * n }, (_, i) => (i * 37) & 0xff)))
  }
  if (spec.badTextCrc === true) chunks.push(pngChunk('tEXt', new TextEncoder().encode('Comment\0damaged'), true))
  const data = spec.idat ?? deflateSync(pngScanlines(spec))
  const step = spec.idatChunk ?? 1 << 20
  for (let at = 0; at < data.length; at += step) {
    chunks.push(pngChunk('IDAT', data.subarray(at, at + step), spec.badCrc === 'IDAT' && at === 0))
  }
  chunks.push(pngChunk('IEND', new Uint8Array(0)))
  return concat(chunks)
}

// ---------------------------------------------------------------------------------------------
// Netpbm

/** A PNM header followed by `raster` (or zeros to the declared size when absent). */
export function pnm(header: string, raster?: Uint8Array): Uint8Array {
  return concat([new TextEncoder().encode(header), raster ?? new Uint8Array(0)])
}
