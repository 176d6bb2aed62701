/**
 * Crops decoded on worker threads, so that concurrent crops use every core. When the image's
 * store can be opened by location (a directory or an S3 bucket: readers take no lock), a
 * worker does everything, index look-ups and reads included, and the calling thread only
 * posts the request. Otherwise the calling thread plans, loads index blocks and reads the
 * payloads, and a worker verifies, decompresses and un-predicts them. Either way the pixels
 * land in shared memory. A pool of no threads decodes on the calling thread (ImageReader.readInto).
 * Workers and inline reads alike read a local store's payloads into their thread's scratch
 * buffer rather than a buffer per tile: with one per tile, a worker's collector took a fifth
 * of a core beside it. Used for sampling, by programs that read many regions at once, and by
 * the CLI for crops and exports of 1024 tiles or more (`bands`); a server decodes on its own
 * thread, through its TileCache, and smaller CLI crops on theirs (ImageReader.bands).
 *
 * With a TileCache (the read's, else the reader's, else the pool's), the cache lives on the
 * calling thread and is the one the process's other readers share: this thread plans, looks
 * the tiles up, has the workers decode only the missing ones (whole, into shared memory, each
 * verified against its CID there) and copies the region out of the decoded tiles. So a tile
 * wanted by several concurrent reads is decoded once whichever threads they run on (workers
 * keep no tiles of their own).
 */

import type { CID } from '../format/block.js'
import type { Band, Region } from '../format/interface.js'
import { tileBytes } from '../format/tile-codec.js'
import { defaultThreads, WorkerPool } from '../threads.js'
import { type DecodeJob, decodeJob, type RegionJob, type RegionRead } from './decode-job.js'
import type { ImageReader, ReadOptions } from './engine.js'
import { type BandPlan, planCrop, validateRegion } from './plan.js'
import { copySlices, type TileCache, tileKey, wholeTilePlan } from './tile-cache.js'

/**
 * Rows `bands` decodes ahead of its caller, in bytes, at most (unless one band is larger): 96
 * MiB, four 22.7 MB bands of the 29566-pixel-wide benchmark image. A very wide image (a band of
 * 100k 16-bit RGBA pixels is 205 MB) is decoded a band at a time.
 */
const BANDS_AHEAD_BYTES = 96 << 20

/** Bands of `bandBytes` that DecodePool.bands keeps in flight on `threads` threads by default. */
export function bandsAhead(threads: number, bandBytes: number): number {
  return Math.max(1, Math.min(threads, Math.floor(BANDS_AHEAD_BYTES / bandBytes)))
}

/** Construction options of a DecodePool. */
export interface DecodePoolInit {
  /** Decoded tiles shared by its reads (and whoever else is given the cache); see the module comment. */
  readonly tileCache?: TileCache
}

/** Decodes whole regions on `size` threads (default: one per core, at most 8; 0 = inline). */
export class DecodePool {
  readonly #pool: WorkerPool<DecodeJob | RegionJob, true | RegionRead>
  readonly #tileCache: TileCache | undefined

  constructor(size = defaultThreads(), init: DecodePoolInit = {}) {
    this.#pool = new WorkerPool<DecodeJob | RegionJob, true | RegionRead>({
      url: new URL('./decode-worker.js', import.meta.url),
      size,
      inline: (job) => decodeJob(job as DecodeJob),
    })
    this.#tileCache = init.tileCache
  }

  /** Threads decoding (0: inline). */
  get size(): number {
    return this.#pool.size
  }

  /**
   * The region's pixels, rows contiguous (interleaved samples, 16-bit little-endian), in a
   * buffer of shared memory. For crops that fit in memory; stream large ones with
   * ImageReader.bands.
   */
  read(reader: ImageReader, region: Region, options: ReadOptions = {}): Promise<Uint8Array> {
    return this.#read(reader, region, options, false)
  }

  /** `read`; `owned`: the rows may come in memory of their own rather than shared (see RegionJob.out). */
  async #read(reader: ImageReader, region: Region, options: ReadOptions, owned: boolean): Promise<Uint8Array> {
    const level = options.level ?? 0
    const { width, height } = reader.level(level)
    validateRegion(region, width, height)
    const { tileSize, channels, bitsPerSample, codec } = reader.manifest
    const rowBytes = region.width * channels * (bitsPerSample / 8)
    const cache = options.tileCache ?? reader.tileCache ?? this.#tileCache
    if (cache !== undefined) return this.#readCached(cache, reader, region, options)
    if (this.size === 0) {
      // Inline: the reader's own path, which reads a local store's payloads into its scratch.
      const out = new Uint8Array(new SharedArrayBuffer(region.height * rowBytes))
      await reader.readInto(region, out, options)
      return out
    }
    const location = (reader.store as { location?: unknown }).location
    if (reader.root !== undefined && typeof location === 'string' && location !== 'memory:') {
      options.signal?.throwIfAborted()
      const out = owned ? undefined : new Uint8Array(new SharedArrayBuffer(region.height * rowBytes))
      const job: RegionJob = { kind: 'region', location, root: reader.root.toString(), level, region, rowBytes, ...(out && { out }) }
      const read = (await this.#pool.run(job)) as RegionRead
      if (options.stats) {
        options.stats.tilesRead += read.tiles
        options.stats.tileBytesRead += read.bytes
        options.stats.indexBlocksRead += read.indexBlocks
      }
      return out ?? read.pixels!
    }
    const bands: Array<DecodeJob['bands'][number]> = []
    for (const plan of planCrop(region, tileSize)) {
      options.signal?.throwIfAborted()
      const index = await reader.tileRow(level, plan.row, options)
      const cids = plan.slices.map((slice) => index.tiles[slice.column]!)
      const refs = plan.slices.map((slice) => index.refs?.[slice.column] ?? null)
      // Read here, verified by the worker, off this thread.
      bands.push(await unsafeBand(reader, plan, cids, refs, options))
    }
    const out = new Uint8Array(new SharedArrayBuffer(region.height * rowBytes))
    await this.#pool.run({ shape: { tileSize, channels, bitsPerSample }, codec, rowBytes, bands, out })
    return out
  }

  /**
   * The region's pixels band by band, in order, as ImageReader.bands yields them: each tile row
   * read as one region by a thread, `ahead` rows in flight (default one per thread, as many
   * as fit in BANDS_AHEAD_BYTES, at least one), so that a large crop or an export decodes on
   * every core while the caller writes. A band read on a worker comes back in memory of its
   * own, freed once the caller lets go of it.
   */
  async *bands(reader: ImageReader, region: Region, options: ReadOptions & { readonly ahead?: number } = {}): AsyncGenerator<Band> {
    const { width, height } = reader.level(options.level ?? 0)
    validateRegion(region, width, height)
    const plans = [...planCrop(region, reader.manifest.tileSize)]
    const { channels, bitsPerSample, tileSize } = reader.manifest
    const ahead = Math.max(1, options.ahead ?? bandsAhead(this.size, region.width * tileSize * channels * (bitsPerSample / 8)))
    const inFlight: Array<{ plan: BandPlan; data: Promise<Uint8Array> }> = []
    let next = 0
    const start = () => {
      const plan = plans[next++]!
      const data = this.#read(reader, { x: region.x, y: region.y + plan.regionY, width: region.width, height: plan.height }, options, true)
      // Awaited in order below; until then a failure must not count as unhandled.
      data.catch(() => {})
      inFlight.push({ plan, data })
    }
    try {
      while (inFlight.length < ahead && next < plans.length) start()
      while (inFlight.length > 0) {
        const { plan, data } = inFlight.shift()!
        const pixels = await data
        if (next < plans.length) start()
        yield { y: plan.regionY, height: plan.height, data: pixels }
      }
    } finally {
      // A consumer that stops early (or a failed band) leaves no read running behind it.
      await Promise.allSettled(inFlight.map(({ data }) => data))
    }
  }

  /** `read` through a tile cache: missing tiles decoded whole on the threads, the region copied out here. */
  async #readCached(cache: TileCache, reader: ImageReader, region: Region, options: ReadOptions): Promise<Uint8Array> {
    const level = options.level ?? 0
    const { tileSize, channels, bitsPerSample, codec } = reader.manifest
    const shape = { tileSize, channels, bitsPerSample }
    const pixelBytes = channels * (bitsPerSample / 8)
    const rowBytes = region.width * pixelBytes
    const plans = [...planCrop(region, tileSize)]
    const cids: CID[] = []
    const refs: Array<CID | null> = []
    for (const plan of plans) {
      options.signal?.throwIfAborted()
      const index = await reader.tileRow(level, plan.row, options)
      for (const slice of plan.slices) {
        cids.push(index.tiles[slice.column]!)
        refs.push(index.refs?.[slice.column] ?? null)
      }
    }
    const keys = cids.map((cid, i) => tileKey(cid, tileSize, channels, bitsPerSample, codec.predictor, refs[i]))
    // One look-up for the whole region, so that its missing tiles decode in parallel.
    const tiles = await cache.getMany(keys, async (missing) => {
      const need = missing.map((i) => cids[i]!)
      const needRefs = missing.map((i) => refs[i] ?? null)
      // Read here, verified by the workers; not under this read's signal: other reads may wait for these tiles too.
      const { payloads, references } = await reader.readTiles(need, needRefs, { stats: options.stats, unsafe: true })
      const bytes = tileBytes(shape)
      const plan = wholeTilePlan(tileSize)
      const jobs = Math.max(1, Math.min(this.size, need.length))
      const decoded: Uint8Array[] = new Array(need.length)
      await Promise.all(
        Array.from({ length: jobs }, async (_, j) => {
          // Tiles j, j + jobs, j + 2 jobs... decoded whole by one worker, back to back.
          const mine = need.map((_, k) => k).filter((k) => k % jobs === j)
          const out = new Uint8Array(new SharedArrayBuffer(mine.length * bytes))
          const bands = mine.map((k) => {
            const digests = [need[k]!.multihash.digest.slice()]
            const reference = references?.[k]
            if (reference === undefined) return { plan, payloads: [payloads[k]!], digests }
            digests.push(needRefs[k]!.multihash.digest.slice())
            return { plan, payloads: [payloads[k]!, reference], digests, refs: [1] }
          })
          await this.#pool.run({ shape, codec, rowBytes: tileSize * pixelBytes, bands, out })
          // Each tile in a buffer of its own, so that evicting one frees it.
          for (const [m, k] of mine.entries()) decoded[k] = out.slice(m * bytes, (m + 1) * bytes)
        }),
      )
      return decoded
    })
    try {
      options.signal?.throwIfAborted()
      const out = new Uint8Array(new SharedArrayBuffer(region.height * rowBytes))
      let at = 0
      for (const plan of plans) {
        const mine = tiles.slice(at, at + plan.slices.length)
        at += plan.slices.length
        copySlices(
          plan,
          mine,
          tileSize,
          pixelBytes,
          out.subarray(plan.regionY * rowBytes, (plan.regionY + plan.height) * rowBytes),
          rowBytes,
        )
      }
      return out
    } finally {
      cache.release(tiles)
    }
  }

  /** Stops the threads. */
  close(): Promise<void> {
    return this.#pool.close()
  }
}

/**
 * One band of a DecodeJob: the payloads of `cids` and of the references of its deltas, read
 * without verification (the worker verifies them against `digests`).
 */
async function unsafeBand(
  reader: ImageReader,
  plan: BandPlan,
  cids: readonly CID[],
  refs: ReadonlyArray<CID | null>,
  options: ReadOptions,
): Promise<DecodeJob['bands'][number]> {
  const { payloads, references } = await reader.readTiles(cids, refs, { ...options, unsafe: true })
  if (references === undefined) {
    // Copies: a digest is a view into its index block, which postMessage would clone whole.
    return { plan, payloads, digests: cids.map((cid) => cid.multihash.digest.slice()) }
  }
  const all = [...payloads]
  const digests = cids.map((cid) => cid.multihash.digest.slice())
  const at = new Map<string, number>()
  const indices = refs.map((ref, i) => {
    if (ref === null) return -1
    const key = ref.toString()
    let j = at.get(key)
    if (j === undefined) {
      j = all.length
      at.set(key, j)
      all.push(references[i]!)
      digests.push(ref.multihash.digest.slice())
    }
    return j
  })
  return { plan, payloads: all, digests, refs: indices }
}
