/**
 * The head of a tiled TIFF: header, one IFD and its out-of-line values, laid out before the
 * tile data so the file can be streamed front to back once the tile lengths are known.
 * Classic TIFF: TIFF 6.0 (https://www.itu.int/itudoc/itu-t/com16/tiff-fx/docs/tiff6.pdf),
 * sections 2 (structure), 8 (baseline tags), 15 (tiles), 14 (Predictor). BigTIFF:
 * https://www.awaresystems.be/imaging/tiff/bigtiff.html (version 43, 8-byte offsets, LONG8).
 */
import { levelGeometry } from '../../format/grid.js'
import type { TiffInit, TiffLayoutOptions } from './interface.js'

/** TIFF field types used here, with their sizes in bytes. */
const SHORT = 3
const LONG = 4
const UNDEFINED = 7
const LONG8 = 16
const TYPE_SIZE: Record<number, number> = { [SHORT]: 2, [LONG]: 4, [UNDEFINED]: 1, [LONG8]: 8 }

/** Compression tag values: 1 none, 8 Adobe Deflate, 50000 zstd (libtiff's COMPRESSION_ZSTD). */
const COMPRESSION = { none: 1, deflate: 8, zstd: 50000 } as const

/** Classic TIFF offsets are 32-bit, so a file of 4 GiB or more needs BigTIFF. */
const CLASSIC_LIMIT = 2 ** 32

interface Entry {
  readonly tag: number
  readonly type: number
  readonly values: readonly number[] | Uint8Array
}

/** The tile grid of the output: tiles across, down, and in all (row-major order). */
export function tiffGrid(init: TiffInit): { across: number; down: number; count: number } {
  const { columns, rows } = levelGeometry(init.width, init.height, init.tileSize)
  return { across: columns, down: rows, count: columns * rows }
}

/**
 * Header + IFD + out-of-line values for a file whose tiles, in row-major order, have
 * `lengths` bytes and follow the head back to back. BigTIFF when the classic file would reach
 * `options.bigTiffThreshold` (default 4 GiB).
 */
export function tiffHead(init: TiffInit, lengths: readonly number[], options: TiffLayoutOptions = {}): Uint8Array {
  const payload = lengths.reduce((sum, n) => sum + n, 0)
  const threshold = Math.min(options.bigTiffThreshold ?? CLASSIC_LIMIT, CLASSIC_LIMIT)
  let big = false
  let entries = tiffEntries(init, lengths, 0, big)
  if (headLength(entries, big) + payload >= threshold) {
    big = true
    entries = tiffEntries(init, lengths, 0, big)
  }
  // The head's length does not depend on the offsets' values, only on how many there are.
  entries = tiffEntries(init, lengths, headLength(entries, big), big)
  return writeHead(entries, big)
}

/** The IFD entries, sorted by tag as TIFF 6.0 section 2 requires; tile data starts at `dataStart`. */
function tiffEntries(init: TiffInit, lengths: readonly number[], dataStart: number, big: boolean): Entry[] {
  const { channels, bitsPerSample, colorModel } = init.format
  const offsets = new Array<number>(lengths.length)
  let at = dataStart
  for (let i = 0; i < lengths.length; i++) {
    offsets[i] = at
    at += lengths[i]!
  }
  const entries: Entry[] = [
    { tag: 256, type: LONG, values: [init.width] }, // ImageWidth
    { tag: 257, type: LONG, values: [init.height] }, // ImageLength
    { tag: 258, type: SHORT, values: new Array<number>(channels).fill(bitsPerSample) }, // BitsPerSample
    { tag: 259, type: SHORT, values: [COMPRESSION[init.compression]] }, // Compression
    // PhotometricInterpretation: 1 BlackIsZero, 2 RGB; alpha is an extra sample, not a model.
    { tag: 262, type: SHORT, values: [colorModel === 'gray' || colorModel === 'graya' ? 1 : 2] },
    { tag: 277, type: SHORT, values: [channels] }, // SamplesPerPixel
    { tag: 284, type: SHORT, values: [1] }, // PlanarConfiguration: chunky
  ]
  // libtiff applies a predictor only with a compression scheme, so none never carries one.
  if (init.predictor === 2 && init.compression !== 'none') entries.push({ tag: 317, type: SHORT, values: [2] })
  entries.push(
    { tag: 322, type: LONG, values: [init.tileSize] }, // TileWidth
    { tag: 323, type: LONG, values: [init.tileSize] }, // TileLength
    { tag: 324, type: big ? LONG8 : LONG, values: offsets }, // TileOffsets
    { tag: 325, type: big ? LONG8 : LONG, values: lengths }, // TileByteCounts
  )
  // ExtraSamples 2: unassociated alpha (the samples are not premultiplied).
  if (colorModel === 'graya' || colorModel === 'rgba') entries.push({ tag: 338, type: SHORT, values: [2] })
  entries.push({ tag: 339, type: SHORT, values: new Array<number>(channels).fill(1) }) // SampleFormat: unsigned
  if (init.icc !== undefined) entries.push({ tag: 34675, type: UNDEFINED, values: init.icc }) // ICC profile
  return entries
}

function byteLength(entry: Entry, big: boolean): { size: number; inline: boolean } {
  const size = entry.values.length * TYPE_SIZE[entry.type]!
  return { size, inline: size <= (big ? 8 : 4) }
}

/** Bytes of header, IFD and out-of-line values, each value starting on a word boundary. */
function headLength(entries: readonly Entry[], big: boolean): number {
  let at = big ? 16 + 8 + entries.length * 20 + 8 : 8 + 2 + entries.length * 12 + 4
  for (const entry of entries) {
    const { size, inline } = byteLength(entry, big)
    if (!inline) at += size + (size % 2)
  }
  return at
}

function writeHead(entries: readonly Entry[], big: boolean): Uint8Array {
  const out = new Uint8Array(headLength(entries, big))
  const view = new DataView(out.buffer)
  out.set([0x49, 0x49]) // "II": little-endian
  let ifd: number
  if (big) {
    view.setUint16(2, 43, true)
    view.setUint16(4, 8, true) // bytes per offset
    view.setUint16(6, 0, true)
    view.setBigUint64(8, 16n, true)
    view.setBigUint64(16, BigInt(entries.length), true)
    ifd = 24
  } else {
    view.setUint16(2, 42, true)
    view.setUint32(4, 8, true)
    view.setUint16(8, entries.length, true)
    ifd = 10
  }
  const entrySize = big ? 20 : 12
  // Out-of-line values follow the IFD and its 0 next-IFD offset.
  let extra = ifd + entries.length * entrySize + (big ? 8 : 4)
  entries.forEach((entry, i) => {
    const at = ifd + i * entrySize
    view.setUint16(at, entry.tag, true)
    view.setUint16(at + 2, entry.type, true)
    const { size, inline } = byteLength(entry, big)
    let valueAt = at + (big ? 12 : 8)
    if (big) view.setBigUint64(at + 4, BigInt(entry.values.length), true)
    else view.setUint32(at + 4, entry.values.length, true)
    if (!inline) {
      if (big) view.setBigUint64(valueAt, BigInt(extra), true)
      else view.setUint32(valueAt, extra, true)
      valueAt = extra
      extra += size + (size % 2)
    }
    writeValues(view, valueAt, entry)
  })
  return out
}

function writeValues(view: DataView, at: number, entry: Entry): void {
  const { values, type } = entry
  if (values instanceof Uint8Array) {
    new Uint8Array(view.buffer, at, values.length).set(values)
    return
  }
  for (let i = 0; i < values.length; i++) {
    const value = values[i]!
    if (type === SHORT) view.setUint16(at + 2 * i, value, true)
    else if (type === LONG) view.setUint32(at + 4 * i, value, true)
    else view.setBigUint64(at + 8 * i, BigInt(value), true)
  }
}
