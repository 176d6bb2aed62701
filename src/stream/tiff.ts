/**
 * TIFF read as it arrives: the TIFFs the importer streams itself (`tiffRoute`: none, deflate or
 * zstd, predictor 1 or 2, chunky 8/16-bit gray or RGB with or without alpha, strips or tiles,
 * classic or BigTIFF, either byte order). The header and first IFD are parsed by the importer's
 * `readTiffHeader`; only the strips or tiles that hold needed rows are read, and in a tile row
 * only the tiles whose columns a region needs.
 *
 * From a stream, everything must come in file order: the IFD and its values within the first
 * 16 MiB (libtiff writes the IFD after the pixels; tifffile, GDAL's COGs and Tessera's own
 * crops write it first), and the chunks of each row after those of the row above. A TIFF that
 * breaks that is refused with ERR_UNSUPPORTED_FORMAT, asking for a file, where any order works.
 */
import type { FileHandle } from 'node:fs/promises'
import { inflateSync } from 'node:zlib'
import { CorruptInputError } from '../errors.js'
import type { Band, PixelFormat } from '../format/interface.js'
import { decodePredictor } from '../format/predictor.js'
import { zstdDecompress } from '../format/tile-codec.js'
import { checkDimensions, swap16 } from '../import/decoders/rows.js'
import { readTiffHeader, type TiffHeader, tiffRoute } from '../import/decoders/tiff.js'
import type { RowDecoder, ScanPlan, StreamStats } from './interface.js'
import { neededRows } from './scan.js'
import type { ByteSource } from './source.js'

export { isTiff } from '../import/decoders/tiff.js'

/** On a stream, the header, IFD and tag values must lie within this many first bytes. */
export const STREAM_HEADER_BYTES = 16 << 20
/** Target size of a band of rows read straight from uncompressed strips. */
const BAND_BYTES = 4 << 20

const COMPRESSION_NONE = 1
const COMPRESSION_ZSTD = 50000

/**
 * A positional reader over the source, shaped like the FileHandle `readTiffHeader` reads with:
 * any position of a file; on a stream, positions within the first STREAM_HEADER_BYTES (peeked,
 * not consumed), which readTiffHeader is told.
 */
function headerReader(source: ByteSource): FileHandle {
  const read = async ({ buffer, offset, length, position }: { buffer: Uint8Array; offset: number; length: number; position: number }) => {
    if (source.seekable) await source.seek(position, 'TIFF header')
    const bytes = source.seekable ? await source.peek(length) : (await source.peek(position + length)).subarray(position)
    buffer.set(bytes, offset)
    return { bytesRead: bytes.length, buffer }
  }
  return { read } as unknown as FileHandle
}

/** Reads the header and first IFD; returns a decoder, or undefined when the importer would route the TIFF to libvips (with why). */
export async function openTiff(
  source: ByteSource,
  options: { readonly maxPixels: number },
): Promise<{ decoder: RowDecoder } | { decoder: undefined; reason: string }> {
  const header = await readTiffHeader(
    headerReader(source),
    source.size ?? Number.MAX_SAFE_INTEGER,
    source.seekable ? undefined : STREAM_HEADER_BYTES,
  )
  checkDimensions(header.width, header.height, options.maxPixels, 'TIFF')
  const route = tiffRoute(header)
  if (!route.stream) return { decoder: undefined, reason: route.reason }
  const across = Math.ceil(header.width / header.chunkWidth)
  const needed = across * Math.ceil(header.height / header.chunkHeight)
  if (header.offsets.length < needed) {
    throw new CorruptInputError(`TIFF has ${header.offsets.length} ${header.tiled ? 'tiles' : 'strips'}, expected ${needed}`)
  }
  if (source.seekable) await source.seek(0, 'TIFF')
  return { decoder: new TiffRows(source, header, route.format) }
}

class TiffRows implements RowDecoder {
  readonly sourceFormat = 'tiff'
  readonly width: number
  readonly height: number
  readonly icc: Uint8Array | undefined
  readonly #source: ByteSource
  readonly #header: TiffHeader
  readonly #bpp: number

  constructor(
    source: ByteSource,
    header: TiffHeader,
    readonly format: PixelFormat,
  ) {
    this.#source = source
    this.#header = header
    this.width = header.width
    this.height = header.height
    this.icc = header.icc
    this.#bpp = format.channels * (format.bitsPerSample / 8)
  }

  bands(plan: ScanPlan, stats: StreamStats, signal: AbortSignal | undefined): AsyncIterable<Band> {
    const { tiled, compression } = this.#header
    return !tiled && compression === COMPRESSION_NONE ? this.#rows(plan, stats, signal) : this.#chunks(plan, stats, signal)
  }

  /** Uncompressed strips: the needed rows straight from the input, whatever RowsPerStrip is. */
  async *#rows(plan: ScanPlan, stats: StreamStats, signal: AbortSignal | undefined): AsyncGenerator<Band> {
    const { chunkHeight: rps, offsets, byteCounts, littleEndian } = this.#header
    const rowBytes = this.width * this.#bpp
    const bandRows = Math.max(1, Math.floor(BAND_BYTES / rowBytes))
    for (const [start, end] of neededRows(plan)) {
      for (let y = start; y < end; ) {
        signal?.throwIfAborted()
        const strip = Math.floor(y / rps)
        const first = y - strip * rps
        const rows = Math.min(rps - first, end - y, bandRows)
        if (byteCounts[strip]! < (first + rows) * rowBytes) throw new CorruptInputError(`TIFF strip ${strip} is shorter than its rows`)
        await this.#source.seek(offsets[strip]! + first * rowBytes, `TIFF strip ${strip}`)
        let data = await this.#source.read(rows * rowBytes, `TIFF strip ${strip}`)
        if (this.format.bitsPerSample === 16 && !littleEndian) {
          data = data.slice()
          swap16(data)
        }
        stats.rowsDecoded += rows
        yield { y, height: rows, data }
        y += rows
      }
    }
  }

  /** Compressed strips, or tiles: each row of chunks holding needed rows, only the chunks under a region. */
  async *#chunks(plan: ScanPlan, stats: StreamStats, signal: AbortSignal | undefined): AsyncGenerator<Band> {
    const { chunkWidth, chunkHeight, offsets, byteCounts, tiled } = this.#header
    const across = Math.ceil(this.width / chunkWidth)
    const rowBytes = this.width * this.#bpp
    const chunkRows = Math.ceil(this.height / chunkHeight)
    // One buffer for every row of chunks: a band is valid until the next is asked for (RowDecoder).
    const buffer = new Uint8Array(Math.min(chunkHeight, this.height) * rowBytes)
    for (let row = 0; row < chunkRows && row * chunkHeight < plan.endRow; row++) {
      signal?.throwIfAborted()
      const top = row * chunkHeight
      const bottom = Math.min(top + chunkHeight, this.height)
      const regions = plan.regions.filter((r) => r.y < bottom && r.y + r.height > top)
      if (regions.length === 0) continue
      // The chunks under some region, read in file order (on a stream, the only order there is).
      const columns = new Set<number>()
      for (const r of regions) {
        for (let c = Math.floor(r.x / chunkWidth); c * chunkWidth < r.x + r.width; c++) columns.add(c)
      }
      const indices = [...columns].map((c) => row * across + c).sort((a, b) => offsets[a]! - offsets[b]!)
      const data = buffer.subarray(0, (bottom - top) * rowBytes)
      for (const index of indices) {
        const name = `TIFF ${tiled ? 'tile' : 'strip'} ${index}`
        await this.#source.seek(offsets[index]!, name)
        const bytes = await this.#source.read(byteCounts[index]!, name)
        const pixels = this.#decode(bytes, bottom - top, name)
        stats.tilesDecoded++
        const x = (index % across) * chunkWidth
        const width = Math.min(chunkWidth, this.width - x) * this.#bpp
        for (let r = 0; r < bottom - top; r++) {
          const from = r * chunkWidth * this.#bpp
          data.set(pixels.subarray(from, from + width), r * rowBytes + x * this.#bpp)
        }
      }
      stats.rowsDecoded += bottom - top
      yield { y: top, height: bottom - top, data }
    }
  }

  /** Decompresses one strip or tile into `rows` rows, 16-bit samples little-endian, predictor undone. */
  #decode(bytes: Uint8Array, rows: number, name: string): Uint8Array {
    const { chunkWidth, chunkHeight, compression, tiled, littleEndian, predictor } = this.#header
    // Tiles are always whole; the last strip holds only the rows that remain.
    const needed = (tiled ? chunkHeight : rows) * chunkWidth * this.#bpp
    const full = chunkHeight * chunkWidth * this.#bpp
    if (bytes.length === 0) throw new CorruptInputError(`${name} is empty`)
    let out: Uint8Array
    try {
      if (compression === COMPRESSION_ZSTD) out = zstdDecompress(bytes, full)
      else if (compression === COMPRESSION_NONE) out = bytes.slice(0, needed)
      else out = inflateSync(bytes, { maxOutputLength: full })
    } catch (cause) {
      throw new CorruptInputError(`${name} does not decompress`, { cause })
    }
    if (out.length < needed) throw new CorruptInputError(`${name} decoded to ${out.length} bytes, expected ${needed}`)
    let pixels = out.subarray(0, needed)
    if (pixels.byteOffset % 2 !== 0) pixels = pixels.slice()
    if (this.format.bitsPerSample === 16 && !littleEndian) swap16(pixels)
    // Predictor 2 works on sample values, so it runs after the byte swap (libtiff tif_predict.c).
    if (predictor === 2) decodePredictor(pixels, chunkWidth, this.format.channels, this.format.bitsPerSample)
    return pixels
  }

  async close(): Promise<void> {}
}
