/**
 * Decoded tiles shared by concurrent crops (a viewer's tiles, a sampler's overlapping crops,
 * a server's many clients): single-flight decoding, so that a tile asked for while it is being
 * decoded is decoded once, and a cache of decoded tiles bounded in bytes, least recently used
 * first out. One cache serves every reader and DecodePool of a process that is given it;
 * nothing uses one unless given it (the CLI does not).
 *
 * Tiles are keyed by their payload's CID with the shape and predictor that decode it: stored
 * blocks are immutable and verified on read, so a cached tile is never stale, and images that
 * share a tile share its entry. Cached tiles are read-only: readers copy out of them.
 *
 * Tiles decoded into buffers from `allocate` are recycled once evicted: a full cache then
 * decodes into the buffers it drops instead of allocating ~200 KB per miss, which otherwise
 * keeps the garbage collector busy (measured: 12.5% of a crop's time on random crops) and
 * fragments the heap. Every tile getMany returns is held for its caller until the caller hands
 * it back with `release` (once copied out); a held tile is never reused. A caller that does not
 * release only keeps its tiles from being recycled.
 */
import type { BandPlan } from './plan.js'

/** Counters since the cache was made. */
export interface TileCacheStats {
  /** Tiles asked for; always decoded + hits (+ those whose decoding failed). */
  requested: number
  /** Tiles decoded for the cache (each read and decoded once per miss). */
  decoded: number
  /** Tiles served without decoding: from the cache, or by joining a decode in flight. */
  hits: number
  /** Tiles dropped to stay within maxBytes. */
  evictions: number
  /** Bytes of decoded tiles held now (at most maxBytes). */
  bytes: number
  /** Tiles held now. */
  tiles: number
}

/** Construction parameters of a TileCache. */
export interface TileCacheInit {
  /** Largest total of decoded tile bytes kept; 0 keeps none (decoding stays single-flight). Default 64 MiB. */
  readonly maxBytes?: number
}

/** The default maxBytes: 64 MiB, about 340 decoded 256x256 RGB tiles. */
export const DEFAULT_TILE_CACHE_BYTES = 64 << 20

/** Evicted buffers kept for reuse: enough for the misses of a few crops at once. */
const FREE_BUFFERS = 64

/** A bounded, single-flight cache of decoded tiles (see the module comment). */
export class TileCache {
  readonly maxBytes: number
  /** Decoded tiles in least-recently-used-first order (a Map keeps insertion order). */
  readonly #tiles = new Map<string, Uint8Array>()
  readonly #inFlight = new Map<string, Promise<Uint8Array>>()
  readonly #stats: TileCacheStats = { requested: 0, decoded: 0, hits: 0, evictions: 0, bytes: 0, tiles: 0 }
  /** Evicted, unheld buffers from `allocate`, for the next decodes. */
  readonly #free: Uint8Array[] = []
  readonly #recyclable = new WeakSet<Uint8Array>()
  /** How many times each tile is held by getMany's callers (weak: an unreleased tile is still collected). */
  readonly #held = new WeakMap<Uint8Array, number>()
  /** Recyclable tiles evicted while held: free once the last hold ends. */
  readonly #evictedWhileHeld = new WeakSet<Uint8Array>()

  constructor(init: TileCacheInit = {}) {
    const maxBytes = init.maxBytes ?? DEFAULT_TILE_CACHE_BYTES
    if (!(Number.isSafeInteger(maxBytes) && maxBytes >= 0))
      throw new RangeError(`Expected a non-negative integer maxBytes, got ${maxBytes}`)
    this.maxBytes = maxBytes
  }

  /** A copy of the counters. */
  get stats(): TileCacheStats {
    return { ...this.#stats, tiles: this.#tiles.size }
  }

  /**
   * The decoded tiles of `keys`, in order: cached ones, ones being decoded for another caller
   * (awaited), and the rest from one call of `decode` with their indices in `keys` (so that
   * their reads batch), which must return one tile per index. A key repeated in `keys` is
   * decoded once. If `decode` fails, every caller waiting for those tiles gets its error and
   * nothing is cached.
   */
  async getMany(keys: readonly string[], decode: (missing: number[]) => Promise<Uint8Array[]>): Promise<Uint8Array[]> {
    this.#stats.requested += keys.length
    return this.#collect(keys, decode, (tile) => {
      this.#held.set(tile, (this.#held.get(tile) ?? 0) + 1)
      return tile
    })
  }

  /** Hands back tiles getMany gave (each as often as given), once copied out of: they may be recycled. */
  release(tiles: readonly Uint8Array[]): void {
    for (const tile of tiles) {
      const count = (this.#held.get(tile) ?? 1) - 1
      if (count > 0) {
        this.#held.set(tile, count)
        continue
      }
      this.#held.delete(tile)
      if (this.#evictedWhileHeld.delete(tile)) this.#recycle(tile)
    }
  }

  async #collect(
    keys: readonly string[],
    decode: (missing: number[]) => Promise<Uint8Array[]>,
    hold: (tile: Uint8Array) => Uint8Array,
  ): Promise<Uint8Array[]> {
    const results: Array<Uint8Array | Promise<Uint8Array>> = []
    const missing: number[] = []
    const settle: Array<{ resolve: (tile: Uint8Array) => void; reject: (error: unknown) => void }> = []
    for (const [i, key] of keys.entries()) {
      const cached = this.#tiles.get(key)
      if (cached !== undefined) {
        // Most recently used now: move it to the end of the Map's order.
        this.#tiles.delete(key)
        this.#tiles.set(key, cached)
        this.#stats.hits++
        results.push(hold(cached))
        continue
      }
      const flying = this.#inFlight.get(key)
      if (flying !== undefined) {
        this.#stats.hits++
        results.push(flying.then(hold))
        continue
      }
      const promise = new Promise<Uint8Array>((resolve, reject) => settle.push({ resolve, reject }))
      // Handled here: a failure reaches every waiter through the awaits below, not as unhandled.
      promise.catch(() => {})
      this.#inFlight.set(key, promise)
      missing.push(i)
      results.push(promise)
    }
    if (missing.length > 0) {
      let tiles: Uint8Array[]
      try {
        tiles = await decode(missing)
        if (tiles.length !== missing.length) throw new RangeError(`decode returned ${tiles.length} tiles for ${missing.length}`)
      } catch (error) {
        for (const [j, i] of missing.entries()) {
          this.#inFlight.delete(keys[i]!)
          settle[j]!.reject(error)
        }
        throw error
      }
      this.#stats.decoded += missing.length
      // This caller's hold, taken before any is inserted: inserting one may evict another.
      for (const tile of tiles) hold(tile)
      for (const [j, i] of missing.entries()) {
        const key = keys[i]!
        this.#inFlight.delete(key)
        this.#insert(key, tiles[j]!)
        settle[j]!.resolve(tiles[j]!)
      }
    }
    return Promise.all(results)
  }

  #recycle(tile: Uint8Array): void {
    if (this.#held.has(tile)) this.#evictedWhileHeld.add(tile)
    else if (this.#free.length < FREE_BUFFERS) this.#free.push(tile)
  }

  /**
   * A buffer of `bytes` to decode a tile into, inside a `decode` callback of getMany, right
   * before decoding (not before an await): an evicted tile's when one of that size is free, else
   * a new one (zero-filled). Its contents are undefined: the decoder must write every byte a
   * reader may copy.
   */
  allocate(bytes: number): Uint8Array {
    const at = this.#free.findIndex((buffer) => buffer.byteLength === bytes)
    const buffer = at < 0 ? new Uint8Array(bytes) : this.#free.splice(at, 1)[0]!
    this.#recyclable.add(buffer)
    return buffer
  }

  /** Drops every cached tile (decodes in flight finish for their callers; counters stay). */
  clear(): void {
    this.#tiles.clear()
    this.#stats.bytes = 0
  }

  #insert(key: string, tile: Uint8Array): void {
    if (tile.byteLength > this.maxBytes || this.#tiles.has(key)) return
    this.#tiles.set(key, tile)
    this.#stats.bytes += tile.byteLength
    while (this.#stats.bytes > this.maxBytes) {
      const [oldest, evicted] = this.#tiles.entries().next().value!
      this.#tiles.delete(oldest)
      this.#stats.bytes -= evicted.byteLength
      this.#stats.evictions++
      if (this.#recyclable.has(evicted)) this.#recycle(evicted)
    }
  }
}

/**
 * The cache key of a tile: its payload's CID and what decoding it depends on, including a
 * delta's reference (the same delta bytes against another reference are other pixels).
 */
export function tileKey(
  cid: { toString(): string },
  tileSize: number,
  channels: number,
  bitsPerSample: number,
  predictor: number,
  ref?: { toString(): string } | null,
): string {
  const key = `${tileSize}/${channels}/${bitsPerSample}/${predictor}/${cid.toString()}`
  return ref === undefined || ref === null ? key : `${key}/${ref.toString()}`
}

/** A plan that decodes one whole tile (every row and column), for decodeBand or a DecodeJob. */
export function wholeTilePlan(tileSize: number): BandPlan {
  return { row: 0, tileY: 0, regionY: 0, height: tileSize, slices: [{ column: 0, tileX: 0, regionX: 0, width: tileSize }] }
}

/**
 * Copies `band`'s rows out of decoded whole `tiles` (one per slice, in order) into `out`,
 * whose rows are `outStride` bytes apart: what decodeBand does, from decoded tiles.
 */
export function copySlices(
  band: BandPlan,
  tiles: readonly Uint8Array[],
  tileSize: number,
  pixelBytes: number,
  out: Uint8Array,
  outStride: number,
): void {
  const tileStride = tileSize * pixelBytes
  for (const [i, slice] of band.slices.entries()) {
    const tile = tiles[i]!
    const bytes = slice.width * pixelBytes
    for (let r = 0; r < band.height; r++) {
      const from = (band.tileY + r) * tileStride + slice.tileX * pixelBytes
      out.set(tile.subarray(from, from + bytes), r * outStride + slice.regionX * pixelBytes)
    }
  }
}
