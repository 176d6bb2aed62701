/**
 * Pixel operations behind IIIF image requests, on interleaved samples (16-bit little-endian):
 * a streaming area-average resampler (memory: one source row and one output row, whatever
 * the scale), mirroring, rotation by multiples of 90 degrees, and conversion to gray.
 */
import type { Band } from '../../image.js'

/** An image held whole in memory (IIIF outputs are bounded by maxArea). */
export interface Raster {
  readonly width: number
  readonly height: number
  readonly channels: number
  readonly bitsPerSample: 8 | 16
  readonly data: Uint8Array
}

/** The source of a resampling: bands of an integer region and the fractional window inside it. */
export interface ResampleInit {
  /** Size of the integer region the bands cover. */
  readonly sourceWidth: number
  readonly sourceHeight: number
  /** The window to map onto the output, in source pixels: [left, right) x [top, bottom). */
  readonly left: number
  readonly top: number
  readonly right: number
  readonly bottom: number
  readonly channels: number
  readonly bitsPerSample: 8 | 16
  readonly width: number
  readonly height: number
}

/** For each output index, the source indices its footprint covers and their weights (summing to 1). */
interface Taps {
  readonly first: Int32Array
  readonly count: Int32Array
  readonly weights: Float64Array
  readonly offsets: Int32Array
}

/**
 * Area-average taps mapping [from, to) of the source onto `n` outputs: output i averages the
 * source over [from + i·step, from + (i+1)·step), each source pixel weighted by the length of
 * its overlap (a box filter when shrinking; when enlarging, a blend of the one or two source
 * pixels under the footprint).
 */
function taps(from: number, to: number, n: number, size: number): Taps {
  const step = (to - from) / n
  const first = new Int32Array(n)
  const count = new Int32Array(n)
  const offsets = new Int32Array(n)
  const weights: number[] = []
  for (let i = 0; i < n; i++) {
    const a = from + i * step
    const b = i === n - 1 ? to : a + step
    const j0 = Math.min(size - 1, Math.floor(a))
    const j1 = Math.max(j0 + 1, Math.min(size, Math.ceil(b)))
    first[i] = j0
    count[i] = j1 - j0
    offsets[i] = weights.length
    let total = 0
    const start = weights.length
    for (let j = j0; j < j1; j++) {
      const w = Math.max(0, Math.min(b, j + 1) - Math.max(a, j))
      weights.push(w)
      total += w
    }
    for (let k = start; k < weights.length; k++) weights[k] = total > 0 ? weights[k]! / total : 1 / (j1 - j0)
  }
  return { first, count, weights: Float64Array.from(weights), offsets }
}

function samplesOf(data: Uint8Array, bits: 8 | 16): Uint8Array | Uint16Array {
  return bits === 8 ? data : new Uint16Array(data.buffer, data.byteOffset, data.length / 2)
}

/**
 * Resamples bands of the source region to `init.width` x `init.height`, yielding bands of the
 * output, top to bottom. Rows are read in order and each is used as it arrives: memory is one
 * source band, one horizontally resampled row and one output row of accumulators.
 */
export async function* resampleBands(init: ResampleInit, bands: AsyncIterable<Band>): AsyncGenerator<Band> {
  const { channels: C, bitsPerSample: bits, width: ow, height: oh, sourceWidth: sw } = init
  const max = bits === 8 ? 255 : 65535
  const xs = taps(init.left, init.right, ow, sw)
  const ys = taps(init.top, init.bottom, oh, init.sourceHeight)
  const iterator = bands[Symbol.asyncIterator]()
  let band: { y: number; height: number; samples: Uint8Array | Uint16Array } | undefined
  let rowIndex = -1
  const row = new Float64Array(ow * C)
  const acc = new Float64Array(ow * C)

  /** Loads source row `j` (j never decreases) and resamples it horizontally into `row`. */
  const loadRow = async (j: number): Promise<void> => {
    if (j === rowIndex) return
    while (band === undefined || j >= band.y + band.height) {
      const next = await iterator.next()
      if (next.done) throw new RangeError(`Source ended before row ${j}`)
      band = { y: next.value.y, height: next.value.height, samples: samplesOf(next.value.data, bits) }
    }
    const samples = band.samples
    const base = (j - band.y) * sw * C
    for (let i = 0; i < ow; i++) {
      const first = xs.first[i]!
      const n = xs.count[i]!
      const w0 = xs.offsets[i]!
      for (let c = 0; c < C; c++) {
        let sum = 0
        let at = base + first * C + c
        for (let k = 0; k < n; k++, at += C) sum += samples[at]! * xs.weights[w0 + k]!
        row[i * C + c] = sum
      }
    }
    rowIndex = j
  }

  const outRowBytes = ow * C * (bits / 8)
  const BAND_ROWS = Math.max(1, Math.min(oh, Math.floor((1 << 20) / outRowBytes)))
  let out = new Uint8Array(Math.min(BAND_ROWS, oh) * outRowBytes)
  let outSamples = samplesOf(out, bits)
  let outStart = 0
  let filled = 0
  try {
    for (let r = 0; r < oh; r++) {
      acc.fill(0)
      const first = ys.first[r]!
      const w0 = ys.offsets[r]!
      for (let k = 0; k < ys.count[r]!; k++) {
        await loadRow(first + k)
        const w = ys.weights[w0 + k]!
        for (let i = 0; i < acc.length; i++) acc[i]! += row[i]! * w
      }
      const base = filled * ow * C
      for (let i = 0; i < acc.length; i++) {
        // Weights are normalized, so a weighted average never leaves [0, max]; min guards rounding.
        outSamples[base + i] = Math.min(max, Math.round(acc[i]!))
      }
      filled++
      if (filled === out.length / outRowBytes || r === oh - 1) {
        yield { y: outStart, height: filled, data: out.subarray(0, filled * outRowBytes) }
        outStart += filled
        filled = 0
        // A yielded band belongs to the consumer: the next rows go to a fresh buffer.
        out = new Uint8Array(Math.min(BAND_ROWS, oh - outStart) * outRowBytes || outRowBytes)
        outSamples = samplesOf(out, bits)
      }
    }
  } finally {
    await iterator.return?.()
  }
}

/** Collects bands of a `width` x `height` image into one raster. */
export async function collect(bands: AsyncIterable<Band>, shape: Omit<Raster, 'data'>, signal?: AbortSignal): Promise<Raster> {
  const rowBytes = shape.width * shape.channels * (shape.bitsPerSample / 8)
  const data = new Uint8Array(rowBytes * shape.height)
  for await (const band of bands) {
    signal?.throwIfAborted()
    data.set(band.data, band.y * rowBytes)
  }
  return { ...shape, data }
}

/**
 * Gray from RGB or RGBA (alpha kept): ITU-R BT.601 luma with the fixed-point weights PIL uses
 * for its "L" mode, Y = (19595 R + 38470 G + 7471 B + 32768) >> 16. Gray inputs pass through.
 */
export function toGray(raster: Raster): Raster {
  if (raster.channels < 3) return raster
  const alpha = raster.channels === 4
  const out = raster.channels === 4 ? 2 : 1
  const src = samplesOf(raster.data, raster.bitsPerSample)
  const data = new Uint8Array(raster.width * raster.height * out * (raster.bitsPerSample / 8))
  const dst = samplesOf(data, raster.bitsPerSample)
  const C = raster.channels
  for (let p = 0, s = 0, d = 0; p < raster.width * raster.height; p++, s += C, d += out) {
    // Up to 65535 * 65536: beyond 32-bit integers, so plain arithmetic, not shifts.
    dst[d] = Math.floor((19595 * src[s]! + 38470 * src[s + 1]! + 7471 * src[s + 2]! + 32768) / 65536)
    if (alpha) dst[d + 1] = src[s + 3]!
  }
  return { ...raster, channels: out, data }
}

/**
 * Mirrors (reflection on the vertical axis, first) and rotates clockwise by `degrees`, as
 * IIIF Image API 3.0 §4.3 orders them.
 */
export function orient(raster: Raster, mirror: boolean, degrees: 0 | 90 | 180 | 270): Raster {
  if (!mirror && degrees === 0) return raster
  const { width: w, height: h } = raster
  const P = raster.channels * (raster.bitsPerSample / 8)
  const quarter = degrees === 90 || degrees === 270
  const ow = quarter ? h : w
  const oh = quarter ? w : h
  const data = new Uint8Array(raster.data.length)
  const src = raster.data
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      // (sx, sy): the pixel of the mirrored image that lands at (x, y) after the rotation.
      let sx: number
      let sy: number
      if (degrees === 0) [sx, sy] = [x, y]
      else if (degrees === 90) [sx, sy] = [y, h - 1 - x]
      else if (degrees === 180) [sx, sy] = [w - 1 - x, h - 1 - y]
      else [sx, sy] = [w - 1 - y, x]
      if (mirror) sx = w - 1 - sx
      const from = (sy * w + sx) * P
      const to = (y * ow + x) * P
      for (let b = 0; b < P; b++) data[to + b] = src[from + b]!
    }
  }
  return { ...raster, width: ow, height: oh, data }
}

/** The raster as bands of at most `rows` rows (views, not copies). */
export async function* rasterBands(raster: Raster, rows = 64): AsyncGenerator<Band> {
  const rowBytes = raster.width * raster.channels * (raster.bitsPerSample / 8)
  for (let y = 0; y < raster.height; y += rows) {
    const height = Math.min(rows, raster.height - y)
    yield { y, height, data: raster.data.subarray(y * rowBytes, (y + height) * rowBytes) }
  }
}
