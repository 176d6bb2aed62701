/**
 * What a response that decodes or encodes pixels costs (spec/http.md §8): the bytes it holds at
 * its peak, reserved from its lane's memory budget before it starts, and the pixels it reads and
 * writes, which choose its lane. Upper bounds computed from the sizes a request names, before
 * any I/O. The lossy encoders' factors were measured: sharp 0.35 (libvips) encoding 4 and 16.7
 * megapixel RGB rasters held, beyond the raster, 2.3-2.5 times the raster for JPEG and 7.4-7.8
 * times for WebP (whose libvips saver goes through libwebp's animation encoder, which keeps
 * several ARGB copies of the frame).
 */
import type { Cost } from './context.js'

const KiB = 1024
const MiB = 1024 * KiB

/** Per response: request and response objects, socket and stream buffers, zlib's state. */
export const RESPONSE_BYTES = 512 * KiB
/** What a re-cut compressed TIFF holds in memory before it spools to a file (src/crop/writers/tiff.ts). */
const TIFF_SPOOL_BYTES = 64 * MiB
/** Memory of the lossy writers per byte of the 8-bit raster they gather, that raster included (measured, above). */
const LOSSY_FACTOR = { jpg: 3.5, webp: 8.5 } as const

/** Samples per pixel and their depth. */
export interface PixelShape {
  readonly channels: number
  readonly bitsPerSample: 8 | 16
}

/** Bytes per pixel of `shape`. */
function bytesPerPixel(shape: PixelShape): number {
  return shape.channels * (shape.bitsPerSample / 8)
}

/**
 * Bytes a writer holds beyond the bands it is given, for `pixels` pixels of `shape` in `format`
 * (a name of the output table, or a IIIF extension): jpg and webp gather an 8-bit raster for
 * sharp (jpg without alpha); a compressed TIFF spools its tiles (in memory up to 64 MiB); png,
 * uncompressed TIFF and the raw formats stream.
 */
export function writerBytes(format: string, pixels: number, shape: PixelShape, compression?: string): number {
  const { channels } = shape
  if (format === 'jpg') return Math.ceil(LOSSY_FACTOR.jpg * pixels * (channels === 2 || channels === 4 ? channels - 1 : channels))
  if (format === 'webp') return Math.ceil(LOSSY_FACTOR.webp * pixels * channels)
  if (format === 'png') return MiB
  if ((format === 'tiff' || format === 'tif') && compression !== 'none') {
    return Math.min(TIFF_SPOOL_BYTES, Math.ceil(1.01 * pixels * bytesPerPixel(shape)) + 64 * KiB)
  }
  return 0
}

/**
 * Bytes of reading `width` columns of a level band by band: the band being filled (at most a
 * tile row, `tileSize` rows) and the compressed payloads of its tiles (at most a raw tile each).
 */
export function readBytes(width: number, height: number, tileSize: number, shape: PixelShape): number {
  const bpp = bytesPerPixel(shape)
  const band = Math.min(height, tileSize) * width * bpp
  const payloads = tileSize * (width + 2 * tileSize) * bpp
  return band + payloads
}

/** A crop or export streamed band by band (spec/http.md §5.2): the read, one band held by the writer, the writer's own memory. */
export function cropCost(crop: {
  readonly width: number
  readonly height: number
  readonly tileSize: number
  readonly shape: PixelShape
  readonly format: string
  readonly compression?: string
}): Cost {
  const { width, height, tileSize, shape } = crop
  const band = Math.min(height, tileSize) * width * bytesPerPixel(shape)
  const memory =
    RESPONSE_BYTES + readBytes(width, height, tileSize, shape) + band + writerBytes(crop.format, width * height, shape, crop.compression)
  return { memory, pixels: width * height }
}
