/**
 * Crops decoded on worker threads, so that concurrent crops use every core. When the image's
 * store can be opened by location (a directory or an S3 bucket: readers take no lock), a
 * worker does everything, index look-ups and reads included, and the calling thread only
 * posts the request. Otherwise the calling thread plans, loads index blocks and reads the
 * payloads, and a worker verifies, decompresses and un-predicts them. Either way the pixels
 * land in shared memory. Used for sampling and by servers; single crops in a CLI process
 * decode on their own thread (ImageReader.bands).
 */

import type { Region } from '../format/interface.js'
import { defaultThreads, WorkerPool } from '../threads.js'
import { type DecodeJob, decodeJob, type RegionJob, type RegionRead } from './decode-job.js'
import type { ImageReader, ReadOptions } from './engine.js'
import { planCrop, validateRegion } from './plan.js'

/** Decodes whole regions on `size` threads (default: one per core, at most 8; 0 = inline). */
export class DecodePool {
  readonly #pool: WorkerPool<DecodeJob | RegionJob, true | RegionRead>

  constructor(size = defaultThreads()) {
    this.#pool = new WorkerPool<DecodeJob | RegionJob, true | RegionRead>({
      url: new URL('./decode-worker.js', import.meta.url),
      size,
      inline: (job) => decodeJob(job as DecodeJob),
    })
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
  async read(reader: ImageReader, region: Region, options: ReadOptions = {}): Promise<Uint8Array> {
    const level = options.level ?? 0
    const { width, height } = reader.level(level)
    validateRegion(region, width, height)
    const { tileSize, channels, bitsPerSample, codec } = reader.manifest
    const rowBytes = region.width * channels * (bitsPerSample / 8)
    const location = (reader.store as { location?: unknown }).location
    if (this.size > 0 && reader.root !== undefined && typeof location === 'string' && location !== 'memory:') {
      options.signal?.throwIfAborted()
      const out = new Uint8Array(new SharedArrayBuffer(region.height * rowBytes))
      const job: RegionJob = { kind: 'region', location, root: reader.root.toString(), level, region, rowBytes, out }
      const read = (await this.#pool.run(job)) as RegionRead
      if (options.stats) {
        options.stats.tilesRead += read.tiles
        options.stats.tileBytesRead += read.bytes
      }
      return out
    }
    const bands: Array<DecodeJob['bands'][number]> = []
    for (const plan of planCrop(region, tileSize)) {
      options.signal?.throwIfAborted()
      const index = await reader.tileRow(level, plan.row, options)
      const cids = plan.slices.map((slice) => index.tiles[slice.column]!)
      // Read (where the store can say where blocks lie) and verified by the worker, off this thread.
      const store = reader.store
      const payloads = store.locateMany ? await store.locateMany(cids, options) : await store.getManyUnsafe(cids, options)
      if (options.stats) {
        options.stats.tilesRead += payloads.length
        for (const payload of payloads) options.stats.tileBytesRead += payload.length
      }
      // Copies: a digest is a view into its index block, which postMessage would clone whole.
      bands.push({ plan, payloads, digests: cids.map((cid) => cid.multihash.digest.slice()) })
    }
    const out = new Uint8Array(new SharedArrayBuffer(region.height * rowBytes))
    await this.#pool.run({ shape: { tileSize, channels, bitsPerSample }, codec, rowBytes, bands, out })
    return out
  }

  /** Stops the threads. */
  close(): Promise<void> {
    return this.#pool.close()
  }
}
