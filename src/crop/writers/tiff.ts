/**
 * Tiled TIFF output, little-endian, classic or BigTIFF (layout in tiff-layout.ts). Two paths:
 * re-cut (bands in, tiles cut on the output's own grid, compressed here) and verbatim (stored
 * tile payloads copied untouched when the output's tile grid is the store's).
 */
import { tmpdir } from 'node:os'
import { AbortError, IntegrityError, InvalidArgumentError } from '../../errors.js'
import { assertTileSize } from '../../format/grid.js'
import type { Band } from '../../format/interface.js'
import { bytesPerPixel } from '../../format/pixel.js'
import { TileCoder, tileBytes } from '../../format/tile-codec.js'
import { checkedBands, checkInit, rowBytes } from './bands.js'
import { acquireDeflateThreads, InOrder } from './deflate.js'
import type { Segment, TiffBandsOptions, TiffInit, TiffLayoutOptions, TiffPayloadsOptions } from './interface.js'
import { Spool } from './spool.js'
import { tiffGrid, tiffHead } from './tiff-layout.js'

/** Compressed bytes held in memory before spooling to a temp file. */
const DEFAULT_SPOOL_THRESHOLD = 64 << 20

/**
 * Writes a tiled TIFF from bands, cutting `init.tileSize` tiles from the region's origin,
 * zero-padded past its edges. Compressed tiles are spooled (memory, then a temp file in
 * `options.tmpDir`, always deleted) because the header must give their offsets first; with
 * compression 'none' it streams directly. Throws InvalidArgumentError at call time for a bad
 * init; the iterable throws RangeError for bad bands and AbortError when `options.signal` fires.
 */
export function writeTiffFromBands(
  init: TiffInit,
  bands: AsyncIterable<Band>,
  options: TiffBandsOptions = {},
): AsyncGenerator<Uint8Array, void, undefined> {
  checkTiffInit(init)
  const threshold = options.spoolThreshold ?? DEFAULT_SPOOL_THRESHOLD
  if (!(threshold >= 0)) throw new InvalidArgumentError(`Expected a non-negative spoolThreshold but received ${threshold}`)
  return init.compression === 'none' ? uncompressed(init, bands, options) : compressed(init, bands, options)
}

/**
 * Writes a tiled TIFF whose tiles are `payloads`, copied untouched: tile payloads already
 * encoded as `init.compression` with `init.predictor`, row-major, of the byte `lengths` given.
 * Throws InvalidArgumentError at call time for a bad init or lengths; the iterable throws
 * IntegrityError when a payload's length differs or the count is wrong.
 */
export function writeTiffFromPayloads(
  init: TiffInit,
  lengths: readonly number[],
  payloads: AsyncIterable<Uint8Array>,
  options: TiffPayloadsOptions = {},
): AsyncGenerator<Uint8Array, void, undefined> {
  checkPayloads(init, lengths)
  return verbatim(init, lengths, payloads, options)
}

/**
 * The same file as `writeTiffFromPayloads`, as segments: the head, then `payloads` (each read
 * only when asked, so that a byte range skips the tiles before it). Throws as it does.
 */
export function tiffSegments(init: TiffInit, payloads: readonly Segment[], options: TiffLayoutOptions = {}): Segment[] {
  const lengths = payloads.map((payload) => payload.length)
  checkPayloads(init, lengths)
  const head = tiffHead(init, lengths, options)
  return [{ length: head.length, read: () => head }, ...payloads]
}

function checkPayloads(init: TiffInit, lengths: readonly number[]): void {
  checkTiffInit(init)
  const { count } = tiffGrid(init)
  if (lengths.length !== count) throw new InvalidArgumentError(`Expected ${count} tile lengths but received ${lengths.length}`)
  for (const length of lengths) {
    if (!Number.isSafeInteger(length) || length < 0) throw new InvalidArgumentError(`Invalid tile length ${length}`)
  }
}

async function* verbatim(
  init: TiffInit,
  lengths: readonly number[],
  payloads: AsyncIterable<Uint8Array>,
  options: TiffPayloadsOptions,
): AsyncGenerator<Uint8Array, void, undefined> {
  yield tiffHead(init, lengths, options)
  let i = 0
  for await (const payload of payloads) {
    throwIfAborted(options.signal)
    if (i >= lengths.length) throw new IntegrityError(`Expected ${lengths.length} tile payloads but received more`)
    if (payload.length !== lengths[i]) {
      throw new IntegrityError(`Tile payload ${i} has ${payload.length} bytes, expected ${lengths[i]}`)
    }
    i++
    yield payload
  }
  if (i !== lengths.length) throw new IntegrityError(`Expected ${lengths.length} tile payloads but received ${i}`)
}

/** Sizes are known up front, so the head goes first and tile rows follow as they are cut. */
async function* uncompressed(
  init: TiffInit,
  bands: AsyncIterable<Band>,
  options: TiffBandsOptions,
): AsyncGenerator<Uint8Array, void, undefined> {
  const { count, across } = tiffGrid(init)
  const bytes = tileBytes(tileShape(init))
  yield tiffHead(init, new Array<number>(count).fill(bytes), options)
  for await (const rows of tileRows(init, bands, options.signal)) {
    // One buffer per tile row: the tiles are contiguous in the file anyway.
    const out = new Uint8Array(across * bytes)
    for (let column = 0; column < across; column++) cutTile(init, rows, column, out.subarray(column * bytes, (column + 1) * bytes))
    yield out
  }
}

async function* compressed(
  init: TiffInit,
  bands: AsyncIterable<Band>,
  options: TiffBandsOptions,
): AsyncGenerator<Uint8Array, void, undefined> {
  const { across, count } = tiffGrid(init)
  const shape = tileShape(init)
  const bytes = tileBytes(shape)
  const lengths: number[] = []
  const spool = new Spool({
    memoryLimit: options.spoolThreshold ?? DEFAULT_SPOOL_THRESHOLD,
    tmpDir: options.tmpDir ?? tmpdir(),
  })
  // zstd runs here, synchronously, through TileCoder. Deflate tiles (the predictor, then one
  // zlib stream each, as libtiff's Adobe Deflate codec expects) go to the deflate threads of
  // deflate.ts, a few in flight, and come back in order.
  const coder =
    init.compression === 'zstd' ? new TileCoder(shape, { name: 'zstd', level: init.zstdLevel, predictor: init.predictor }) : undefined
  const threads = coder === undefined ? acquireDeflateThreads(count * bytes, count <= 1 ? 0 : undefined) : undefined
  // Enough tiles queued (8 MiB) to keep the threads busy while this thread decodes the next tile row.
  const pending = new InOrder<Uint8Array>(
    threads === undefined ? 1 : threads.size === 0 ? 2 : Math.max(2 * threads.size + 1, Math.ceil((8 << 20) / bytes)),
  )
  // Payloads done, appended to the spool a tile row at a time.
  const batch: Uint8Array[] = []
  const take = async (all: boolean) => {
    for await (const payload of pending.ready(all)) {
      lengths.push(payload.length)
      batch.push(payload)
    }
  }
  try {
    const tile = new Uint8Array(bytes)
    for await (const rows of tileRows(init, bands, options.signal)) {
      for (let column = 0; column < across; column++) {
        if (coder !== undefined) {
          cutTile(init, rows, column, tile)
          pending.push(Promise.resolve(coder.encode(tile)))
        } else {
          // A buffer of its own: it moves to a worker thread.
          const target = new Uint8Array(bytes)
          cutTile(init, rows, column, target)
          const job = { kind: 'tiff', tile: target, ...shape, predictor: init.predictor, level: init.deflateLevel } as const
          pending.push(threads!.run(job) as Promise<Uint8Array>)
        }
        await take(false)
      }
      await spool.append(batch.splice(0))
    }
    await take(true)
    await spool.append(batch.splice(0))
    yield tiffHead(init, lengths, options)
    for await (const chunk of spool.drain()) {
      throwIfAborted(options.signal)
      yield chunk
    }
  } finally {
    await pending.settle()
    await threads?.release()
    await spool.dispose()
  }
}

/** Copies tile `column` of a tile row into `tile`, zero-padding past the region's right and bottom edges. */
function cutTile(init: TiffInit, rows: TileRow, column: number, tile: Uint8Array): void {
  const bpp = bytesPerPixel(init.format)
  const stride = rowBytes(init)
  const tileStride = init.tileSize * bpp
  const x = column * tileStride
  const width = Math.min(tileStride, stride - x)
  // The buffer may hold the previous tile (or its predictor output): clear what is not overwritten.
  if (width < tileStride || rows.count < init.tileSize) tile.fill(0)
  for (let r = 0; r < rows.count; r++) {
    const from = r * stride + x
    tile.set(rows.data.subarray(from, from + width), r * tileStride)
  }
}

/** `count` (tileSize, or fewer at the bottom) whole rows of the region, starting on the tile grid. */
interface TileRow {
  readonly data: Uint8Array
  readonly count: number
}

/**
 * Rebuffers bands of any heights into rows of tiles. A tile row that lies whole in one band is
 * passed on as a view of it (a whole-image export's bands are the store's tile rows: no copy,
 * and 22.7 MB less at the benchmark image's width); others are gathered in one buffer, reused.
 * Either is valid until the next row is asked for.
 */
async function* tileRows(
  init: TiffInit,
  bands: AsyncIterable<Band>,
  signal: AbortSignal | undefined,
): AsyncGenerator<TileRow, void, undefined> {
  const stride = rowBytes(init)
  let buffer: Uint8Array | undefined
  let filled = 0
  let done = 0
  for await (const band of checkedBands(init, bands)) {
    throwIfAborted(signal)
    for (let taken = 0; taken < band.height; ) {
      const n = Math.min(band.height - taken, init.tileSize - filled)
      const rows = band.data.subarray(taken * stride, (taken + n) * stride)
      taken += n
      done += n
      if (filled === 0 && (n === init.tileSize || done === init.height)) {
        yield { data: rows, count: n }
        continue
      }
      buffer ??= new Uint8Array(init.tileSize * stride)
      buffer.set(rows, filled * stride)
      filled += n
      if (filled === init.tileSize || done === init.height) {
        yield { data: buffer, count: filled }
        filled = 0
      }
    }
  }
}

function tileShape(init: TiffInit): { tileSize: number; channels: number; bitsPerSample: 8 | 16 } {
  return { tileSize: init.tileSize, channels: init.format.channels, bitsPerSample: init.format.bitsPerSample }
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortError()
}

/** Throws InvalidArgumentError unless `init` describes a TIFF this writer can produce. */
function checkTiffInit(init: TiffInit): void {
  checkInit(init)
  if (init.width > 0xffffffff || init.height > 0xffffffff) {
    throw new InvalidArgumentError(`TIFF dimensions are limited to 2^32-1 but received ${init.width}x${init.height}`)
  }
  assertTileSize(init.tileSize)
  if (!['zstd', 'deflate', 'none'].includes(init.compression)) {
    throw new InvalidArgumentError(`Expected zstd, deflate or none for compression but received ${String(init.compression)}`)
  }
  if (init.predictor !== 1 && init.predictor !== 2) {
    throw new InvalidArgumentError(`Expected 1 or 2 for predictor but received ${String(init.predictor)}`)
  }
  if (init.compression === 'zstd' && !(Number.isInteger(init.zstdLevel) && init.zstdLevel >= -131072 && init.zstdLevel <= 22)) {
    throw new InvalidArgumentError(`Expected an integer zstd level up to 22 but received ${String(init.zstdLevel)}`)
  }
  const deflateLevel = init.deflateLevel ?? 6
  if (!Number.isInteger(deflateLevel) || deflateLevel < 0 || deflateLevel > 9) {
    throw new InvalidArgumentError(`Expected integer 0 to 9 for deflateLevel but received ${String(init.deflateLevel)}`)
  }
}
