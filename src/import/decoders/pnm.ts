/**
 * Binary Netpbm: PGM (P5), PPM (P6) and PAM (P7), written by hand because libvips does not
 * read PAM. Specs: https://netpbm.sourceforge.net/doc/pgm.html, ppm.html, pam.html.
 * Only MAXVAL 255 and 65535 are accepted: other maxvals would need rescaling to fill 8 or 16
 * bits, and a lossless store should not guess how. Samples are big-endian in the file.
 */
import type { FileHandle } from 'node:fs/promises'
import { CorruptInputError, UnsupportedFormatError } from '../../errors.js'
import type { ColorModel } from '../../format/interface.js'
import { pixelFormat } from '../../format/pixel.js'
import type { DecodedImage, DecodeOptions } from './interface.js'
import { checkDimensions, RowFileImage, readAt } from './rows.js'

/** Longest header read: enough for any sane comment block. */
const MAX_HEADER = 64 * 1024

/** What a PNM header says. */
export interface PnmHeader {
  readonly magic: 'P5' | 'P6' | 'P7'
  readonly width: number
  readonly height: number
  readonly colorModel: ColorModel
  readonly maxval: number
  /** Offset of the first raster byte. */
  readonly dataOffset: number
}

const TUPLTYPES: Record<string, ColorModel> = {
  GRAYSCALE: 'gray',
  GRAYSCALE_ALPHA: 'graya',
  RGB: 'rgb',
  RGB_ALPHA: 'rgba',
}
const BY_DEPTH: readonly ColorModel[] = ['gray', 'graya', 'rgb', 'rgba']

/** Whether the first bytes look like any Netpbm file, P1 to P7 (so it is ours to accept or reject). */
export function isPnm(head: Uint8Array): boolean {
  return head.length >= 3 && head[0] === 0x50 && head[1]! >= 0x31 && head[1]! <= 0x37 && isSpace(head[2]!)
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || c === 0x0b || c === 0x0c
}

/**
 * Parses a PNM header from the first bytes of the file. `complete` says whether `bytes` is the
 * whole file (so running out of bytes means truncation rather than a too-long header).
 */
export function parsePnmHeader(bytes: Uint8Array, complete: boolean): PnmHeader {
  const magic = String.fromCharCode(bytes[0] ?? 0, bytes[1] ?? 0)
  if (magic === 'P1' || magic === 'P2' || magic === 'P3' || magic === 'P4') {
    throw new UnsupportedFormatError(`Netpbm ${magic} (ASCII or 1-bit) is not supported; use binary P5, P6 or P7`)
  }
  if (magic !== 'P5' && magic !== 'P6' && magic !== 'P7') throw new UnsupportedFormatError('Not a binary Netpbm file')
  const short = (): never => {
    throw new CorruptInputError(complete ? 'PNM header is truncated' : `PNM header is longer than ${MAX_HEADER} bytes`)
  }
  return magic === 'P7' ? parsePam(bytes, short) : parsePnm(magic, bytes, short)
}

function parsePnm(magic: 'P5' | 'P6', bytes: Uint8Array, short: () => never): PnmHeader {
  let pos = 2
  // Tokens are separated by whitespace; '#' starts a comment running to the end of the line.
  // The last token (maxval) must end in exactly one whitespace character before the raster.
  const next = (last: boolean): number => {
    for (;;) {
      if (pos >= bytes.length) short()
      const c = bytes[pos]!
      if (c === 0x23) {
        while (pos < bytes.length && bytes[pos] !== 0x0a && bytes[pos] !== 0x0d) pos++
      } else if (isSpace(c)) {
        pos++
      } else break
    }
    let value = 0
    const start = pos
    while (pos < bytes.length && bytes[pos]! >= 0x30 && bytes[pos]! <= 0x39) {
      value = value * 10 + (bytes[pos]! - 0x30)
      pos++
    }
    if (pos >= bytes.length) short()
    const end = bytes[pos]!
    if (pos === start || !(isSpace(end) || (end === 0x23 && !last)) || pos - start > 15) {
      throw new CorruptInputError(`PNM header: expected a number at byte ${start}`)
    }
    return value
  }
  const width = next(false)
  const height = next(false)
  const maxval = next(true)
  // Exactly one whitespace character separates maxval from the raster.
  const dataOffset = pos + 1
  return { magic, width, height, colorModel: magic === 'P5' ? 'gray' : 'rgb', maxval, dataOffset }
}

function parsePam(bytes: Uint8Array, short: () => never): PnmHeader {
  const fields = new Map<string, string>()
  let pos = 2
  for (;;) {
    const end = bytes.indexOf(0x0a, pos)
    if (end < 0) short()
    const line = new TextDecoder('latin1').decode(bytes.subarray(pos, end)).trim()
    pos = end + 1
    if (line === '' || line.startsWith('#')) continue
    if (line === 'ENDHDR') break
    // `s`: a value may hold a CR or other line break inside the line (a fuzzed header did).
    const match = /^(\S+)\s*(.*)$/s.exec(line)!
    const key = match[1]!
    const value = match[2]!
    // Repeated TUPLTYPE lines concatenate (pam.html); other keys may not repeat.
    if (key === 'TUPLTYPE' && fields.has(key)) fields.set(key, `${fields.get(key)} ${value}`)
    else fields.set(key, value)
  }
  const number = (key: string): number => {
    const text = fields.get(key)
    if (text === undefined || !/^\d{1,15}$/.test(text)) throw new CorruptInputError(`PAM header: missing or invalid ${key}`)
    return Number(text)
  }
  const width = number('WIDTH')
  const height = number('HEIGHT')
  const depth = number('DEPTH')
  const maxval = number('MAXVAL')
  const tupltype = fields.get('TUPLTYPE')
  let colorModel: ColorModel | undefined
  if (tupltype === undefined) {
    colorModel = BY_DEPTH[depth - 1]
    if (colorModel === undefined) throw new UnsupportedFormatError(`PAM with DEPTH ${depth} is not supported (1 to 4)`)
  } else {
    colorModel = TUPLTYPES[tupltype]
    if (colorModel === undefined) throw new UnsupportedFormatError(`PAM TUPLTYPE ${tupltype} is not supported`)
    if (BY_DEPTH.indexOf(colorModel) + 1 !== depth) {
      throw new CorruptInputError(`PAM TUPLTYPE ${tupltype} does not match DEPTH ${depth}`)
    }
  }
  return { magic: 'P7', width, height, colorModel, maxval, dataOffset: pos }
}

/** Opens a binary PNM file; takes ownership of `handle` (closed by the image, or on error). */
export async function openPnm(handle: FileHandle, fileSize: number, options: DecodeOptions): Promise<DecodedImage> {
  try {
    const head = await readAt(handle, 0, Math.min(fileSize, MAX_HEADER), 'PNM header')
    const header = parsePnmHeader(head, fileSize <= MAX_HEADER)
    if (header.maxval !== 255 && header.maxval !== 65535) {
      throw new UnsupportedFormatError(`PNM MAXVAL ${header.maxval} is not supported (only 255 and 65535)`)
    }
    checkDimensions(header.width, header.height, options.maxPixels, 'PNM')
    const format = pixelFormat(header.colorModel, header.maxval === 255 ? 8 : 16)
    const rasterBytes = header.width * header.height * format.channels * (format.bitsPerSample / 8)
    if (header.dataOffset + rasterBytes > fileSize) {
      throw new CorruptInputError(`PNM raster needs ${rasterBytes} bytes but the file has ${fileSize - header.dataOffset} (truncated?)`)
    }
    options.accept?.({ width: header.width, height: header.height, format })
    return new RowFileImage({
      handle,
      dataOffset: header.dataOffset,
      width: header.width,
      height: header.height,
      format,
      sourceFormat: 'pnm',
      bigEndian: true,
    })
  } catch (error) {
    await handle.close()
    throw error
  }
}
