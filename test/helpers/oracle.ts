/**
 * Independent oracles for tests: synthetic images with known pixels, the naive crop and the
 * naive pyramid halving straight from the spec's definitions, and a plain PAM writer.
 */
import { writeFile } from 'node:fs/promises'
import type { Region } from '../../src/format/interface.js'

/** An image held whole in memory: samples interleaved, 16-bit little-endian. */
export interface TestImage {
  readonly width: number
  readonly height: number
  readonly channels: number
  readonly bits: 8 | 16
  readonly data: Uint8Array
}

/** A deterministic image: gradients plus hashed noise, so every tile differs. */
export function makeImage(width: number, height: number, channels: number, bits: 8 | 16, seed = 1): TestImage {
  const count = width * height * channels
  const max = bits === 8 ? 255 : 65535
  const samples = bits === 8 ? new Uint8Array(count) : new Uint16Array(count)
  let i = 0
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < channels; c++) {
        const noise = Math.imul(((x + 1) * 73856093) ^ ((y + 1) * 19349663) ^ ((c + seed) * 83492791), 2654435761) >>> 0
        const gradient = ((x * (c + 1) * 7 + y * 3) / (width + height)) * max
        samples[i++] = (Math.floor(gradient) + (noise % 64)) % (max + 1)
      }
    }
  }
  return { width, height, channels, bits, data: new Uint8Array(samples.buffer) }
}

/** The region's samples, copied pixel by pixel. */
export function naiveCrop(image: TestImage, region: Region): Uint8Array {
  const pixel = image.channels * (image.bits / 8)
  const out = new Uint8Array(region.width * region.height * pixel)
  let o = 0
  for (let y = region.y; y < region.y + region.height; y++) {
    for (let x = region.x; x < region.x + region.width; x++) {
      const at = (y * image.width + x) * pixel
      for (let b = 0; b < pixel; b++) out[o++] = image.data[at + b]!
    }
  }
  return out
}

/** The next pyramid level by spec/format.md's definition, one pixel at a time. */
export function naiveHalve(image: TestImage): TestImage {
  const width = Math.ceil(image.width / 2)
  const height = Math.ceil(image.height / 2)
  const src = image.bits === 8 ? image.data : new Uint16Array(image.data.buffer, image.data.byteOffset, image.data.length / 2)
  const out = image.bits === 8 ? new Uint8Array(width * height * image.channels) : new Uint16Array(width * height * image.channels)
  let o = 0
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < image.channels; c++) {
        let sum = 0
        let n = 0
        for (const [dx, dy] of [
          [0, 0],
          [1, 0],
          [0, 1],
          [1, 1],
        ] as const) {
          const sx = 2 * x + dx
          const sy = 2 * y + dy
          if (sx < image.width && sy < image.height) {
            sum += src[(sy * image.width + sx) * image.channels + c]!
            n++
          }
        }
        out[o++] = Math.floor((sum + n / 2) / n)
      }
    }
  }
  return { width, height, channels: image.channels, bits: image.bits, data: new Uint8Array(out.buffer) }
}

const TUPLTYPES = ['GRAYSCALE', 'GRAYSCALE_ALPHA', 'RGB', 'RGB_ALPHA']

/** Writes a PAM (P7) file; 16-bit samples big-endian as Netpbm requires. */
export async function writePam(path: string, image: TestImage): Promise<void> {
  const header = `P7\nWIDTH ${image.width}\nHEIGHT ${image.height}\nDEPTH ${image.channels}\nMAXVAL ${image.bits === 8 ? 255 : 65535}\nTUPLTYPE ${TUPLTYPES[image.channels - 1]}\nENDHDR\n`
  const body = Buffer.from(image.data)
  if (image.bits === 16) body.swap16()
  await writeFile(path, Buffer.concat([Buffer.from(header, 'latin1'), body]))
}
