/**
 * Opening a stream crop's input: a path (a regular file is read by position; a FIFO or device
 * as a stream) or an async iterable, sniffed by its first bytes and handed to its decoder.
 */
import { createReadStream } from 'node:fs'
import { open, stat } from 'node:fs/promises'
import { InvalidArgumentError, NotFoundError, UnsupportedFormatError } from '../errors.js'
import type { Band } from '../format/interface.js'
import { isCar } from './car-sniff.js'
import type { RowDecoder, ScanPlan, StreamDecoder, StreamInput, StreamStats } from './interface.js'
import { rowDeliveries } from './scan.js'
import { type ByteSource, FileSource, StreamSource } from './source.js'

/** Bytes a FIFO or device is read in. */
const STREAM_CHUNK = 1 << 20
/** Bytes looked at to tell the formats apart. */
const SNIFF_BYTES = 16

/** Opens `input` as a ByteSource: NotFoundError for a missing path, InvalidArgumentError for a directory. */
export async function openSource(input: StreamInput): Promise<ByteSource> {
  if (typeof input !== 'string') {
    if (input === null || typeof input !== 'object' || typeof (input as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] !== 'function') {
      throw new InvalidArgumentError('Expected a file path or an AsyncIterable of Uint8Array for the input')
    }
    return new StreamSource(input)
  }
  if (input === '') throw new InvalidArgumentError('Expected a non-empty path for the input')
  const stats = await stat(input).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT' || error.code === 'ENOTDIR') throw new NotFoundError(`Input file ${input} does not exist`, { cause: error })
    throw error
  })
  if (stats.isDirectory()) throw new InvalidArgumentError(`${input} is a directory`)
  if (!stats.isFile()) return new StreamSource(createReadStream(input, { highWaterMark: STREAM_CHUNK }))
  const handle = await open(input, 'r')
  // The size the file has now: reads past it (a file still growing) are not attempted.
  const { size } = await handle.stat()
  return new FileSource(handle, size)
}

/** What opening an input needs. */
export interface OpenOptions {
  readonly maxPixels: number
  readonly level: number
  readonly tmpDir: string
  readonly signal?: AbortSignal | undefined
}

/**
 * Sniffs `source` and opens its decoder. Formats the importer decodes through libvips (JPEG,
 * WebP, GIF, HEIF, TIFFs it does not stream) are decoded the importer's way when `path` names a
 * regular file (one whole pass into a temporary file: no early stop), and refused on a stream.
 */
export async function openStreamDecoder(source: ByteSource, path: string | undefined, options: OpenOptions): Promise<StreamDecoder> {
  const head = await source.peek(SNIFF_BYTES)
  if (head.length === 0) throw new UnsupportedFormatError('The input is empty')
  if (options.level !== 0 && !isCar(head)) throw new InvalidArgumentError('Only a Tessera CAR has pyramid levels: --level must be 0')
  // Each decoder is loaded when its format turns up (a CLI run is one process: start-up counts).
  const at = (offset: number, text: string): boolean => [...text].every((c, i) => head[offset + i] === c.charCodeAt(0))
  if (at(0, '\x89PNG\r\n\x1a\n')) return fromRows(await (await import('./png.js')).openPng(source, options))
  if (head[0] === 0x50 && head[1]! >= 0x31 && head[1]! <= 0x37) {
    const pnm = await import('./pnm.js')
    if (pnm.isPnm(head)) return fromRows(await pnm.openPnm(source, options))
  }
  if (at(0, 'II') || at(0, 'MM')) {
    const { isTiff, openTiff } = await import('./tiff.js')
    if (isTiff(head)) {
      const tiff = await openTiff(source, options)
      if (tiff.decoder !== undefined) return fromRows(tiff.decoder)
      return viaLibvips(source, path, 'TIFF', tiff.reason, options)
    }
  }
  if (isCar(head)) return (await import('./car.js')).openCar(source, options)
  const name = rasterName(head)
  if (name !== undefined) return viaLibvips(source, path, name, undefined, options)
  throw new UnsupportedFormatError('Unsupported input: not PNG, PNM, TIFF, a Tessera CAR, JPEG, WebP, GIF or HEIF')
}

/** The name of a raster format only libvips decodes, by its signature. */
function rasterName(head: Uint8Array): string | undefined {
  const at = (offset: number, text: string): boolean => [...text].every((c, i) => head[offset + i] === c.charCodeAt(0))
  if (head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return 'JPEG'
  if (at(0, 'RIFF') && at(8, 'WEBP')) return 'WebP'
  if (at(0, 'GIF8')) return 'GIF'
  if (at(4, 'ftyp')) return 'HEIF/AVIF'
  return undefined
}

/** A row decoder as a stream decoder: its bands cut into each region's. */
function fromRows(decoder: RowDecoder): StreamDecoder {
  return {
    width: decoder.width,
    height: decoder.height,
    format: decoder.format,
    sourceFormat: decoder.sourceFormat,
    icc: decoder.icc,
    deliveries: (plan, stats, signal) => rowDeliveries(decoder, plan, stats, signal),
    close: () => decoder.close(),
  }
}

/** The importer's libvips decoder over the file at `path`; on a stream, UnsupportedFormatError. */
async function viaLibvips(
  source: ByteSource,
  path: string | undefined,
  name: string,
  reason: string | undefined,
  options: OpenOptions,
): Promise<StreamDecoder> {
  const what = reason === undefined ? name : `${name} with ${reason}`
  if (!source.seekable || path === undefined) {
    throw new UnsupportedFormatError(
      `${what} cannot be cropped as a stream (no streaming decoder: PNG, PNM, TIFF with none/deflate/zstd and a Tessera CAR can); pass a file or import it`,
    )
  }
  await source.close()
  // Loaded only here: the importer's decoders load sharp (libvips).
  const { openDecoder } = await import('../import/decoders/index.js')
  const image = await openDecoder(path, { maxPixels: options.maxPixels, tmpDir: options.tmpDir, signal: options.signal })
  const size = source.size
  const rows: RowDecoder = {
    width: image.width,
    height: image.height,
    format: image.format,
    sourceFormat: image.sourceFormat,
    icc: image.icc,
    async *bands(plan: ScanPlan, stats: StreamStats): AsyncGenerator<Band> {
      // libvips reads the whole file whatever rows are needed.
      stats.bytesRead = size ?? 0
      const bandRows = Math.max(1, Math.floor((4 << 20) / (image.width * image.format.channels * (image.format.bitsPerSample / 8))))
      for await (const band of image.bands(bandRows, { signal: options.signal })) {
        stats.rowsDecoded += band.height
        yield band
        if (band.y + band.height >= plan.endRow) return
      }
    },
    close: () => image.close(),
  }
  return fromRows(rows)
}
