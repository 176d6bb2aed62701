/**
 * Deterministic test images and band streams for the writer tests: a gradient with seeded
 * noise (so compressors and predictors see both smooth runs and entropy, and 16-bit samples
 * use both bytes, which catches byte-order mistakes).
 */
import { writeFile } from 'node:fs/promises'
import { expect } from 'vitest'
import type { Band, BitDepth, ColorModel, PixelFormat } from '../../../src/format/interface.js'
import { pixelFormat } from '../../../src/format/pixel.js'
import { mulberry32 as random } from '../../helpers/random.js'
import type { DecodedImage } from '../../helpers/readers.js'

export const MODELS: readonly ColorModel[] = ['gray', 'graya', 'rgb', 'rgba']
export const DEPTHS: readonly BitDepth[] = [8, 16]
/** Every pixel format Tessera stores. */
export const FORMATS: readonly PixelFormat[] = MODELS.flatMap((m) => DEPTHS.map((d) => pixelFormat(m, d)))

/** A small seeded PRNG (mulberry32): same seed, same sequence, on every machine. */
export { random }

/** A `width` x `height` image of `format`: interleaved, 16-bit little-endian. */
export function makeImage(width: number, height: number, format: PixelFormat, seed = 1): Uint8Array {
  const next = random(seed)
  const samples = width * height * format.channels
  const max = format.bitsPerSample === 8 ? 0xff : 0xffff
  const values = format.bitsPerSample === 8 ? new Uint8Array(samples) : new Uint16Array(samples)
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < format.channels; c++) {
        const i = (y * width + x) * format.channels + c
        // A sawtooth gradient kept away from 0 and max plus noise, and a few extremes, which a
        // wrong byte order or sign would break. The origin is never extreme: ImageMagick (vips'
        // PAM loader) reads a 16-bit file whose samples are all multiples of 257 as 8-bit.
        const gradient = (((x * (c + 1) * 7 + y * 5) / (width + height)) % 1) * 0.8 + 0.1
        const noise = (next() - 0.5) * 0.1
        const extreme = (x + y + c) % 17 === 16 ? max : (x + y + c) % 19 === 18 ? 0 : undefined
        values[i] = extreme ?? Math.round((gradient + noise) * max)
      }
    }
  }
  return new Uint8Array(values.buffer)
}

/** Band heights summing to `height`: seeded, uneven (1 to 40 rows), first and last often short. */
export function unevenHeights(height: number, seed = 7): number[] {
  const next = random(seed)
  const heights: number[] = []
  for (let done = 0; done < height; ) {
    const h = Math.min(height - done, 1 + Math.floor(next() * 40))
    heights.push(h)
    done += h
  }
  return heights
}

/** The image as bands of the given heights (copies, as a real producer hands over fresh buffers). */
export async function* toBands(image: Uint8Array, width: number, format: PixelFormat, heights: readonly number[]): AsyncGenerator<Band> {
  const stride = width * format.channels * (format.bitsPerSample / 8)
  let y = 0
  for (const height of heights) {
    yield { y, height, data: image.slice(y * stride, (y + height) * stride) }
    y += height
  }
}

/** Concatenates an output stream. */
export async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = []
  for await (const chunk of chunks) parts.push(chunk)
  return new Uint8Array(Buffer.concat(parts))
}

/** Writes an output stream to `path`. */
export async function writeTo(path: string, chunks: AsyncIterable<Uint8Array>): Promise<void> {
  await writeFile(path, await collect(chunks))
}

/** A short label for a format, for file names and test titles. */
export function label(format: PixelFormat): string {
  return `${format.colorModel}${format.bitsPerSample}`
}

/** Asserts that a reader decoded exactly `image` (`width` x `height` of `format`). */
export function expectPixels(decoded: DecodedImage, image: Uint8Array, width: number, height: number, format: PixelFormat): void {
  expect({ width: decoded.width, height: decoded.height, channels: decoded.channels, bits: decoded.bitsPerSample }).toEqual({
    width,
    height,
    channels: format.channels,
    bits: format.bitsPerSample,
  })
  const a = Buffer.from(decoded.data.buffer, decoded.data.byteOffset, decoded.data.length)
  const b = Buffer.from(image.buffer, image.byteOffset, image.length)
  if (!a.equals(b)) {
    let i = 0
    while (i < Math.min(a.length, b.length) && a[i] === b[i]) i++
    expect.fail(`pixels differ at byte ${i} of ${b.length} (decoded ${a.length} bytes): got ${a[i]}, expected ${b[i]}`)
  }
}
