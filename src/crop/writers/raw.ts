/** Raw output: the region's samples exactly as the bands carry them, with no header. */
import type { Band } from '../../format/interface.js'
import { checkedBands, checkInit } from './bands.js'
import type { RasterInit } from './interface.js'

/**
 * Writes interleaved samples, rows top to bottom, 16-bit little-endian, yielding the band
 * buffers themselves. Throws InvalidArgumentError at call time for a bad init; the iterable
 * throws RangeError for bad bands.
 */
export function writeRaw(init: RasterInit, bands: AsyncIterable<Band>): AsyncGenerator<Uint8Array, void, undefined> {
  checkInit(init)
  return raw(init, bands)
}

async function* raw(init: RasterInit, bands: AsyncIterable<Band>): AsyncGenerator<Uint8Array, void, undefined> {
  for await (const band of checkedBands(init, bands)) yield band.data
}
