/**
 * The importer: decoder bands -> tile rows -> compressed, addressed tiles -> index blocks ->
 * manifest, all inside one store transaction so a failed import leaves nothing visible.
 * Memory is bounded by a band of tile rows per pyramid level (spec/format.md, Pyramid).
 */
import { tmpdir } from 'node:os'
import { basename } from 'node:path'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { InvalidArgumentError, InvalidCidError, LimitError } from '../errors.js'
import { type Block, DAG_CBOR, MAX_BLOCK_BYTES, RAW, rawBlock, SHA2_256 } from '../format/block.js'
import { pyramidSizes } from '../format/grid.js'
import type { Band, PixelFormat, TileCodec } from '../format/interface.js'
import {
  DELTA_FORMAT_VERSION,
  encodeManifest,
  encodeTileRow,
  FORMAT_VERSION,
  type ImageManifest,
  type ImageMetadata,
  type LevelEntry,
} from '../format/manifest.js'
import { bytesPerPixel } from '../format/pixel.js'
import { halveBand } from '../format/pyramid.js'
import { maxPayloadBytes } from '../format/tile-codec.js'
import type { AbortOptions, BlockStore, BlockWriter } from '../store/interface.js'
import type { WorkerPool } from '../threads.js'
import { chooseCodec, sampleRows } from './codec-choice.js'
import { type CompressJob, type CompressResult, type DeltaSlot, TileKind } from './compress.js'
import { type DecodedHeader, displayPath, openDecoder } from './decoders/index.js'
import { type DeltaTicket, makeReference, type PositionState, type ReferenceTile, type StoredTileRef, slotOf } from './delta.js'
import { type Auto, type CodecSetting, importParameters } from './options.js'
import { compressPool } from './pool.js'

/** Options of one import. */
export interface ImportOptions extends AbortOptions {
  /** Tile edge in pixels, a multiple of 16 (default 256). */
  readonly tileSize?: number
  /** zstd level (default 3); `auto`: chosen from sample tiles of the image (codec-choice.ts). */
  readonly zstdLevel?: number | Auto
  /** TIFF predictor, 1 none or 2 horizontal (default 2); `auto` as for zstdLevel. */
  readonly predictor?: 1 | 2 | Auto
  /** Build the pyramid down to one tile (default false). */
  readonly pyramid?: boolean
  /** Largest accepted pixel count (default DEFAULT_MAX_PIXELS; DEFAULT_UPLOAD_MAX_PIXELS for untrusted input). */
  readonly maxPixels?: number
  /** Largest temporary file, in bytes (default: the temp dir's free space less a margin). */
  readonly maxTempBytes?: number
  /**
   * Largest buffer the import may hold at once, in bytes (default DEFAULT_MAX_DECODE_BYTES): the
   * tile rows of all levels, a decoded row of TIFF strips or tiles, or a whole image for the
   * loaders that cannot stream. Checked from the header (ERR_LIMIT).
   */
  readonly maxDecodeBytes?: number
  /** Directory for temporary files (default the OS temp dir). */
  readonly tmpDir?: string
  /** Label of the pin that keeps the image (default the file name). */
  readonly label?: string
  /** Compression threads (default: one per core; 0 compresses on the calling thread). */
  readonly workers?: number
  /** Optional provenance links (ipld-image design). */
  readonly derivedFrom?: CID
  readonly canonicalVersion?: CID
  /** Called after each tile row of level 0 with (rows done, rows total). */
  readonly onProgress?: (done: number, total: number) => void
  /**
   * Store tiles as deltas against the tiles of the images before this one in a run
   * (spec/format.md §6.1): this image's place in a DeltaContext. The caller ends the ticket
   * (importImage does not), after the import whatever its outcome.
   */
  readonly delta?: DeltaTicket
  /** A compression pool shared with other imports (batch imports); not closed. Default: one of `workers` threads. */
  readonly pool?: WorkerPool<CompressJob, CompressResult>
}

/** What an import produced. */
export interface ImportResult {
  readonly cid: CID
  readonly manifest: ImageManifest
  /** Bytes of blocks this import added (0 when everything was already stored). */
  readonly newBytes: number
}

/**
 * Imports the image file at `path` into `store`, returning its CID. `path` may be bytes, for a
 * file name that is not valid UTF-8; the name recorded (and the default label) is then its
 * last component decoded as UTF-8, with U+FFFD for what is not.
 */
export async function importImage(store: BlockStore, path: string | Uint8Array, options: ImportOptions = {}): Promise<ImportResult> {
  const { tileSize, codec, maxPixels, maxTempBytes, maxDecodeBytes } = importParameters(options)
  for (const [name, link] of [
    ['derivedFrom', options.derivedFrom],
    ['canonicalVersion', options.canonicalVersion],
  ] as const) {
    if (link !== undefined && (link.version !== 1 || link.code !== DAG_CBOR))
      throw new InvalidCidError(`${name} must be the CIDv1 of an image root`)
  }
  const levelSizes = (width: number, height: number): Array<[number, number]> =>
    options.pyramid === true ? pyramidSizes(width, height, tileSize) : [[width, height]]
  let accepted = false
  const accept = ({ width, height, format, icc }: DecodedHeader): void => {
    const sizes = levelSizes(width, height)
    checkBlockLimits(format, tileSize, sizes, icc)
    checkRowBuffers(format, tileSize, sizes, maxDecodeBytes)
    accepted = true
  }
  const decoder = await openDecoder(path, {
    maxPixels,
    maxTempBytes,
    maxDecodeBytes,
    tmpDir: options.tmpDir ?? tmpdir(),
    signal: options.signal,
    accept, // from the header, before libvips starts writing a temporary file
  })
  let pool: WorkerPool<CompressJob, CompressResult> | undefined
  let writer: BlockWriter | undefined
  try {
    if (!accepted) accept(decoder)
    const sizes = levelSizes(decoder.width, decoder.height)
    const shared = options.pool
    if (shared === undefined) pool = compressPool(options.workers)
    writer = await store.begin(options)
    // One codec for every level, chosen when level 0's first tile row is complete (when `auto`).
    const codecChoice: CodecChoice = { setting: codec, pixels: decoder.pixels }
    const builders = sizes.map(
      ([w, h], level) =>
        new LevelBuilder({
          writer: writer!,
          pool: shared ?? pool!,
          level,
          delta: options.delta,
          width: w,
          height: h,
          tileSize,
          format: decoder.format,
          codec: codecChoice,
          signal: options.signal,
        }),
    )
    const totalRows = builders[0]!.tileRows
    const level0 = builders[0]!
    for await (const band of decoder.bands(tileSize, { signal: options.signal, target: (bytes) => level0.target(bytes) })) {
      await feed(builders, 0, band)
      options.onProgress?.(Math.ceil((band.y + band.height) / tileSize), totalRows)
    }
    const levels: LevelEntry[] = []
    for (const builder of builders) levels.push(await builder.finish())
    const metadata: { source: { format: string; name: string }; icc?: CID; derivedFrom?: CID; canonicalVersion?: CID } = {
      source: { format: decoder.sourceFormat, name: basename(displayPath(path)) },
    }
    if (decoder.icc !== undefined && decoder.icc.length > 0) {
      const icc = rawBlock(decoder.icc)
      await writer.put(icc.cid, icc.bytes, options)
      metadata.icc = icc.cid
    }
    if (options.derivedFrom !== undefined) metadata.derivedFrom = options.derivedFrom
    if (options.canonicalVersion !== undefined) metadata.canonicalVersion = options.canonicalVersion
    const manifest: ImageManifest = {
      // §6.1: version 2 only when a tile is a delta, so that other images keep their CIDs.
      tessera: builders.some((builder) => builder.deltas > 0) ? DELTA_FORMAT_VERSION : FORMAT_VERSION,
      width: decoder.width,
      height: decoder.height,
      colorModel: decoder.format.colorModel,
      channels: decoder.format.channels,
      bitsPerSample: decoder.format.bitsPerSample,
      tileSize,
      codec: codecChoice.chosen!,
      levels,
      metadata: metadata satisfies ImageMetadata,
    }
    const root = encodeManifest(manifest)
    await writer.put(root.cid, root.bytes, options)
    writer.pin(root.cid, options.label ?? basename(displayPath(path)))
    await writer.commit(options)
    return { cid: root.cid, manifest, newBytes: writer.newBytes }
  } catch (error) {
    await writer?.abort()
    throw error
  } finally {
    await pool?.close()
    await decoder.close()
  }
}

// Bytes of one tile-row link in the root: a CIDv1 dag-cbor sha2-256 link (tag 42, 37-byte
// byte string with its prefix) plus slack; the rest of the root stays well under 4 KiB.
const ROOT_LINK_BYTES = 42
const ROOT_FIXED_BYTES = 4096
// Bytes of one tile in an index block: its link as above plus a length of up to 5 bytes.
const INDEX_TILE_BYTES = 47

/**
 * Every block must fit in MAX_BLOCK_BYTES (spec/format.md, Addresses). Checked before any
 * pixel is compressed: the worst-case payload of one tile, the root's list of tile rows,
 * and the ICC profile.
 */
function checkBlockLimits(format: PixelFormat, tileSize: number, sizes: Array<[number, number]>, icc: Uint8Array | undefined): void {
  const worst = maxPayloadBytes({ tileSize, channels: format.channels, bitsPerSample: format.bitsPerSample })
  if (worst > MAX_BLOCK_BYTES) {
    throw new InvalidArgumentError(
      `Tile size ${tileSize} is too large for ${bytesPerPixel(format)}-byte pixels: a tile could exceed the ${MAX_BLOCK_BYTES}-byte block limit`,
    )
  }
  const columns = Math.ceil(sizes[0]![0] / tileSize)
  if (columns * INDEX_TILE_BYTES + 64 > MAX_BLOCK_BYTES) {
    throw new LimitError(`The image is ${columns} tiles wide, too many for one ${MAX_BLOCK_BYTES}-byte index block: use a larger tile size`)
  }
  const rows = sizes.reduce((sum, [, h]) => sum + Math.ceil(h / tileSize), 0)
  if (ROOT_FIXED_BYTES + rows * ROOT_LINK_BYTES > MAX_BLOCK_BYTES) {
    throw new LimitError(
      `The image has ${rows} tile rows in all, too many for one ${MAX_BLOCK_BYTES}-byte root block: use a larger tile size`,
    )
  }
  if (icc !== undefined && icc.length > MAX_BLOCK_BYTES)
    throw new LimitError(`The ICC profile of ${icc.length} bytes exceeds the block limit`)
}

/**
 * Each level holds one tile row of its width (LevelBuilder): a wide image declared in a small
 * file (millions of pixels wide, under the pixel limit) would take gigabytes before its first
 * pixel is decoded. Their sum must fit in `maxDecodeBytes` (checked before any is allocated).
 */
function checkRowBuffers(format: PixelFormat, tileSize: number, sizes: Array<[number, number]>, maxDecodeBytes: number): void {
  const bytes = sizes.reduce((sum, [w, h]) => sum + w * Math.min(tileSize, h) * bytesPerPixel(format), 0)
  if (bytes > maxDecodeBytes) {
    throw new LimitError(
      `A ${sizes[0]![0]}-pixel-wide image needs ${bytes} bytes of tile rows at tile size ${tileSize}, more than the limit of ${maxDecodeBytes} (maxDecodeBytes): use a smaller tile size`,
    )
  }
}

/** Feeds a band of level `index` to its builder and, halved, to the levels below it. */
async function feed(builders: LevelBuilder[], index: number, band: Band): Promise<void> {
  const builder = builders[index]!
  const next = builders[index + 1]
  await builder.add(
    band,
    next === undefined
      ? undefined
      : // Halved straight into the next level's buffer when it has room: no band-sized garbage.
        (rows) =>
          feed(
            builders,
            index + 1,
            halveBand(rows, builder.width, builder.format.channels, builder.format.bitsPerSample, next.slot(halvedBytes(rows, builder))),
          ),
  )
}

/** Bytes of `rows` of `builder`'s level once halved. */
function halvedBytes(rows: Band, builder: LevelBuilder): number {
  return Math.ceil(builder.width / 2) * Math.ceil(rows.height / 2) * bytesPerPixel(builder.format)
}

interface LevelBuilderInit {
  readonly writer: BlockWriter
  readonly pool: WorkerPool<CompressJob, CompressResult>
  readonly level: number
  readonly delta?: DeltaTicket | undefined
  readonly width: number
  readonly height: number
  readonly tileSize: number
  readonly format: PixelFormat
  readonly codec: CodecChoice
  readonly signal?: AbortSignal | undefined
}

/** An import's codec: as asked, and as chosen from the image (codec-choice.ts) when level 0's first tile row is complete. */
interface CodecChoice {
  readonly setting: CodecSetting
  /** The whole image, when the decoder holds it (DecodedImage.pixels). */
  readonly pixels: Uint8Array | undefined
  chosen?: TileCodec
}

/** One compressed tile row: its blocks to write, in order, and its index block. */
interface CompressedRow {
  readonly tiles: CID[]
  readonly payloads: Uint8Array[]
  readonly index: Block
}

/**
 * Accumulates rows of one level into tile rows, compresses each tile row on the pool, and
 * writes its tiles and index block. One tile-row buffer per level: the decoder runs on its
 * own (libvips' threads, or reads that take milliseconds), so a second buffer to fill while
 * compressing would save little time and cost a tile row of memory.
 */
class LevelBuilder {
  readonly width: number
  readonly format: PixelFormat
  readonly tileRows: number
  /** Delta tiles written so far. */
  deltas = 0
  readonly #init: LevelBuilderInit
  readonly #rowBytes: number
  readonly #columns: number
  readonly #rows: CID[] = []
  // Shared memory lets worker threads read the rows without a copy.
  readonly #buffer: Uint8Array
  #filled = 0
  #nextY = 0
  #emitted = 0

  constructor(init: LevelBuilderInit) {
    this.#init = init
    this.width = init.width
    this.format = init.format
    this.#rowBytes = init.width * bytesPerPixel(init.format)
    this.#columns = Math.ceil(init.width / init.tileSize)
    this.tileRows = Math.ceil(init.height / init.tileSize)
    // An image shorter than a tile row needs only its own rows (checkRowBuffers counts these).
    this.#buffer = new Uint8Array(new SharedArrayBuffer(this.#rowBytes * Math.min(init.tileSize, init.height)))
  }

  /** A place for the next `bytes` bytes of rows, when they start a tile row: a decoder reads straight into it. */
  target(bytes: number): Uint8Array | undefined {
    return this.#filled === 0 ? this.slot(bytes) : undefined
  }

  /** Where the next `bytes` bytes of rows go, if they fit in the tile row being filled. */
  slot(bytes: number): Uint8Array | undefined {
    return this.#filled + bytes <= this.#buffer.length ? this.#buffer.subarray(this.#filled, this.#filled + bytes) : undefined
  }

  /**
   * Adds rows. Each tile row completed is compressed, written, and handed to `onTileRow`
   * (the next pyramid level) before its buffer is reused.
   */
  async add(band: Band, onTileRow?: (rows: Band) => Promise<void>): Promise<void> {
    if (band.y !== this.#nextY) throw new RangeError(`Expected row ${this.#nextY} but received ${band.y}`)
    this.#nextY += band.height
    const direct = band.data.buffer === this.#buffer.buffer && band.data.byteOffset === this.#buffer.byteOffset + this.#filled
    // Rows written straight into our buffer through target() or slot() need no copy.
    let offset = direct ? band.data.length : 0
    if (direct) this.#filled += band.data.length
    do {
      const take = Math.min(band.data.length - offset, this.#buffer.length - this.#filled)
      if (take > 0) this.#buffer.set(band.data.subarray(offset, offset + take), this.#filled)
      this.#filled += take
      offset += take
      const y = this.#emitted * this.#init.tileSize
      const rows = this.#filled / this.#rowBytes
      if (rows > 0 && (this.#filled === this.#buffer.length || y + rows === this.#init.height)) {
        const tileRow = await this.#emit(y, rows)
        await onTileRow?.(tileRow)
      }
    } while (offset < band.data.length)
  }

  /** Returns the level's manifest entry once every row was added. */
  async finish(): Promise<LevelEntry> {
    if (this.#nextY !== this.#init.height) throw new RangeError(`Level received ${this.#nextY} of ${this.#init.height} rows`)
    return { width: this.#init.width, height: this.#init.height, rows: this.#rows }
  }

  // Compresses and writes one tile row; rows are written in order, so a pack's layout
  // follows the image.
  async #emit(y: number, rows: number): Promise<Band> {
    const data = this.#buffer.subarray(0, rows * this.#rowBytes)
    const { tileSize, format } = this.#init
    const choice = this.#init.codec
    choice.chosen ??= chooseCodec(
      choice.setting,
      sampleRows({ band: data, width: this.width, rows, tileSize, ...format }, choice.pixels, this.#init.height),
    )
    const { tiles, payloads, index } =
      this.#init.delta === undefined ? await this.#compress(data, rows) : await this.#compressDelta(data, rows, y)
    const { writer, signal } = this.#init
    for (let i = 0; i < tiles.length; i++) await writer.put(tiles[i]!, payloads[i]!, { signal })
    await writer.put(index.cid, index.bytes, { signal })
    this.#rows.push(index.cid)
    this.#filled = 0
    this.#emitted++
    return { y, height: rows, data }
  }

  async #compress(band: Uint8Array, rows: number): Promise<CompressedRow> {
    const results = await this.#run(band, rows)
    const payloads = results.flatMap((result) => result.payloads)
    const tiles = results.flatMap((result) => result.digests).map((digest) => CID.createV1(RAW, Digest.create(SHA2_256, digest)))
    const index = encodeTileRow({ tiles, lengths: payloads.map((payload) => payload.length) })
    return { tiles, payloads, index }
  }

  /**
   * A tile row as deltas where they pay (spec/format.md §6.1), in the import run's order
   * (DeltaTicket): the positions' state is read and updated by this row's jobs alone.
   */
  async #compressDelta(band: Uint8Array, rows: number, y: number): Promise<CompressedRow> {
    const { delta, tileSize, format, level } = this.#init
    const codec = this.#init.codec.chosen!
    const shape = { tileSize, channels: format.channels, bitsPerSample: format.bitsPerSample }
    const { width, height } = this.#init
    const keyOf = (row: number) =>
      `${width}x${height}/${tileSize}/${format.channels}/${format.bitsPerSample}/${codec.predictor}/${codec.level}/${level}/${row}`
    const key = keyOf(y / tileSize)
    const ticket = delta!
    await ticket.turn(key)
    try {
      const states = ticket.context.row(key, this.#columns, shape)
      // Each tile against its own position's references, current and earlier: also trying the
      // positions above and below (a scroll) saved 1.6% of the bytes of 400 screenshots for 13%
      // of the import's speed.
      const slots = states.map((state) => slotOf(state))
      const results = await this.#run(
        band,
        rows,
        slots.map(([slot]) => slot),
      )
      const blocks = new Map<string, { cid: CID; payload: Uint8Array }>()
      const entries: StoredTileRef[] = []
      let column = 0
      for (const result of results) {
        for (const [i, kind] of result.kinds!.entries()) {
          const state = states[column]!
          const choices = slots[column++]![1]
          const entry = this.#entry(kind, state, choices, result.refs![i]!, result, i)
          state.lastTile = entry
          entries.push(entry)
          // Every block the row names is written in this import, as identical tiles are:
          // the store keeps what a transaction writes (spec/store.md §10).
          blocks.set(entry.cid.toString(), { cid: entry.cid, payload: entry.payload })
          if (entry.ref !== null) {
            this.deltas++
            blocks.set(entry.ref.cid.toString(), { cid: entry.ref.cid, payload: entry.ref.payload })
          }
        }
      }
      const index = encodeTileRow({
        tiles: entries.map((entry) => entry.cid),
        lengths: entries.map((entry) => entry.payload.length),
        refs: entries.map((entry) => entry.ref?.cid ?? null),
      })
      const written = [...blocks.values()]
      return { tiles: written.map((block) => block.cid), payloads: written.map((block) => block.payload), index }
    } catch (error) {
      // The jobs may have updated the positions' shared content: forget it rather than trust it.
      ticket.context.forget(key)
      throw error
    } finally {
      ticket.done(key)
    }
  }

  /**
   * How tile `i` of `result`, of kind `kind`, is stored (against `choices[choice]`, for kinds
   * ref and delta), updating the position's reference as the job did (compress.ts, deltaTile).
   */
  #entry(
    kind: number,
    state: PositionState,
    choices: readonly ReferenceTile[],
    choice: number,
    result: CompressResult,
    i: number,
  ): StoredTileRef {
    if (kind === TileKind.last) return state.lastTile!
    const ref = choices[choice]
    if (choice > 0) makeReference(state, ref!)
    if (kind === TileKind.ref) return { cid: ref!.cid, payload: ref!.payload, ref: null }
    const payload = result.payloads[i]!
    const cid = CID.createV1(RAW, Digest.create(SHA2_256, result.digests[i]!))
    if (kind === TileKind.delta) return { cid, payload, ref: ref! }
    if (kind === TileKind.plain) makeReference(state, { cid, payload, estimate: result.estimates![i]! })
    return { cid, payload, ref: null }
  }

  /** Runs the row's compression jobs on the pool, the columns split evenly between its threads. */
  async #run(band: Uint8Array, rows: number, slots?: readonly DeltaSlot[]): Promise<CompressResult[]> {
    const { pool, tileSize, format } = this.#init
    const codec = this.#init.codec.chosen!
    const maxRatio = this.#init.delta?.context.maxRatio ?? 1
    const columns = this.#columns
    const per = Math.ceil(columns / Math.max(1, Math.min(pool.size, columns)))
    const jobs: Array<Promise<CompressResult>> = []
    for (let first = 0; first < columns; first += per) {
      const count = Math.min(per, columns - first)
      const job = {
        band,
        width: this.width,
        rows,
        tileSize,
        channels: format.channels,
        bitsPerSample: format.bitsPerSample,
        codec,
        firstColumn: first,
        columns: count,
        ...(slots === undefined ? {} : { delta: { slots: slots.slice(first, first + count), maxRatio } }),
      }
      jobs.push(pool.run(job))
    }
    return Promise.all(jobs)
  }
}
