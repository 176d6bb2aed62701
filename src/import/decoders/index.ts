/**
 * Opens an input image for the importer: sniffs the magic bytes and picks a decoder.
 * PNM (P5/P6/P7) and streamable TIFFs are read by hand, by position; everything else goes
 * through sharp (a temporary uncompressed copy). Dimensions are checked against `maxPixels`
 * from the header, before any pixel is decoded.
 */
import { type FileHandle, open } from 'node:fs/promises'
import { InvalidArgumentError, NotFoundError, UnsupportedFormatError } from '../../errors.js'
import type { DecodedImage, DecodeOptions } from './interface.js'
import { isPnm, openPnm } from './pnm.js'
import { checkDimensions, readAt } from './rows.js'
import { openSharp } from './sharp.js'
import { isTiff, readTiffHeader, TiffImage, tiffRoute } from './tiff.js'

export type { BandOptions, DecodedImage, DecodeOptions } from './interface.js'

/** Bytes read to sniff the format. */
const SNIFF_BYTES = 16

/** Opens `path` for decoding band by band. The caller must `close()` the result. */
export async function openDecoder(path: string, options: DecodeOptions): Promise<DecodedImage> {
  const { maxPixels, tmpDir } = options
  if (typeof maxPixels !== 'number' || !(Number.isSafeInteger(maxPixels) || maxPixels === Number.POSITIVE_INFINITY) || maxPixels < 1) {
    throw new InvalidArgumentError(`Expected positive integer for maxPixels but received ${String(maxPixels)} of type ${typeof maxPixels}`)
  }
  if (typeof tmpDir !== 'string' || tmpDir === '') {
    throw new InvalidArgumentError(`Expected non-empty string for tmpDir but received ${String(tmpDir)} of type ${typeof tmpDir}`)
  }
  if (typeof path !== 'string' || path === '') {
    throw new InvalidArgumentError(`Expected non-empty string for path but received ${String(path)} of type ${typeof path}`)
  }
  options.signal?.throwIfAborted()

  const handle = await openInput(path)
  let handedOver = false
  try {
    const stats = await handle.stat()
    if (!stats.isFile()) throw new InvalidArgumentError(`${path} is not a regular file`)
    if (stats.size === 0) throw new UnsupportedFormatError(`${path} is empty`)
    const head = await readAt(handle, 0, Math.min(SNIFF_BYTES, stats.size), 'header')
    if (isPnm(head)) {
      handedOver = true
      return await openPnm(handle, stats.size, options)
    }
    if (isTiff(head)) {
      const header = await readTiffHeader(handle, stats.size)
      checkDimensions(header.width, header.height, maxPixels, 'TIFF')
      const route = tiffRoute(header)
      if (route.stream) {
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

/** Opens the input file, mapping a missing path to NotFoundError. */
async function openInput(path: string): Promise<FileHandle> {
  try {
    return await open(path, 'r')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new NotFoundError(`Input file ${path} does not exist`, { cause: error })
    if (code === 'EISDIR') throw new InvalidArgumentError(`${path} is a directory`)
    throw error
  }
}
