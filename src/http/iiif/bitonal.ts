/**
 * The `bitonal` quality (IIIF Image API 3.0 §4.4: "each pixel is either black or white"): a
 * fixed threshold at half scale (128 of 8 bits, 32768 of 16) on the `gray` quality's luma,
 * after compositing any alpha over white (a transparent pixel is paper, not ink). Encoded at one bit per pixel where the format has it:
 * PNG bit depth 1 (PNG §11.2.2, colour type 0) and TIFF bilevel (TIFF 6.0 §3, BitsPerSample 1,
 * PhotometricInterpretation 1, Deflate). jpg and webp have no 1-bit mode: 8-bit gray, 0 or 255.
 */
import { deflateSync } from 'node:zlib'
import type { Band } from '../../image.js'
import type { Raster } from './raster.js'

/**
 * One band of any pixel format (1 to 4 channels, 8 or 16 bits) to 8-bit gray holding only 0
 * and 255. Luma uses the fixed-point weights of toGray (raster.ts), so that `bitonal` is
 * `gray` thresholded.
 */
export function bitonalBand(band: Band, width: number, channels: number, bitsPerSample: 8 | 16): Band {
  const src = bitsPerSample === 8 ? band.data : new Uint16Array(band.data.buffer, band.data.byteOffset, band.data.byteLength / 2)
  const max = bitsPerSample === 8 ? 255 : 65535
  const threshold = bitsPerSample === 8 ? 128 : 32768
  const pixels = width * band.height
  const out = new Uint8Array(pixels)
  const color = channels >= 3
  const alpha = channels === 2 || channels === 4
  for (let p = 0, s = 0; p < pixels; p++, s += channels) {
    let y = color ? Math.floor((19595 * src[s]! + 38470 * src[s + 1]! + 7471 * src[s + 2]! + 32768) / 65536) : src[s]!
    if (alpha) {
      const a = src[s + channels - 1]!
      y = (y * a + max * (max - a)) / max
    }
    out[p] = y >= threshold ? 255 : 0
  }
  return { y: band.y, height: band.height, data: out }
}

/** Bands converted by bitonalBand. */
export async function* bitonalBands(
  bands: AsyncIterable<Band>,
  width: number,
  channels: number,
  bitsPerSample: 8 | 16,
): AsyncGenerator<Band> {
  for await (const band of bands) yield bitonalBand(band, width, channels, bitsPerSample)
}

/** Rows of an 8-bit 0/255 raster packed 8 pixels a byte, most significant bit first, 1 = white (PNG and TIFF agree). */
function packRows(raster: Raster, filterByte: boolean): Uint8Array {
  const rowBytes = Math.ceil(raster.width / 8)
  const stride = rowBytes + (filterByte ? 1 : 0)
  const out = new Uint8Array(stride * raster.height)
  for (let y = 0; y < raster.height; y++) {
    const row = y * stride + (filterByte ? 1 : 0) // filter type 0 (None): the byte stays 0
    const src = y * raster.width
    for (let x = 0; x < raster.width; x++) {
      if (raster.data[src + x]! !== 0) out[row + (x >> 3)]! |= 0x80 >> (x & 7)
    }
  }
  return out
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    table[n] = c >>> 0
  }
  return table
})()

/** CRC-32 of a PNG chunk's type and data (PNG §5.5). */
function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length)
  const view = new DataView(out.buffer)
  view.setUint32(0, data.length)
  out.set(Buffer.from(type, 'latin1'), 4)
  out.set(data, 8)
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)))
  return out
}

/** A 1-bit grayscale PNG of an 8-bit 0/255 raster. */
export function encodeBilevelPng(raster: Raster): Uint8Array[] {
  const header = new Uint8Array(13)
  const view = new DataView(header.buffer)
  view.setUint32(0, raster.width)
  view.setUint32(4, raster.height)
  header[8] = 1 // bit depth
  header[9] = 0 // colour type: greyscale
  // compression 0, filter method 0, interlace none: bytes 10-12 stay 0.
  const signature = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
  const idat = deflateSync(packRows(raster, true))
  return [signature, chunk('IHDR', header), chunk('IDAT', idat), chunk('IEND', new Uint8Array(0))]
}

/** A bilevel TIFF (one Deflate strip, little-endian) of an 8-bit 0/255 raster. */
export function encodeBilevelTiff(raster: Raster): Uint8Array[] {
  const strip = deflateSync(packRows(raster, false))
  // Tag, type (3 SHORT, 4 LONG), value; in ascending tag order (TIFF 6.0 §2).
  const entries: Array<[number, number, number]> = [
    [256, 4, raster.width], // ImageWidth
    [257, 4, raster.height], // ImageLength
    [258, 3, 1], // BitsPerSample
    [259, 3, 8], // Compression: Deflate (Adobe)
    [262, 3, 1], // PhotometricInterpretation: BlackIsZero
    [273, 4, 0], // StripOffsets (set below)
    [277, 3, 1], // SamplesPerPixel
    [278, 4, raster.height], // RowsPerStrip
    [279, 4, strip.length], // StripByteCounts
  ]
  const ifdOffset = 8
  const ifdBytes = 2 + entries.length * 12 + 4
  const stripOffset = ifdOffset + ifdBytes
  entries[5]![2] = stripOffset
  const head = new Uint8Array(stripOffset)
  const view = new DataView(head.buffer)
  head.set([0x49, 0x49, 42, 0]) // "II", 42
  view.setUint32(4, ifdOffset, true)
  view.setUint16(ifdOffset, entries.length, true)
  entries.forEach(([tag, type, value], i) => {
    const at = ifdOffset + 2 + i * 12
    view.setUint16(at, tag, true)
    view.setUint16(at + 2, type, true)
    view.setUint32(at + 4, 1, true)
    if (type === 3) view.setUint16(at + 8, value, true)
    else view.setUint32(at + 8, value, true)
  })
  // The next-IFD offset (0: none) is already 0.
  return [head, strip]
}
