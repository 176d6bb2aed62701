/**
 * The importer's resource limits (spec/format.md §11, spec/errors.md ERR_LIMIT): what a small
 * hostile input may cost in pixels, memory, temporary disk and per-chunk work before it is
 * refused, from its header, with ERR_LIMIT.
 */

/** Default largest image accepted, in pixels (a decompression-bomb guard; raise per call). */
export const DEFAULT_MAX_PIXELS = 2 ** 31

/**
 * Default pixel limit for inputs from untrusted users (HTTP uploads): 2^28 pixels, a 16384 x
 * 16384 image, at most 2 GiB decoded (16-bit RGBA).
 */
export const DEFAULT_UPLOAD_MAX_PIXELS = 2 ** 28

/**
 * Default largest buffer an import may hold at once (`maxDecodeBytes`): the importer's tile rows
 * (one per pyramid level), a decoded row of TIFF strips or tiles, or a whole image for the
 * loaders that cannot stream (interlaced PNG, progressive JPEG, WebP, GIF, HEIF/AVIF). 128 MiB
 * keeps an import near 256 MiB of memory and still takes a 40-megapixel interlaced RGB PNG, a
 * 24-megapixel progressive JPEG, or an 8-bit RGB image 170,000 pixels wide (85,000 with its
 * pyramid) at the default tile size.
 */
export const DEFAULT_MAX_DECODE_BYTES = 128 * 2 ** 20

/**
 * Free space left on the temporary directory's file system after a decode to a temporary file
 * (the store, often on the same disk, still needs room for the compressed tiles).
 */
export const TEMP_FREE_MARGIN_BYTES = 256 * 2 ** 20

/** Temporary files older than this whose process is gone are removed (decoders/sharp.ts, src/temp.ts). */
export { STALE_TEMP_MS } from '../temp.js'

/**
 * Strips or tiles are charged per chunk: more than MANY_CHUNKS of them averaging fewer than
 * MIN_CHUNK_PIXELS pixels each (e.g. 2 million 1x1 tiles) are refused from the header, before
 * any is read: each costs a read and a decoder call whatever its size.
 */
export const MANY_CHUNKS = 16_384
export const MIN_CHUNK_PIXELS = 256
