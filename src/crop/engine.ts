/**
 * The crop executor: reads only the index blocks and tiles a plan names, and yields the
 * region band by band (memory bounded by one band), or the stored payloads as they are.
 */
import { IntegrityError, InvalidArgumentError } from '../errors.js'
import type { CID } from '../format/block.js'
import { levelGeometry } from '../format/grid.js'
import type { Band, Region } from '../format/interface.js'
import { decodeTileRow, type ImageManifest, type TileRowIndex } from '../format/manifest.js'
import { type TileCoder, threadCoder, tileBytes } from '../format/tile-codec.js'
import type { AbortOptions, BlockStore } from '../store/interface.js'
import { decodeBand } from './decode.js'
import { type BandPlan, planCrop, tileRange, validateRegion } from './plan.js'
import { type Prefetched, prefetchRegion } from './prefetch.js'
import { copySlices, type TileCache, tileKey, wholeTilePlan } from './tile-cache.js'
import type { Segment } from './writers/interface.js'

/** Decoded index blocks an ImageReader keeps (a row of a 100k-pixel-wide image is ~20 KB). */
const INDEX_CACHE_ROWS = 256

/**
 * Compressed bytes of one band's tiles that a local read puts in the thread's scratch, at most
 * (wider bands read into buffers of their own): 2 MiB, 26 typical 256-pixel RGB tiles.
 */
const READ_SCRATCH_BYTES = 2 << 20
let scratch: Uint8Array | undefined

/**
 * The thread's buffer for the payloads of the band being decoded. Shared by every crop of the
 * thread: its bytes are read, verified and decoded with no await in between.
 */
function readScratch(): Uint8Array {
  scratch ??= new Uint8Array(READ_SCRATCH_BYTES)
  return scratch
}

/** Counters of what a crop read from the store. */
export interface CropStats {
  tilesRead: number
  tileBytesRead: number
  indexBlocksRead: number
}

/** A new, zeroed CropStats. */
export function emptyStats(): CropStats {
  return { tilesRead: 0, tileBytesRead: 0, indexBlocksRead: 0 }
}

/** Options of one read. */
export interface ReadOptions extends AbortOptions {
  /** Pyramid level, 0 = full resolution. */
  readonly level?: number
  /** Incremented as blocks are read. */
  readonly stats?: CropStats
  /** Decoded tiles to share with other reads (default the reader's `tileCache`, if any). */
  readonly tileCache?: TileCache
}

/** Adds tiles read from the store to `options.stats`. */
function countRead(options: ReadOptions, payloads: readonly Uint8Array[]): void {
  if (options.stats === undefined) return
  options.stats.tilesRead += payloads.length
  for (const payload of payloads) options.stats.tileBytesRead += payload.length
}

/** Reads regions of one stored image. Cheap to create; holds one tile decoder. */
export class ImageReader {
  readonly store: BlockStore
  readonly manifest: ImageManifest
  /** The image's root CID, when known (readers on other threads open the image by it). */
  readonly root: CID | undefined
  /**
   * Decoded tiles shared with other readers (a server sets its cache here); undefined: every
   * read decodes what it needs and keeps nothing.
   */
  tileCache: TileCache | undefined
  readonly #coder: TileCoder
  readonly #rows = new Map<string, TileRowIndex>()

  constructor(store: BlockStore, manifest: ImageManifest, root?: CID) {
    this.store = store
    this.manifest = manifest
    this.root = root
    this.#coder = threadCoder(
      { tileSize: manifest.tileSize, channels: manifest.channels, bitsPerSample: manifest.bitsPerSample },
      manifest.codec,
    )
  }

  /** Size and tile grid of a level; InvalidArgumentError if the image has no such level. */
  level(level = 0) {
    const entry = this.manifest.levels[level]
    if (!Number.isInteger(level) || entry === undefined) {
      throw new InvalidArgumentError(`Level ${level} does not exist: the image has levels 0 to ${this.manifest.levels.length - 1}`)
    }
    return { ...levelGeometry(entry.width, entry.height, this.manifest.tileSize), entry }
  }

  /** Loads the index block of one tile row (kept in a small cache: index blocks are immutable). */
  async tileRow(level: number, row: number, options: ReadOptions = {}): Promise<TileRowIndex> {
    const { entry, columns } = this.level(level)
    const key = `${level}/${row}`
    const cached = this.#rows.get(key)
    if (cached !== undefined) {
      // Refresh its place in the Map's insertion order: the first key is the least recent.
      this.#rows.delete(key)
      this.#rows.set(key, cached)
      return cached
    }
    const bytes = await this.store.get(entry.rows[row]!, options)
    if (options.stats) options.stats.indexBlocksRead++
    const index = decodeTileRow(bytes, columns, this.manifest.tessera)
    this.#rows.set(key, index)
    if (this.#rows.size > INDEX_CACHE_ROWS) this.#rows.delete(this.#rows.keys().next().value!)
    return index
  }

  /** The region's pixels, one band per intersecting tile row. Validates the region first. */
  async *bands(region: Region, options: ReadOptions = {}): AsyncGenerator<Band> {
    const level = options.level ?? 0
    const { width, height } = this.level(level)
    validateRegion(region, width, height)
    const { channels, bitsPerSample } = this.manifest
    const regionRowBytes = region.width * channels * (bitsPerSample / 8)
    // Remote stores: every index block, then every tile, asked for at once (./prefetch.ts).
    const ahead = await this.#prefetch(level, region, options)
    for (const band of planCrop(region, this.manifest.tileSize)) {
      options.signal?.throwIfAborted()
      const out = new Uint8Array(band.height * regionRowBytes)
      await this.#decodeBand(level, band, out, ahead, options)
      yield { y: band.regionY, height: band.height, data: out }
    }
  }

  /**
   * The region's pixels into `out`, rows contiguous (interleaved samples, 16-bit little-endian):
   * what `bands` yields, without a buffer per band. For readers that decode many regions into
   * buffers of their own (DecodePool). Validates the region first; `out` must hold it exactly.
   */
  async readInto(region: Region, out: Uint8Array, options: ReadOptions = {}): Promise<void> {
    const level = options.level ?? 0
    const { width, height } = this.level(level)
    validateRegion(region, width, height)
    const { channels, bitsPerSample } = this.manifest
    const regionRowBytes = region.width * channels * (bitsPerSample / 8)
    if (out.length !== region.height * regionRowBytes) {
      throw new InvalidArgumentError(`Expected a buffer of ${region.height * regionRowBytes} bytes but received ${out.length}`)
    }
    const ahead = await this.#prefetch(level, region, options)
    for (const band of planCrop(region, this.manifest.tileSize)) {
      options.signal?.throwIfAborted()
      await this.#decodeBand(
        level,
        band,
        out.subarray(band.regionY * regionRowBytes, (band.regionY + band.height) * regionRowBytes),
        ahead,
        options,
      )
    }
  }

  #prefetch(level: number, region: Region, options: ReadOptions): Promise<Prefetched | undefined> {
    if (this.store.remote !== true) return Promise.resolve(undefined)
    return prefetchRegion(this, level, region, (options.tileCache ?? this.tileCache) === undefined, options)
  }

  /** Decodes one band of a region into `out` (its rows, contiguous). */
  async #decodeBand(level: number, band: BandPlan, out: Uint8Array, ahead: Prefetched | undefined, options: ReadOptions): Promise<void> {
    const { tileSize, channels, bitsPerSample } = this.manifest
    const cache = options.tileCache ?? this.tileCache
    const index = await this.tileRow(level, band.row, options)
    const cids = band.slices.map((slice) => index.tiles[slice.column]!)
    const refs = band.slices.map((slice) => index.refs?.[slice.column] ?? null)
    if (cache !== undefined) {
      const tiles = await this.#cachedTiles(cache, cids, refs, options)
      copySlices(band, tiles, tileSize, channels * (bitsPerSample / 8), out, out.length / band.height)
      cache.release(tiles)
      return
    }
    // A local store reads the band's payloads into the thread's scratch, verified, and they
    // are decoded before any other read can run: no await in between (readScratch).
    const local = ahead === undefined && refs.every((ref) => ref === null) ? this.store.getManyInto?.(cids, readScratch()) : undefined
    if (local !== undefined) {
      countRead(options, local)
      decodeBand(this.#coder, band, local, out)
      return
    }
    const { payloads, references } = await (ahead?.take(band.row) ?? this.readTiles(cids, refs, options))
    decodeBand(this.#coder, band, payloads, out, references, references && refs.map((ref) => ref?.toString()))
  }

  /**
   * The payloads of the tiles `cids` and, for each that is a delta (`refs[i]` not null), of
   * its reference, in one batched, verified read (spec/format.md §6.1: at most two stored
   * tiles per output tile). A reference shared by several deltas is read once.
   */
  async readTiles(
    cids: readonly CID[],
    refs: ReadonlyArray<CID | null>,
    options: ReadOptions & { readonly unsafe?: boolean } = {},
  ): Promise<{ payloads: Uint8Array[]; references: Array<Uint8Array | undefined> | undefined }> {
    const extra = new Map<string, number>()
    const all = [...cids]
    for (const ref of refs) {
      if (ref === null || extra.has(ref.toString())) continue
      extra.set(ref.toString(), all.length)
      all.push(ref)
    }
    const blocks = options.unsafe === true ? await this.store.getManyUnsafe(all, options) : await this.store.getMany(all, options)
    countRead(options, blocks)
    const payloads = blocks.slice(0, cids.length)
    if (extra.size === 0) return { payloads, references: undefined }
    return { payloads, references: refs.map((ref) => (ref === null ? undefined : blocks[extra.get(ref.toString())!])) }
  }

  /**
   * The decoded whole tiles of `cids` (deltas against `refs`) through `cache`: read and
   * decoded here when no one has them. The read is not tied to this caller's signal, since
   * other reads may come to wait for the same tiles; the caller's abort takes effect when its
   * tiles arrive.
   */
  async #cachedTiles(cache: TileCache, cids: readonly CID[], refs: ReadonlyArray<CID | null>, options: ReadOptions): Promise<Uint8Array[]> {
    const { tileSize, channels, bitsPerSample } = this.manifest
    const keys = cids.map((cid, i) => tileKey(cid, tileSize, channels, bitsPerSample, this.#coder.codec.predictor, refs[i]))
    const tiles = await cache.getMany(keys, async (missing) => {
      const need = missing.map((i) => cids[i]!)
      const needRefs = missing.map((i) => refs[i] ?? null)
      const plan: BandPlan = wholeTilePlan(tileSize)
      const bytes = tileBytes(this.#coder.shape)
      // A local store reads plain tiles into the thread's scratch, verified, and they are decoded
      // before any other read can run (readScratch): no buffer per payload for the collector.
      const local = needRefs.every((ref) => ref === null) ? this.store.getManyInto?.(need, readScratch()) : undefined
      if (local !== undefined) {
        countRead(options, local)
        return local.map((payload) => {
          const tile = cache.allocate(bytes)
          decodeBand(this.#coder, plan, [payload], tile)
          return tile
        })
      }
      const { payloads, references } = await this.readTiles(need, needRefs, { stats: options.stats })
      return payloads.map((payload, j) => {
        const tile = cache.allocate(bytes)
        const reference = references?.[j]
        decodeBand(this.#coder, plan, [payload], tile, reference === undefined ? undefined : [reference])
        return tile
      })
    })
    if (options.signal?.aborted) {
      cache.release(tiles)
      options.signal.throwIfAborted()
    }
    return tiles
  }

  /**
   * For a region whose origin is on the tile grid, from its index blocks alone: the stored
   * payloads of its tiles (row-major), untouched, as segments (each read only when asked) and
   * as one stream (a tile row at a time).
   */
  async payloads(region: Region, options: ReadOptions = {}): Promise<{ segments: Segment[]; payloads: AsyncIterable<Uint8Array> }> {
    const level = options.level ?? 0
    const { width, height } = this.level(level)
    validateRegion(region, width, height)
    const { tileSize } = this.manifest
    if (region.x % tileSize !== 0 || region.y % tileSize !== 0) {
      throw new InvalidArgumentError(`Region origin ${region.x},${region.y} is not on the ${tileSize}-pixel tile grid`)
    }
    const { firstColumn, lastColumn, firstRow, lastRow } = tileRange(region, tileSize)
    const rows: CID[][] = []
    const segments: Segment[] = []
    const count = (blocks: Uint8Array[]) => {
      if (options.stats) {
        options.stats.tilesRead += blocks.length
        for (const block of blocks) options.stats.tileBytesRead += block.length
      }
      return blocks
    }
    const deltas: Array<Array<CID | null>> = []
    for (let row = firstRow; row <= lastRow; row++) {
      const index = await this.tileRow(level, row, options)
      const cids = index.tiles.slice(firstColumn, lastColumn + 1)
      const refs = cids.map((_, i) => index.refs?.[firstColumn + i] ?? null)
      rows.push(cids)
      deltas.push(refs)
      for (const [i, cid] of cids.entries()) {
        const ref = refs[i]!
        if (ref === null) {
          segments.push({
            length: index.lengths[firstColumn + i]!,
            read: async (signal) => count([await this.store.get(cid, { signal })])[0]!,
          })
          continue
        }
        // A delta tile is decoded and re-encoded plain (what a TIFF reader can decode). Its
        // length is needed now, its bytes later: encoding is deterministic, so it is encoded
        // twice rather than held (a region's deltas could be many).
        const length = (await this.#plainPayload(cid, ref, options)).length
        segments.push({
          length,
          read: async (signal) => {
            const payload = await this.#plainPayload(cid, ref, { signal, stats: options.stats })
            if (payload.length !== length) throw new IntegrityError(`Tile ${cid} re-encoded to ${payload.length} bytes, then ${length}`)
            return payload
          },
        })
      }
    }
    const store = this.store
    const plain = (cid: CID, ref: CID) => this.#plainPayload(cid, ref, options)
    async function* payloads(): AsyncGenerator<Uint8Array> {
      for (const [r, cids] of rows.entries()) {
        const refs = deltas[r]!
        if (refs.every((ref) => ref === null)) {
          yield* count(await store.getMany(cids, options))
          continue
        }
        for (const [i, cid] of cids.entries()) {
          const ref = refs[i]!
          yield ref === null ? count([await store.get(cid, options)])[0]! : await plain(cid, ref)
        }
      }
    }
    return { segments, payloads: payloads() }
  }

  /** The plain payload of delta tile `cid` (against `ref`): what a zstd TIFF reader decodes. */
  async #plainPayload(cid: CID, ref: CID, options: ReadOptions): Promise<Uint8Array> {
    const { payloads, references } = await this.readTiles([cid], [ref], options)
    const bytes = tileBytes(this.#coder.shape)
    const dictionary = this.#coder.decompress(references![0]!, new Uint8Array(bytes))
    const content = this.#coder.decompress(payloads[0]!, new Uint8Array(bytes), dictionary)
    return this.#coder.encodeContent(content)
  }
}
