/** The importer's compression threads: compressBand on a WorkerPool, so import uses every core. */
import { defaultThreads, WorkerPool } from '../threads.js'
import { type CompressJob, type CompressResult, compressBand } from './compress.js'

/** A pool of `size` compression threads (default: one per core, at most 8; 0 = inline). */
export function compressPool(size = defaultThreads()): WorkerPool<CompressJob, CompressResult> {
  return new WorkerPool({ url: new URL('./compress-worker.js', import.meta.url), size, inline: compressBand })
}
