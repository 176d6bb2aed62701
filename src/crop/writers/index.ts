/** The crop output writers: each turns bands of pixels into one output file as byte chunks. */
export { crc32 } from './crc32.js'
export {
  COMPRESSIONS,
  extensionFormat,
  formatOfExtension,
  OUTPUT_FORMAT_NAMES,
  OUTPUT_FORMATS,
  type OutputFormatSpec,
  outputCompression,
  outputFormat,
  type WriteOptions,
} from './formats.js'
export type {
  OutputFormat,
  OutputInit,
  PngOptions,
  PnmKind,
  RasterInit,
  Segment,
  TiffBandsOptions,
  TiffCompression,
  TiffInit,
  TiffLayoutOptions,
  TiffPayloadsOptions,
} from './interface.js'
export { writeLossy } from './lossy.js'
export { npyHeader, writeNpy } from './npy.js'
export { writePng } from './png.js'
export { pnmHeader, writePnm } from './pnm.js'
export { writeRaw } from './raw.js'
export { tiffSegments, writeTiffFromBands, writeTiffFromPayloads } from './tiff.js'
export { tiffGrid, tiffHead } from './tiff-layout.js'
