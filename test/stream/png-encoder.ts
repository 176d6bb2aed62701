/**
 * A small, independent PNG encoder for the stream-cropping tests: every colour type and bit
 * depth (1 to 16), palettes and tRNS, every row filter (cycled, so each unfilter path runs),
 * IDAT split into many small chunks, optional Adam7 flag. Written from the PNG spec
 * (https://www.w3.org/TR/png-3/), sharing no code with src/stream/png.ts.
 */
import { crc32, deflateSync } from 'node:zlib'

/** What to encode: `samples` holds width x height x channels values (palette: indices). */
export interface PngSpec {
  readonly width: number
  readonly height: number
  /** 0 gray, 2 rgb, 3 palette, 4 gray+alpha, 6 rgba. */
  readonly colorType: 0 | 2 | 3 | 4 | 6
  readonly bitDepth: 1 | 2 | 4 | 8 | 16
  readonly samples: ArrayLike<number>
  /** RGB triplets for colour type 3. */
  readonly palette?: ArrayLike<number>
  /** The tRNS chunk's payload as PNG stores it. */
  readonly trns?: Uint8Array
  /** Filter type per row; default: row index mod 5. */
  readonly filter?: (row: number) => number
  /** IDAT data per chunk; default 997 bytes. */
  readonly idatBytes?: number
  readonly interlace?: boolean
  /** Extra ancillary chunks written before IDAT, e.g. [['tEXt', bytes]]. */
  readonly extra?: ReadonlyArray<readonly [string, Uint8Array]>
}

const CHANNELS = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 } as const

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length)
  const view = new DataView(out.buffer)
  view.setUint32(0, data.length)
  const typeAndData = out.subarray(4, 8 + data.length)
  typeAndData.set(Buffer.from(type, 'latin1'))
  typeAndData.set(data, 4)
  view.setUint32(8 + data.length, crc32(typeAndData))
  return out
}

/** The unfiltered bytes of one row, packed as the bit depth requires. */
function packRow(spec: PngSpec, y: number): Uint8Array {
  const channels = CHANNELS[spec.colorType]
  const perRow = spec.width * channels
  const bits = spec.bitDepth
  const out = new Uint8Array(Math.ceil((perRow * bits) / 8))
  for (let i = 0; i < perRow; i++) {
    const v = spec.samples[y * perRow + i]!
    if (bits === 16) {
      out[i * 2] = v >>> 8
      out[i * 2 + 1] = v & 0xff
    } else if (bits === 8) out[i] = v
    else {
      const bit = i * bits
      out[bit >> 3]! |= v << (8 - bits - (bit & 7))
    }
  }
  return out
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c
  const pa = Math.abs(p - a)
  const pb = Math.abs(p - b)
  const pc = Math.abs(p - c)
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c
}

/** Encodes `spec` as a PNG file. */
export function encodePng(spec: PngSpec): Uint8Array {
  const channels = CHANNELS[spec.colorType]
  const bpp = Math.max(1, (channels * spec.bitDepth) >> 3)
  const rows: Uint8Array[] = []
  let previous: Uint8Array = new Uint8Array(Math.ceil((spec.width * channels * spec.bitDepth) / 8))
  for (let y = 0; y < spec.height; y++) {
    const raw = packRow(spec, y)
    const type = spec.filter?.(y) ?? y % 5
    const out = new Uint8Array(raw.length + 1)
    out[0] = type
    for (let i = 0; i < raw.length; i++) {
      const a = i >= bpp ? raw[i - bpp]! : 0
      const b = previous[i]!
      const c = i >= bpp ? previous[i - bpp]! : 0
      const predictor = [0, a, b, (a + b) >> 1, paeth(a, b, c)][type]!
      out[i + 1] = (raw[i]! - predictor) & 0xff
    }
    rows.push(out)
    previous = raw
  }
  const ihdr = new Uint8Array(13)
  const view = new DataView(ihdr.buffer)
  view.setUint32(0, spec.width)
  view.setUint32(4, spec.height)
  ihdr.set([spec.bitDepth, spec.colorType, 0, 0, spec.interlace === true ? 1 : 0], 8)
  const parts: Uint8Array[] = [Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a), chunk('IHDR', ihdr)]
  for (const [type, data] of spec.extra ?? []) parts.push(chunk(type, data))
  if (spec.palette !== undefined) parts.push(chunk('PLTE', Uint8Array.from(spec.palette)))
  if (spec.trns !== undefined) parts.push(chunk('tRNS', spec.trns))
  const data = deflateSync(Buffer.concat(rows))
  const step = spec.idatBytes ?? 997
  for (let at = 0; at < data.length; at += step) parts.push(chunk('IDAT', data.subarray(at, at + step)))
  parts.push(chunk('IEND', new Uint8Array(0)))
  return Buffer.concat(parts)
}
