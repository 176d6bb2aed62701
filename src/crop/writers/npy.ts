/**
 * NumPy .npy output, format version 1.0:
 * https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
 * The shape is always (height, width, channels), also for one channel, so a reader never has
 * to guess whether a trailing axis was squeezed.
 */
import type { Band } from '../../format/interface.js'
import { checkedBands, checkInit } from './bands.js'
import type { RasterInit } from './interface.js'

/** Data starts at a multiple of this, as numpy's own writer pads (ARRAY_ALIGN in numpy/lib/format.py). */
const ALIGN = 64

/** The .npy header (magic, version, length, padded dict) for `init`. */
export function npyHeader(init: RasterInit): Uint8Array {
  // '|u1' has no byte order; '<u2' is little-endian, as our samples already are.
  const descr = init.format.bitsPerSample === 8 ? '|u1' : '<u2'
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${init.height}, ${init.width}, ${init.format.channels}), }`
  // magic (6) + version (2) + header length (2) + dict + padding spaces + '\n'.
  const unpadded = 10 + dict.length + 1
  const total = Math.ceil(unpadded / ALIGN) * ALIGN
  const text = `${dict}${' '.repeat(total - unpadded)}\n`
  const header = new Uint8Array(total)
  header.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0])
  new DataView(header.buffer).setUint16(8, text.length, true)
  header.set(new TextEncoder().encode(text), 10)
  return header
}

/**
 * Writes a version 1.0 .npy of dtype uint8 or little-endian uint16, C order, shape
 * (height, width, channels). Throws InvalidArgumentError at call time for a bad init; the
 * iterable throws RangeError for bad bands.
 */
export function writeNpy(init: RasterInit, bands: AsyncIterable<Band>): AsyncGenerator<Uint8Array, void, undefined> {
  checkInit(init)
  return npy(init, bands)
}

async function* npy(init: RasterInit, bands: AsyncIterable<Band>): AsyncGenerator<Uint8Array, void, undefined> {
  yield npyHeader(init)
  for await (const band of checkedBands(init, bands)) yield band.data
}
