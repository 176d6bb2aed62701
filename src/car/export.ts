/**
 * CAR export (spec/dataset.md §10): a CARv1 (https://ipld.io/specs/transport/car/carv1/) with
 * one root and every block it reaches, each once, depth first with links in encoding order:
 * the layout `ipfs dag export` writes, so an IPFS node re-exports the same bytes.
 */
import { CarWriter } from '@ipld/car/writer'
import { walk } from '../dataset/walk.js'
import type { CID } from '../format/block.js'
import type { AbortOptions, BlockStore } from '../store/interface.js'

/** What an export wrote. */
export interface CarExportStats {
  blocks: number
  bytes: number
}

/** Options of exportCar. */
export interface CarExportOptions extends AbortOptions {
  /** Incremented as blocks are written. */
  readonly stats?: CarExportStats
}

/**
 * The CAR of the DAG under `root`, as a stream of bytes. Fails (mid-stream) with
 * ERR_NOT_FOUND or ERR_INTEGRITY if a block under the root is missing or damaged: write it
 * to a temporary file and keep it only when the stream ends.
 */
export function exportCar(store: BlockStore, root: CID, options: CarExportOptions = {}): AsyncIterable<Uint8Array> {
  return {
    async *[Symbol.asyncIterator]() {
      const { writer, out } = CarWriter.create([root])
      let stopped = false
      let failure: unknown
      const producer = (async () => {
        try {
          await walk(store, [root], {
            signal: options.signal,
            visit: async (cid, data) => {
              if (stopped) throw new Error('CAR export stopped by its reader')
              const bytes = data ?? (await store.get(cid, options))
              if (options.stats !== undefined) {
                options.stats.blocks++
                options.stats.bytes += bytes.length
              }
              await writer.put({ cid, bytes })
            },
          })
        } catch (error) {
          failure = error
        } finally {
          await writer.close()
        }
      })()
      const chunks = out[Symbol.asyncIterator]()
      try {
        for (;;) {
          const next = await chunks.next()
          if (next.done === true) break
          yield next.value
        }
      } finally {
        // The reader left early: stop the producer, and drain what it is blocked on.
        stopped = true
        for (let next = await chunks.next(); next.done !== true; next = await chunks.next()) {}
        await producer
      }
      if (failure !== undefined) throw failure
    },
  }
}
