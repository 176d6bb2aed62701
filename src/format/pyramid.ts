/**
 * The pyramid's 2x2 box filter (spec/format.md, Pyramid). Pixel (x, y) of level k+1 is the
 * mean of the pixels (2x..2x+1, 2y..2y+1) of level k that exist (4, 2 at an odd edge, or 1
 * in an odd corner), per sample including alpha, rounded half up: floor((sum + n/2) / n).
 */
import type { Band } from './interface.js'
import { asUint16 } from './predictor.js'

/**
 * Halves a band of `width`-pixel rows. The band must start on an even row and hold an even
 * number of rows unless it is the last band of its level. Returns the band of the next level,
 * written into `target` when given (it must hold the halved rows).
 */
export function halveBand(band: Band, width: number, channels: number, bitsPerSample: 8 | 16, target?: Uint8Array): Band {
  if (band.y % 2 !== 0) throw new RangeError('A band to halve must start on an even row')
  const outWidth = Math.ceil(width / 2)
  const outHeight = Math.ceil(band.height / 2)
  const bytesPerSample = bitsPerSample / 8
  const bytes = outWidth * outHeight * channels * bytesPerSample
  if (target !== undefined && target.length < bytes) throw new RangeError(`A halved band needs ${bytes} bytes`)
  const out = target?.subarray(0, bytes) ?? new Uint8Array(bytes)
  const src = bitsPerSample === 8 ? band.data : asUint16(band.data)
  const dst = bitsPerSample === 8 ? out : asUint16(out)
  const rowSamples = width * channels
  const pairs = width >> 1 // columns with a right neighbour
  for (let oy = 0; oy < outHeight; oy++) {
    const top = 2 * oy * rowSamples
    const hasBottom = 2 * oy + 1 < band.height
    const bottom = hasBottom ? top + rowSamples : top
    let o = oy * outWidth * channels
    for (let ox = 0; ox < pairs; ox++) {
      const a = top + 2 * ox * channels
      const b = bottom + 2 * ox * channels
      for (let c = 0; c < channels; c++) {
        if (hasBottom) dst[o++] = (src[a + c]! + src[a + channels + c]! + src[b + c]! + src[b + channels + c]! + 2) >> 2
        else dst[o++] = (src[a + c]! + src[a + channels + c]! + 1) >> 1
      }
    }
    if (width % 2 === 1) {
      const a = top + (width - 1) * channels
      const b = bottom + (width - 1) * channels
      for (let c = 0; c < channels; c++) dst[o++] = hasBottom ? (src[a + c]! + src[b + c]! + 1) >> 1 : src[a + c]!
    }
  }
  return { y: band.y / 2, height: outHeight, data: out }
}
