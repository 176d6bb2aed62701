/**
 * Decoding through sharp (loaded, with its policy, by src/codecs/sharp.ts): every raster
 * format libvips reads that the hand-written decoders do not (PNG, JPEG, WebP, GIF, HEIF/AVIF,
 * TIFFs not streamable by tiff.ts), with bounded memory: one sequential libvips pass writes an
 * uncompressed temporary `.v` file (libvips' native format: a 64-byte header, then plain rows;
 * https://www.libvips.org/API/current/file-format.html), whose rows are then read by position.
 * sharp cannot stream raw rows itself: `.raw().toBuffer()` returns the whole image at once.
 *
 * Pixel fidelity: the embedded ICC profile is returned, never applied (`ignoreIcc`); the
 * output colourspace is set to the input's own interpretation so libvips converts nothing
 * (by default sharp would turn gray into sRGB and 16-bit into 8-bit); EXIF orientation is
 * not applied (pixels are stored as encoded). Anything that would need a colour conversion
 * (CMYK, Lab, float, signed, more than 4 bands, gray below 8 bits) is rejected instead.
 *
 * Hostile input (issue 10): before libvips decodes anything, the header must fit the memory
 * budget of loaders that decode whole (`maxDecodeBytes`), the importer's own checks (`accept`),
 * and the temporary disk (`maxTempBytes`, the temp dir's free space); temporary files a killed
 * process left behind are removed.
 */
import { randomUUID } from 'node:crypto'
import { type FileHandle, open, rm, stat, statfs, symlink } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { type Metadata, sharpFor } from '../../codecs/sharp.js'
import { CorruptInputError, InvalidArgumentError, LimitError, NotFoundError, UnsupportedFormatError } from '../../errors.js'
import type { BitDepth, ColorModel, PixelFormat } from '../../format/interface.js'
import { colorModelOf, pixelFormat } from '../../format/pixel.js'
import { ownedPrefix, removeStaleTemporaries } from '../../temp.js'
import { DEFAULT_MAX_DECODE_BYTES, STALE_TEMP_MS, TEMP_FREE_MARGIN_BYTES } from '../limits.js'
import type { DecodedImage, DecodeOptions } from './interface.js'
import { checkPng } from './png-check.js'
import { checkBandHeight, checkDimensions, RowFileImage, readAt } from './rows.js'

/** sharp's `limitInputPixels` for a `maxPixels` (0 would mean "no limit" to sharp). */
function pixelLimit(maxPixels: number): number {
  return Math.max(1, Math.min(Math.floor(maxPixels), Number.MAX_SAFE_INTEGER))
}

/** Interpretation libvips gives each stored layout; anything else would be converted. */
const SPACES: Record<ColorModel, Record<BitDepth, string>> = {
  gray: { 8: 'b-w', 16: 'grey16' },
  graya: { 8: 'b-w', 16: 'grey16' },
  rgb: { 8: 'srgb', 16: 'rgb16' },
  rgba: { 8: 'srgb', 16: 'rgb16' },
}

/** What `probe` found: the stored layout and the colourspace that keeps it unconverted. */
export interface SharpProbe {
  readonly width: number
  readonly height: number
  readonly format: PixelFormat
  readonly space: string
  readonly sourceFormat: string
  readonly icc?: Uint8Array | undefined
}

/** Reads and validates the header through sharp: dimensions, limits, layout. No pixels. */
export async function probe(
  path: string,
  options: Pick<DecodeOptions, 'maxPixels' | 'maxDecodeBytes'>,
  head?: Uint8Array,
): Promise<SharpProbe> {
  let meta: Metadata
  try {
    meta = await sharpFor(path, { limitInputPixels: pixelLimit(options.maxPixels) }).metadata()
  } catch (error) {
    throw mapSharpError(error, head)
  }
  const { width, height, channels, depth, space } = meta
  checkDimensions(width, height, options.maxPixels, meta.format)
  const bits = depth === 'uchar' ? 8 : depth === 'ushort' ? 16 : undefined
  if (bits === undefined)
    throw new UnsupportedFormatError(`${meta.format} with ${depth} samples is not supported (only 8 or 16-bit unsigned)`)
  // libpng expands gray samples of 1, 2 or 4 bits to 8 by rescaling them (1 -> 255): refused
  // like 1-bit Netpbm (spec/format.md §9). Palette indices of any depth are not samples: the
  // palette's 8-bit colours are. TIFFs are checked from their own header (tiff.ts, tiffRoute).
  if (meta.format !== 'tiff' && !meta.isPalette && meta.bitsPerSample !== undefined && meta.bitsPerSample < 8) {
    throw new UnsupportedFormatError(
      `${meta.format} with ${meta.bitsPerSample}-bit gray samples is not supported (they would be rescaled to 8 bits); convert it to 8-bit first`,
    )
  }
  if (channels < 1 || channels > 4) throw new UnsupportedFormatError(`${meta.format} with ${channels} channels is not supported`)
  const colorModel = colorModelOf(channels)
  const expected = SPACES[colorModel][bits]
  if (space !== expected) {
    throw new UnsupportedFormatError(
      `${meta.format} in colourspace ${space} with ${channels} channels is not supported (it would need converting)`,
    )
  }
  checkWholeDecode(meta, bits, options.maxDecodeBytes ?? DEFAULT_MAX_DECODE_BYTES)
  const icc = meta.icc === undefined ? undefined : new Uint8Array(meta.icc)
  return { width, height, format: pixelFormat(colorModel, bits), space, sourceFormat: meta.format, icc }
}

/**
 * Loaders that cannot stream hold the whole image (or more) in memory however libvips is
 * asked to read it (issue 10, finding 5): an interlaced PNG (Adam7 passes each cover the whole
 * image), a progressive JPEG (libjpeg keeps every DCT coefficient: 2 bytes per sample, chroma
 * subsampled), WebP (libwebp decodes to an RGBA frame, copied), GIF (an RGBA frame) and
 * HEIF/AVIF. Their estimated peak, measured with libvips 8.18, must fit in `maxDecodeBytes`.
 */
function checkWholeDecode(meta: Metadata, bits: number, maxDecodeBytes: number): void {
  const pixels = meta.width * meta.height
  const bytes = meta.channels * (bits / 8)
  let need: number | undefined
  let advice = 'convert it to a baseline PNG or a tiled TIFF'
  if (meta.format === 'png' && meta.isProgressive) {
    need = pixels * bytes
    advice = 'de-interlace it (e.g. `vips copy in.png out.png`, or `pngcrush -i 0`)'
  } else if (meta.format === 'jpeg' && meta.isProgressive) {
    need = pixels * meta.channels * (meta.chromaSubsampling?.startsWith('4:2:0') === true ? 1 : 2)
    advice = 'make it baseline (e.g. `jpegtran -copy all in.jpg > out.jpg`, lossless)'
  } else if (meta.format === 'webp') need = pixels * (4 + meta.channels)
  else if (meta.format === 'gif') need = pixels * 4
  else if (meta.format === 'heif') need = pixels * bytes * 2
  if (need !== undefined && need > maxDecodeBytes) {
    const what = meta.isProgressive
      ? meta.format === 'png'
        ? 'an interlaced PNG'
        : 'a progressive JPEG'
      : `a ${meta.format.toUpperCase()}`
    throw new LimitError(
      `${meta.width}x${meta.height} ${what} is decoded whole: about ${need} bytes of memory, more than the limit of ${maxDecodeBytes} (maxDecodeBytes); ${advice}`,
    )
  }
}

// libvips' .v header (file-format.html): magic, then int32 LE width, height, bands, unused,
// band format. libvips' own docs swap the two magics; vips/image.h is right: a file written
// on a little-endian machine starts b6 a6 f2 08, and its pixels are little-endian.
const V_HEADER = 64
const V_MAGIC_INTEL = [0xb6, 0xa6, 0xf2, 0x08]
const V_FORMAT: Record<BitDepth, number> = { 8: 0, 16: 2 } // VIPS_FORMAT_UCHAR, VIPS_FORMAT_USHORT

/**
 * Decodes `path` with sharp into a temporary file in `options.tmpDir` and serves its rows.
 * `head` (the file's first bytes) tells corrupt files of a known format from unknown ones.
 * A path given as bytes (a file name that need not be UTF-8, which libvips cannot be given) is
 * reached through a symbolic link in `tmpDir`, removed with the decoder.
 */
export async function openSharp(path: string | Uint8Array, options: DecodeOptions, head?: Uint8Array): Promise<DecodedImage> {
  options.signal?.throwIfAborted()
  await checkTmpDir(options.tmpDir)
  if (typeof path === 'string') return await openSharpPath(path, options, head, async () => {})
  const target = path[0] === 0x2f ? path : Buffer.concat([Buffer.from(`${process.cwd()}/`), path])
  const link = join(options.tmpDir, `${ownedPrefix(TEMP_PREFIX)}${randomUUID()}.link`)
  await symlink(Buffer.from(target.buffer, target.byteOffset, target.length), link)
  const unlink = (): Promise<void> => rm(link, { force: true })
  try {
    return await openSharpPath(link, options, head, unlink)
  } catch (error) {
    await unlink()
    throw error
  }
}

/**
 * Largest decoded image (bytes) held in memory instead of a temporary file: a screenshot or a
 * photo from a phone (1920x1080 RGBA is 8.3 MB). Decoding one to memory is about 2.5 times
 * as fast as through a `.v` file (measured on 1920x1080 PNG screenshots: 92 vs 37 frames/s),
 * which is most of a batch import's time; larger images keep the bounded-memory file path.
 */
const IN_MEMORY_BYTES = 16 << 20

/**
 * The whole image decoded by libvips into memory, served as bands: 8-bit RGB and RGBA only
 * (sharp's raw output of those is the samples as stored; its raw output of gray+alpha was
 * seen to drop the alpha band). Same pipeline and pixel policy as the `.v` path.
 */
async function decodeInMemory(
  path: string,
  info: SharpProbe,
  options: DecodeOptions,
  head: Uint8Array | undefined,
  release: () => Promise<void>,
): Promise<DecodedImage> {
  options.signal?.throwIfAborted()
  let data: Buffer
  try {
    const checked = integrityCheck(path, head, options.signal)
    checked.catch(() => undefined) // awaited below, once libvips is done
    data = await sharpFor(path, { limitInputPixels: pixelLimit(options.maxPixels), ignoreIcc: true, sequentialRead: true })
      .toColourspace(info.space)
      .raw()
      .toBuffer()
      .finally(() => checked.catch(() => undefined))
    await checked
  } catch (error) {
    if (error instanceof CorruptInputError) throw error
    throw mapSharpError(error, head)
  } finally {
    await release()
  }
  options.signal?.throwIfAborted()
  const rowBytes = info.width * info.format.channels
  if (data.length !== rowBytes * info.height) {
    throw new CorruptInputError(`libvips decoded ${data.length} bytes, expected ${rowBytes * info.height} for the header's size`)
  }
  let started = false
  let closed = false
  return {
    width: info.width,
    height: info.height,
    format: info.format,
    sourceFormat: info.sourceFormat,
    icc: info.icc,
    pixels: data,
    bands(bandHeight, bandOptions = {}) {
      checkBandHeight(bandHeight)
      if (started) throw new InvalidArgumentError('bands() can be called once per decoder')
      if (closed) throw new InvalidArgumentError('Decoder is closed')
      started = true
      return (async function* () {
        for (let y = 0; y < info.height; y += bandHeight) {
          bandOptions.signal?.throwIfAborted()
          if (closed) throw new InvalidArgumentError('Decoder is closed')
          const height = Math.min(bandHeight, info.height - y)
          const rows = data.subarray(y * rowBytes, (y + height) * rowBytes)
          // Into the caller's buffer when it offers one (the importer's tile row: no copy later).
          const target = bandOptions.target?.(rows.length)
          if (target !== undefined) target.set(rows)
          yield { y, height, data: target ?? rows }
        }
      })()
    },
    close: async () => {
      closed = true
    },
  }
}

/** InvalidArgumentError unless `tmpDir` is a directory. */
async function checkTmpDir(tmpDir: string): Promise<void> {
  const dir = await stat(tmpDir).catch(() => undefined)
  if (dir?.isDirectory() !== true) throw new InvalidArgumentError(`tmpDir ${tmpDir} is not a directory`)
}

/** openSharp for a path libvips can take; `release` runs once libvips is done with the input. */
async function openSharpPath(
  path: string,
  options: DecodeOptions,
  head: Uint8Array | undefined,
  release: () => Promise<void>,
): Promise<DecodedImage> {
  const info = await probe(path, options, head)
  options.accept?.({ width: info.width, height: info.height, format: info.format, icc: info.icc })
  const rowBytes = info.width * info.format.channels * (info.format.bitsPerSample / 8)
  await cleanTempDir(options.tmpDir)
  const bytes = rowBytes * info.height
  // In memory only what would also have passed the temporary file's budget: the limits mean the same whatever the path.
  const inMemory =
    info.format.bitsPerSample === 8 &&
    info.format.channels >= 3 &&
    bytes <= Math.min(IN_MEMORY_BYTES, options.maxDecodeBytes ?? DEFAULT_MAX_DECODE_BYTES) &&
    (options.maxTempBytes === undefined || V_HEADER + bytes <= options.maxTempBytes)
  if (inMemory) {
    return await decodeInMemory(path, info, options, head, release)
  }
  await checkTempSpace(options.tmpDir, V_HEADER + rowBytes * info.height, options.maxTempBytes)
  // libvips cannot be interrupted mid-pass, so the signal is checked before and after it.
  options.signal?.throwIfAborted()
  // The pid in the name tells a later process whether the file's owner is still alive.
  const tmp = join(options.tmpDir, `${ownedPrefix(TEMP_PREFIX)}${randomUUID()}.v`)
  let removed = false
  const remove = async (): Promise<void> => {
    if (!removed) await rm(tmp, { force: true })
    removed = true
  }
  // One sequential libvips pass (peak memory ~100-200 MiB whatever the image size) runs on
  // libvips' threads while the rows it has written are already read and compressed: libvips
  // writes the .v header first and then the rows in order, so the file only ever grows.
  let finished = false
  let failure: Error | undefined
  const checked = integrityCheck(path, head, options.signal).catch((error: unknown) => {
    failure ??= error as Error
  })
  const written = sharpFor(path, { limitInputPixels: pixelLimit(options.maxPixels), ignoreIcc: true, sequentialRead: true })
    .toColourspace(info.space)
    .toFile(tmp)
    .then(
      async () => {
        await checked
        finished = true
      },
      async (error: unknown) => {
        await checked
        failure = mapSharpError(error, head, tmp)
      },
    )
  const total = V_HEADER + info.width * info.height * info.format.channels * (info.format.bitsPerSample / 8)
  let opened: FileHandle | undefined
  const available = async (end: number): Promise<void> => {
    for (let wait = 1; ; wait = Math.min(wait * 2, 20)) {
      if (failure !== undefined) throw failure
      // By handle once open: the path is unlinked early (see below).
      const size = await (opened?.stat() ?? stat(tmp)).then(
        (s) => s.size,
        () => 0,
      )
      // The last rows wait for libvips to finish, and for the integrity check.
      if ((size >= end && end < total) || finished) return
      await Promise.race([written, sleep(wait)])
    }
  }
  try {
    await available(V_HEADER)
    options.signal?.throwIfAborted()
    const handle = await open(tmp, 'r')
    opened = handle
    try {
      await checkVHeader(handle, tmp, info, finished)
      // Unlinking now frees the space even if close() is never called; where the OS refuses
      // to unlink an open file, close() does it.
      await remove().catch(() => undefined)
      return new RowFileImage({
        handle,
        dataOffset: V_HEADER,
        width: info.width,
        height: info.height,
        format: info.format,
        sourceFormat: info.sourceFormat,
        icc: info.icc,
        bigEndian: false,
        available,
        // libvips cannot be cancelled: let it finish before its file is removed.
        cleanup: async () => {
          await written
          await remove()
          await release()
        },
      })
    } catch (error) {
      await handle.close()
      throw error
    }
  } catch (error) {
    await written
    await remove()
    throw error
  }
}

/**
 * Refuses a temporary file of `bytes` (issue 10, finding 6) above `maxTempBytes`, or above the
 * free space of `dir` less TEMP_FREE_MARGIN_BYTES: a small compressed input can declare a
 * decode of many gigabytes under the pixel limit. Where the file system cannot say (statfs
 * fails), only `maxTempBytes` applies.
 */
export async function checkTempSpace(dir: string, bytes: number, maxTempBytes: number | undefined): Promise<void> {
  if (maxTempBytes !== undefined && bytes > maxTempBytes) {
    throw new LimitError(`Decoding needs a temporary file of ${bytes} bytes, more than the limit of ${maxTempBytes} (maxTempBytes)`)
  }
  const fs = await statfs(dir).catch(() => undefined)
  if (fs === undefined) return
  const free = fs.bavail * fs.bsize
  if (bytes > free - TEMP_FREE_MARGIN_BYTES) {
    throw new LimitError(
      `Decoding needs a temporary file of ${bytes} bytes, but ${dir} has ${free} bytes free (and ${TEMP_FREE_MARGIN_BYTES} are kept free); use another tmpDir or free space`,
    )
  }
}

const TEMP_PREFIX = 'tessera-decode-'
/** When each temp dir was last cleaned by this process. */
const cleaned = new Map<string, number>()

/** Runs removeStaleTempFiles on `dir` at most once per STALE_TEMP_MS per process; never fails. */
async function cleanTempDir(dir: string): Promise<void> {
  const now = Date.now()
  if (now - (cleaned.get(dir) ?? Number.NEGATIVE_INFINITY) < STALE_TEMP_MS) return
  cleaned.set(dir, now)
  await removeStaleTempFiles(dir).catch(() => undefined)
}

/**
 * Removes the `tessera-decode-*` files in `dir` that a killed process left (issue 10, finding
 * 13: killed before libvips wrote the header, the file is never unlinked), and links to inputs
 * with non-UTF-8 names (`.link`) likewise: see removeStaleTemporaries. Returns how many.
 */
export function removeStaleTempFiles(dir: string, maxAgeMs: number = STALE_TEMP_MS): Promise<number> {
  return removeStaleTemporaries(dir, TEMP_PREFIX, { maxAgeMs })
}

/** Confirms that libvips wrote exactly the layout `probe` promised, unconverted. */
async function checkVHeader(handle: FileHandle, tmp: string, info: SharpProbe, complete: boolean): Promise<void> {
  const header = await readAt(handle, 0, V_HEADER, 'libvips temporary file')
  const view = new DataView(header.buffer)
  const fields = [1, 2, 3, 5, 6].map((i) => view.getInt32(i * 4, true))
  const expected = [info.width, info.height, info.format.channels, V_FORMAT[info.format.bitsPerSample], 0]
  if (V_MAGIC_INTEL.some((b, i) => header[i] !== b) || fields.some((f, i) => f !== expected[i])) {
    // Not the input's fault: sharp or libvips did something this module does not expect.
    throw new Error(`Unexpected libvips output in ${tmp}: header fields ${fields.join(',')}, expected ${expected.join(',')}`)
  }
  if (!complete) return // still being written: RowFileImage waits for each band's rows
  const rowBytes = info.width * info.format.channels * (info.format.bitsPerSample / 8)
  const { size } = await handle.stat()
  if (size < V_HEADER + rowBytes * info.height) throw new Error(`libvips temporary file ${tmp} is shorter than its pixels`)
}

/** Whether the first bytes are the signature of a raster format sharp's libvips decodes. */
export function isKnownRaster(head: Uint8Array): boolean {
  const at = (offset: number, text: string): boolean => [...text].every((c, i) => head[offset + i] === c.charCodeAt(0))
  return (
    at(0, '\x89PNG\r\n\x1a\n') ||
    (head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) ||
    (at(0, 'RIFF') && at(8, 'WEBP')) ||
    at(0, 'GIF8') ||
    at(0, 'II*\0') ||
    at(0, 'MM\0*') ||
    at(4, 'ftyp')
  )
}

/**
 * What libvips does not check for itself, checked beside its decode: a PNG's CRCs and zlib
 * stream (png-check.ts: libpng decodes around such damage with only a warning, and libvips would
 * make up the pixels). Resolves at once for other formats.
 */
const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] as const

async function integrityCheck(path: string, head: Uint8Array | undefined, signal: AbortSignal | undefined): Promise<void> {
  if (head === undefined || !PNG_SIGNATURE.every((byte, i) => head[i] === byte)) return
  await checkPng(path, signal)
}

/**
 * Maps a sharp/libvips error to a Tessera error. sharp's errors carry only a message, so this
 * matches the messages sharp 0.35 / libvips 8.18 produce; the message is kept for people.
 */
export function mapSharpError(error: unknown, head?: Uint8Array, tmp?: string): Error {
  const message = error instanceof Error ? error.message : String(error)
  // libvips repeats a line once per failed tile or strip; keep each once.
  const detail = [...new Set(message.split('\n').map((line) => line.trim()))].filter((line) => line !== '').join('; ')
  if (/Input file is missing/i.test(message)) return new NotFoundError(detail, { cause: error })
  if (/exceeds pixel limit/i.test(message)) return new LimitError(`sharp: ${detail}`)
  if (tmp !== undefined && message.includes(tmp)) {
    return new Error(`Could not write the temporary file ${tmp}: ${detail}`, { cause: error })
  }
  if (/unsupported image format/i.test(message)) {
    // libvips says "unsupported" when no loader recognises the bytes, also for a known
    // format cut short before its header ends: the signature tells which it is.
    if (head !== undefined && isKnownRaster(head)) return new CorruptInputError(`Unreadable image: ${detail}`, { cause: error })
    return new UnsupportedFormatError(`Unsupported image format: ${detail}`, { cause: error })
  }
  // libtiff knows the codec (zstd, LERC, ...) but sharp's libtiff was built without it.
  if (/compression support is not configured|not implemented|unknown compression/i.test(message)) {
    return new UnsupportedFormatError(`Unsupported encoding: ${detail}`, { cause: error })
  }
  // Everything else libvips reports while reading (bad header, truncation, decoder errors,
  // warnings under failOn 'warning') means the input is not a valid image.
  return new CorruptInputError(`Invalid image: ${detail}`, { cause: error })
}
