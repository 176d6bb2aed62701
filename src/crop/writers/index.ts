/** The crop output writers: each turns bands of pixels into one output file as byte chunks. */
import { extname } from 'node:path'
import type { OutputFormat } from './interface.js'

export { crc32 } from './crc32.js'
export type {
  OutputFormat,
  PngOptions,
  PnmKind,
  RasterInit,
  TiffBandsOptions,
  TiffCompression,
  TiffInit,
  TiffLayoutOptions,
  TiffPayloadsOptions,
} from './interface.js'
export { npyHeader, writeNpy } from './npy.js'
export { writePng } from './png.js'
export { pnmHeader, writePnm } from './pnm.js'
export { writeRaw } from './raw.js'
export { writeTiffFromBands, writeTiffFromPayloads } from './tiff.js'
export { tiffGrid, tiffHead } from './tiff-layout.js'

const EXTENSIONS: Record<string, OutputFormat> = {
  '.tif': 'tiff',
  '.tiff': 'tiff',
  '.png': 'png',
  '.npy': 'npy',
  '.pam': 'pam',
  '.ppm': 'ppm',
  '.pgm': 'pgm',
  '.raw': 'raw',
  '.bin': 'raw',
}

/** The output format a file name's extension implies (case-insensitive), or undefined. */
export function extensionFormat(path: string): OutputFormat | undefined {
  return EXTENSIONS[extname(path).toLowerCase()]
}
