/**
 * JPEG and WebP output, for browsers: 8-bit approximations of the pixels, encoded by sharp
 * (libvips, through src/codecs/sharp.ts, loaded only when one of these is written). The
 * encoders need the whole raster, so the bands are gathered first (8-bit, `width·height·C`
 * bytes): callers bound the size (the HTTP server by its output limits). No ICC profile.
 */
import { InvalidArgumentError } from '../../errors.js'
import type { Band } from '../../format/interface.js'
import { checkedBands, checkInit } from './bands.js'
import type { RasterInit } from './interface.js'

/** Quality of both encoders (JPEG 4:2:0 chroma; WebP lossy with alpha). */
const QUALITY = 90
/** JPEG's largest dimension (libjpeg's JPEG_MAX_DIMENSION) and WebP's (VP8's 14-bit sizes). */
const MAX_DIMENSION = { jpg: 65_500, webp: 16_383 } as const

/**
 * Writes a JPEG (alpha dropped, not composited) or a WebP (alpha kept) as one chunk, with
 * 16-bit samples rounded to 8 bits (v / 257). Throws InvalidArgumentError at call time for a
 * bad init or a size the format cannot hold; the iterable throws RangeError for bad bands.
 */
export function writeLossy(
  init: RasterInit,
  bands: AsyncIterable<Band>,
  kind: 'jpg' | 'webp',
): AsyncGenerator<Uint8Array, void, undefined> {
  checkInit(init)
  const max = MAX_DIMENSION[kind]
  if (init.width > max || init.height > max) {
    throw new InvalidArgumentError(`${kind} is limited to ${max} pixels per side but received ${init.width}x${init.height}`)
  }
  return lossy(init, bands, kind)
}

async function* lossy(init: RasterInit, bands: AsyncIterable<Band>, kind: 'jpg' | 'webp'): AsyncGenerator<Uint8Array, void, undefined> {
  const { width, height } = init
  const { channels, bitsPerSample } = init.format
  // Alpha is the last channel: keeping the first `out` channels drops it.
  const out = kind === 'jpg' && (channels === 2 || channels === 4) ? channels - 1 : channels
  const data = new Uint8Array(width * height * out)
  for await (const band of checkedBands(init, bands)) {
    const src = band.data
    let at = band.y * width * out
    for (let p = 0; p < band.height * width; p++) {
      for (let c = 0; c < out; c++) {
        const s = p * channels + c
        // Little-endian 16-bit samples, read bytewise: a band need not be 2-byte aligned.
        data[at++] = bitsPerSample === 8 ? src[s]! : Math.round((src[2 * s]! | (src[2 * s + 1]! << 8)) / 257)
      }
    }
  }
  const sharp = await import('../../codecs/sharp.js')
  const pixels = { data, width, height, channels: out as 1 | 2 | 3 | 4 }
  yield kind === 'jpg' ? await sharp.encodeJpeg(pixels, { quality: QUALITY }) : await sharp.encodeWebp(pixels, { quality: QUALITY })
}
