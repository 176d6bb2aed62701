/**
 * Netpbm output: PAM (P7) for any pixel format, PPM (P6) for rgb, PGM (P5) for gray.
 * Formats: https://netpbm.sourceforge.net/doc/pam.html, ppm.html, pgm.html. Netpbm samples
 * wider than 8 bits are big-endian, so 16-bit bands are byte-swapped on the way out.
 */
import { InvalidArgumentError } from '../../errors.js'
import type { Band, ColorModel } from '../../format/interface.js'
import { checkedBands, checkInit, swap16 } from './bands.js'
import type { PnmKind, RasterInit } from './interface.js'

const TUPLTYPE: Record<ColorModel, string> = {
  gray: 'GRAYSCALE',
  graya: 'GRAYSCALE_ALPHA',
  rgb: 'RGB',
  rgba: 'RGB_ALPHA',
}

/** The only colour model PPM and PGM can carry; PAM carries all. */
const ONLY_MODEL: Partial<Record<PnmKind, ColorModel>> = { ppm: 'rgb', pgm: 'gray' }

/** The Netpbm header of `kind` for `init`; throws InvalidArgumentError if `kind` cannot hold the format. */
export function pnmHeader(init: RasterInit, kind: PnmKind): Uint8Array {
  const { width, height, format } = init
  const maxval = format.bitsPerSample === 8 ? 255 : 65535
  let text: string
  if (kind === 'pam') {
    text =
      `P7\nWIDTH ${width}\nHEIGHT ${height}\nDEPTH ${format.channels}\nMAXVAL ${maxval}\n` +
      `TUPLTYPE ${TUPLTYPE[format.colorModel]}\nENDHDR\n`
  } else if (kind === 'ppm' || kind === 'pgm') {
    if (format.colorModel !== ONLY_MODEL[kind]) {
      throw new InvalidArgumentError(
        `${kind.toUpperCase()} holds only ${ONLY_MODEL[kind]} pixels but received ${format.colorModel}; use pam`,
      )
    }
    text = `${kind === 'ppm' ? 'P6' : 'P5'}\n${width} ${height}\n${maxval}\n`
  } else {
    throw new InvalidArgumentError(`Expected pam, ppm or pgm but received ${String(kind)}`)
  }
  return new TextEncoder().encode(text)
}

/**
 * Writes a Netpbm file of `kind`. Throws InvalidArgumentError at call time for a bad init or a
 * kind that cannot hold the format (ppm needs rgb, pgm needs gray); the iterable throws
 * RangeError for bad bands.
 */
export function writePnm(init: RasterInit, bands: AsyncIterable<Band>, kind: PnmKind): AsyncGenerator<Uint8Array, void, undefined> {
  checkInit(init)
  return pnm(pnmHeader(init, kind), init, bands)
}

async function* pnm(header: Uint8Array, init: RasterInit, bands: AsyncIterable<Band>): AsyncGenerator<Uint8Array, void, undefined> {
  yield header
  const wide = init.format.bitsPerSample === 16
  for await (const band of checkedBands(init, bands)) yield wide ? swap16(band.data) : band.data
}
