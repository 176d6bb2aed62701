/**
 * Edge validation shared by every writer: the init is checked before anything is yielded,
 * and each band is checked as it arrives, so a bad producer fails loudly instead of writing
 * a file whose header promises pixels that never came.
 */
import { InvalidArgumentError } from '../../errors.js'
import type { Band } from '../../format/interface.js'
import { bytesPerPixel, pixelFormat } from '../../format/pixel.js'
import type { RasterInit } from './interface.js'

/** Throws InvalidArgumentError unless `init` has positive integer dimensions and a valid pixel format. */
export function checkInit(init: RasterInit): void {
  for (const key of ['width', 'height'] as const) {
    const value = init[key]
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new InvalidArgumentError(`Expected positive integer for ${key} but received ${String(value)}`)
    }
  }
  if (typeof init.format !== 'object' || init.format === null) throw new InvalidArgumentError('Expected a pixel format')
  const { colorModel, channels, bitsPerSample } = init.format
  if (pixelFormat(colorModel, bitsPerSample).channels !== channels) {
    throw new InvalidArgumentError(`Colour model ${colorModel} does not have ${String(channels)} channels`)
  }
  if (init.icc !== undefined && !(init.icc instanceof Uint8Array)) {
    throw new InvalidArgumentError('Expected a Uint8Array for icc')
  }
}

/** Bytes of one row of the region. */
export function rowBytes(init: RasterInit): number {
  return init.width * bytesPerPixel(init.format)
}

/**
 * Passes `bands` through, checking that they are contiguous from row 0, hold exactly
 * `height * rowBytes` bytes each and add up to `init.height` rows; throws RangeError otherwise
 * (a short input is detected when it ends).
 */
export async function* checkedBands(init: RasterInit, bands: AsyncIterable<Band>): AsyncGenerator<Band, void, undefined> {
  const stride = rowBytes(init)
  let next = 0
  for await (const band of bands) {
    if (band.y !== next) throw new RangeError(`Expected a band starting at row ${next} but received row ${band.y}`)
    if (!Number.isSafeInteger(band.height) || band.height < 0 || next + band.height > init.height) {
      throw new RangeError(`Band of ${band.height} rows at row ${band.y} does not fit in ${init.height} rows`)
    }
    if (band.data.length !== band.height * stride) {
      throw new RangeError(`Expected ${band.height * stride} bytes for ${band.height} rows but received ${band.data.length}`)
    }
    next += band.height
    if (band.height > 0) yield band
  }
  if (next !== init.height) throw new RangeError(`Expected ${init.height} rows but the bands ended after ${next}`)
}

/** A big-endian copy of little-endian 16-bit samples (PNG and Netpbm store 16-bit big-endian). */
export function swap16(data: Uint8Array): Uint8Array {
  // slice() copies into a fresh, aligned buffer, so a Uint16Array view is always possible.
  const out = data.slice()
  const samples = new Uint16Array(out.buffer, 0, out.length >> 1)
  for (let i = 0; i < samples.length; i++) {
    const v = samples[i]!
    samples[i] = (v >>> 8) | ((v & 0xff) << 8)
  }
  return out
}
