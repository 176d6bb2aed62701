/**
 * The one table of output formats: name, file extensions, media type, whether the output is
 * exact, which compressions it takes, its length when known before the first byte (which is
 * what allows byte ranges) and its writer. The facade (cropOutput), the CLI, the HTTP routes
 * and IIIF read it; a test checks spec/outputs.md against it.
 */
import { extname } from 'node:path'
import { InvalidArgumentError } from '../../errors.js'
import type { Band } from '../../format/interface.js'
import { bytesPerPixel } from '../../format/pixel.js'
import { tileBytes } from '../../format/tile-codec.js'
import type { OutputFormat, OutputInit, PnmKind, TiffCompression, TiffInit } from './interface.js'
import { writeLossy } from './lossy.js'
import { npyHeader, writeNpy } from './npy.js'
import { writePng } from './png.js'
import { pnmHeader, writePnm } from './pnm.js'
import { writeRaw } from './raw.js'
import { writeTiffFromBands } from './tiff.js'
import { tiffGrid, tiffHead } from './tiff-layout.js'

/** Per-call options of a table writer. */
export interface WriteOptions {
  /** Where compressed TIFF tiles spool (default the OS temp dir). */
  readonly tmpDir?: string
  readonly signal?: AbortSignal
}

/** One row of the table. */
export interface OutputFormatSpec {
  readonly name: OutputFormat
  /** File name extensions without the dot, lower case; the first names files (`tif`, `bin`). */
  readonly extensions: readonly string[]
  readonly mediaType: string
  /** Exactly the stored pixels; false for jpg and webp (8-bit, lossy). */
  readonly lossless: boolean
  /** The writer holds the whole raster to encode it: callers bound the size. */
  readonly inMemory: boolean
  /** The compressions it takes, its default first; none when it has no such option (then ignored). */
  readonly compressions: readonly TiffCompression[]
  /** The output's length from `init` alone when the writer knows it before the first byte, else undefined. */
  length(init: OutputInit): number | undefined
  /** Writes the output, header first. Validates at call time (InvalidArgumentError). */
  write(init: OutputInit, bands: AsyncIterable<Band>, options?: WriteOptions): AsyncIterable<Uint8Array>
}

/** Every compression an output may take. */
export const COMPRESSIONS = ['zstd', 'deflate', 'none'] as const satisfies readonly TiffCompression[]

const pixelBytes = (init: OutputInit) => init.width * init.height * bytesPerPixel(init.format)

/** TIFF with the image's tiling; `none` never carries a predictor. */
const tiffInit = (init: OutputInit): TiffInit => ({ ...init, predictor: init.compression === 'none' ? 1 : init.predictor })

/**
 * Uncompressed TIFF tiles all have the padded tile's size. (A copied zstd TIFF's length is
 * known up front too, from the index blocks: cropOutput gives it.)
 */
function tiffLength(init: OutputInit): number | undefined {
  if (init.compression !== 'none') return undefined
  const tiff = tiffInit(init)
  const { count } = tiffGrid(tiff)
  const bytes = tileBytes({ tileSize: init.tileSize, channels: init.format.channels, bitsPerSample: init.format.bitsPerSample })
  return tiffHead(tiff, new Array<number>(count).fill(bytes)).length + count * bytes
}

/** The columns every lossless, streamed format shares. */
function exact(name: OutputFormat, extensions: string[], mediaType: string) {
  return { name, extensions, mediaType, lossless: true, inMemory: false, compressions: [] }
}

function pnm(kind: PnmKind, mediaType: string): OutputFormatSpec {
  const length = (init: OutputInit) => pnmHeader(init, kind).length + pixelBytes(init)
  return { ...exact(kind, [kind], mediaType), length, write: (init, bands) => writePnm(init, bands, kind) }
}

function lossy(name: 'jpg' | 'webp', extensions: string[], mediaType: string): OutputFormatSpec {
  const write = (init: OutputInit, bands: AsyncIterable<Band>) => writeLossy(init, bands, name)
  return { name, extensions, mediaType, lossless: false, inMemory: true, compressions: [], length: () => undefined, write }
}

/** The output formats, by name (spec/outputs.md). */
export const OUTPUT_FORMATS: Readonly<Record<OutputFormat, OutputFormatSpec>> = {
  tiff: {
    ...exact('tiff', ['tif', 'tiff'], 'image/tiff'),
    compressions: COMPRESSIONS,
    length: tiffLength,
    write: (init, bands, options) => writeTiffFromBands(tiffInit(init), bands, options),
  },
  png: {
    ...exact('png', ['png'], 'image/png'),
    compressions: ['deflate', 'none'],
    length: () => undefined,
    write: (init, bands) => writePng(init, bands, { compression: init.compression === 'none' ? 'none' : 'deflate' }),
  },
  npy: { ...exact('npy', ['npy'], 'application/x-npy'), length: (init) => npyHeader(init).length + pixelBytes(init), write: writeNpy },
  pam: pnm('pam', 'image/x-portable-arbitrarymap'),
  ppm: pnm('ppm', 'image/x-portable-pixmap'),
  pgm: pnm('pgm', 'image/x-portable-graymap'),
  raw: { ...exact('raw', ['bin', 'raw'], 'application/octet-stream'), length: pixelBytes, write: writeRaw },
  jpg: lossy('jpg', ['jpg', 'jpeg'], 'image/jpeg'),
  webp: lossy('webp', ['webp'], 'image/webp'),
}

/** The names of the output formats, in the table's order. */
export const OUTPUT_FORMAT_NAMES = Object.keys(OUTPUT_FORMATS) as OutputFormat[]

/** The table row of `name`; InvalidArgumentError for an unknown one. */
export function outputFormat(name: string): OutputFormatSpec {
  const spec = Object.hasOwn(OUTPUT_FORMATS, name) ? OUTPUT_FORMATS[name as OutputFormat] : undefined
  if (spec === undefined) throw new InvalidArgumentError(`Unknown output format ${name}; expected one of ${OUTPUT_FORMAT_NAMES.join(', ')}`)
  return spec
}

/** The format whose extensions include `extension` (no dot; case-insensitive), or undefined. */
export function formatOfExtension(extension: string): OutputFormatSpec | undefined {
  const ext = extension.toLowerCase()
  return Object.values(OUTPUT_FORMATS).find((spec) => spec.extensions.includes(ext))
}

/** The output format a file name's extension implies (case-insensitive), or undefined. */
export function extensionFormat(path: string): OutputFormat | undefined {
  const ext = extname(path)
  return ext === '' ? undefined : formatOfExtension(ext.slice(1))?.name
}

/** `compression` checked against what `spec` takes, or its default; InvalidArgumentError if it takes another. */
export function outputCompression(spec: OutputFormatSpec, compression?: TiffCompression): TiffCompression {
  if (spec.compressions.length === 0) return 'none'
  if (compression === undefined) return spec.compressions[0]!
  if (!spec.compressions.includes(compression)) {
    const choices = `${spec.compressions.slice(0, -1).join(', ')} or ${spec.compressions.at(-1)}`
    throw new InvalidArgumentError(`${spec.name.toUpperCase()} compression must be ${choices}, not ${compression}`)
  }
  return compression
}
