/**
 * Crops decoded on worker threads, so that concurrent crops use every core. The calling
 * thread plans the region, loads index blocks and reads the payloads (microseconds each);
 * a worker verifies every payload against its CID and decompresses, un-predicts and copies
 * it straight into shared memory. Used for sampling and by servers; single crops in a CLI
 * process decode on their own thread (ImageReader.bands).
 */

import type { Region } from '../format/interface.js'
import { defaultThreads, WorkerPool } from '../threads.js'
import { type DecodeJob, decodeJob } from './decode-job.js'
import type { ImageReader, ReadOptions } from './engine.js'
import { planCrop, validateRegion } from './plan.js'

/** Decodes whole regions on `size` threads (default: one per core, at most 8; 0 = inline). */
export class DecodePool {
  readonly #pool: WorkerPool<DecodeJob, true>

  constructor(size = defaultThreads()) {
    this.#pool = new WorkerPool({ url: new URL('./decode-worker.js', import.meta.url), size, inline: decodeJob })
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
