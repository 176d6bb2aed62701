/**
 * The one importer of `sharp` (libvips), with its policy: which loaders may run, how strict
 * decoding is, and the JPEG and WebP encoders.
 *
 * Direction: codecs/ sits beside format/, below both import/ (decoders/sharp.ts decodes inputs
 * with `sharpFor`) and crop/ (writers/lossy.ts encodes jpg and webp), which may not import
 * each other; it imports only errors.ts. Import it lazily (`await import`): only those two
 * paths need libvips loaded.
 */
import sharp, { type Metadata, type Sharp, type SharpOptions } from 'sharp'
import { InvalidArgumentError } from '../errors.js'

export type { Metadata, Sharp, SharpOptions }

// Only raster loaders may run, whatever the file claims to be: no SVG/PDF rendering, no
// libvips' own formats, nothing libvips marks untrusted (sharp docs, "block").
sharp.block({ operation: ['VipsForeignLoad'] })
sharp.unblock({
  operation: [
    'VipsForeignLoadPng',
    'VipsForeignLoadJpeg',
    'VipsForeignLoadWebp',
    'VipsForeignLoadTiff',
    'VipsForeignLoadNsgif',
    'VipsForeignLoadHeif',
  ],
})

// libvips' operation cache is never hit here (every decode and encode is of new pixels) and
// only holds memory after the work is done; one thread per operation, since callers already
// run operations side by side (two imports, a server's renders) on two cores.
sharp.cache(false)
sharp.concurrency(1)

/**
 * 'warning' (sharp's default, its strictest level) is the only one that rejects JPEGs with
 * corrupt entropy data ("premature end of data segment"); 'error' and 'truncated' decode them
 * into made-up pixels. All levels but 'none' reject truncated PNG and JPEG. The cost: JPEGs
 * with benign warnings (some phone cameras) are refused as corrupt.
 */
export const FAIL_ON = 'warning' as const

/** A sharp instance with Tessera's defaults (strict failOn, no EXIF rotation); `options` override. */
export function sharpFor(input: string | Uint8Array, options: SharpOptions = {}): Sharp {
  return sharp(input, { failOn: FAIL_ON, autoOrient: false, ...options })
}

/** 8-bit interleaved pixels for the encoders below (gray, gray+alpha, RGB or RGBA). */
export interface RawPixels {
  readonly data: Uint8Array
  readonly width: number
  readonly height: number
  readonly channels: 1 | 2 | 3 | 4
}

function rawInput({ width, height, channels, data }: RawPixels): Sharp {
  if (data.length !== width * height * channels) throw new RangeError(`Expected ${width * height * channels} bytes of pixels`)
  return sharp(Buffer.from(data.buffer, data.byteOffset, data.length), {
    raw: { width, height, channels },
    limitInputPixels: width * height,
  })
}

function bytesOf(buffer: Buffer): Uint8Array {
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.length)
}

/** Encodes pixels as a baseline JPEG (4:2:0 for colour); the caller removes alpha first. */
export async function encodeJpeg(pixels: RawPixels, options: { quality?: number } = {}): Promise<Uint8Array> {
  if (pixels.channels === 2 || pixels.channels === 4) throw new InvalidArgumentError('JPEG has no alpha channel: remove it first')
  return bytesOf(
    await rawInput(pixels)
      .jpeg({ quality: options.quality ?? 90 })
      .toBuffer(),
  )
}

/** Encodes pixels as WebP, lossy (default quality 90) or lossless; alpha is kept. */
export async function encodeWebp(pixels: RawPixels, options: { quality?: number; lossless?: boolean } = {}): Promise<Uint8Array> {
  return bytesOf(
    await rawInput(pixels)
      .webp({ quality: options.quality ?? 90, lossless: options.lossless === true })
      .toBuffer(),
  )
}
