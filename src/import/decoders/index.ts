/**
 * Opens an input image for the importer: sniffs the magic bytes and picks a decoder.
 * PNM (P5/P6/P7) and streamable TIFFs are read by hand, by position; everything else goes
 * through sharp (a temporary uncompressed copy). Dimensions are checked against `maxPixels`
 * from the header, before any pixel is decoded.
 */
import { type FileHandle, open } from 'node:fs/promises'
import { InvalidArgumentError, NotFoundError, UnsupportedFormatError } from '../../errors.js'
import { DEFAULT_MAX_DECODE_BYTES } from '../limits.js'
import type { DecodedImage, DecodeOptions } from './interface.js'
import { isPnm, openPnm } from './pnm.js'
import { checkDimensions, readAt } from './rows.js'
import { openSharp } from './sharp.js'
import { isTiff, readTiffHeader, TiffImage, tiffRoute } from './tiff.js'

export type { BandOptions, DecodedHeader, DecodedImage, DecodeOptions } from './interface.js'

/** Bytes read to sniff the format. */
const SNIFF_BYTES = 16

/**
 * Opens `path` for decoding band by band. The caller must `close()` the result. A path may be
 * given as bytes, for file names that are not valid UTF-8 (as `readdir(dir, { encoding:
 * 'buffer' })` returns them).
 */
export async function openDecoder(path: string | Uint8Array, options: DecodeOptions): Promise<DecodedImage> {
  const { maxPixels, tmpDir } = options
  if (typeof maxPixels !== 'number' || !(Number.isSafeInteger(maxPixels) || maxPixels === Number.POSITIVE_INFINITY) || maxPixels < 1) {
    throw new InvalidArgumentError(`Expected positive integer for maxPixels but received ${String(maxPixels)} of type ${typeof maxPixels}`)
  }
  if (typeof tmpDir !== 'string' || tmpDir === '') {
    throw new InvalidArgumentError(`Expected non-empty string for tmpDir but received ${String(tmpDir)} of type ${typeof tmpDir}`)
  }
  if (!((typeof path === 'string' || path instanceof Uint8Array) && path.length > 0)) {
    throw new InvalidArgumentError(`Expected non-empty string or bytes for path but received ${String(path)} of type ${typeof path}`)
  }
  for (const name of ['maxTempBytes', 'maxDecodeBytes'] as const) {
    const value = options[name]
    if (
      value !== undefined &&
      !(typeof value === 'number' && (Number.isSafeInteger(value) || value === Number.POSITIVE_INFINITY) && value >= 1)
    ) {
      throw new InvalidArgumentError(`Expected positive integer for ${name} but received ${String(value)} of type ${typeof value}`)
    }
  }
  options.signal?.throwIfAborted()

  const handle = await openInput(path)
  let handedOver = false
  try {
    const stats = await handle.stat()
    if (!stats.isFile()) throw new InvalidArgumentError(`${displayPath(path)} is not a regular file`)
    if (stats.size === 0) throw new UnsupportedFormatError(`${displayPath(path)} is empty`)
    const head = await readAt(handle, 0, Math.min(SNIFF_BYTES, stats.size), 'header')
    if (isPnm(head)) {
      handedOver = true
      return await openPnm(handle, stats.size, options)
    }
    if (isTiff(head)) {
      const header = await readTiffHeader(handle, stats.size)
      checkDimensions(header.width, header.height, maxPixels, 'TIFF')
      const route = tiffRoute(header, options.maxDecodeBytes ?? DEFAULT_MAX_DECODE_BYTES)
      if (route.stream) {
        options.accept?.({ width: header.width, height: header.height, format: route.format, icc: header.icc })
        const image = new TiffImage(handle, header, route.format)
        handedOver = true
        return image
      }
      // Not streamable here (LZW, JPEG, planar, palette, ...): libvips decodes it.
    }
    handedOver = true
    await handle.close()
    return await openSharp(path, options, head)
  } finally {
    if (!handedOver) await handle.close()
  }
}

/** A path for messages: bytes that are not UTF-8 show as U+FFFD. */
export function displayPath(path: string | Uint8Array): string {
  return typeof path === 'string' ? path : Buffer.from(path.buffer, path.byteOffset, path.length).toString('utf8')
}

/** Opens the input file, mapping a missing path to NotFoundError. */
async function openInput(path: string | Uint8Array): Promise<FileHandle> {
  try {
    return await open(typeof path === 'string' ? path : Buffer.from(path.buffer, path.byteOffset, path.length), 'r')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new NotFoundError(`Input file ${displayPath(path)} does not exist`, { cause: error })
    if (code === 'EISDIR') throw new InvalidArgumentError(`${displayPath(path)} is a directory`)
    throw error
  }
}
