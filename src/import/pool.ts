/** A small pool of worker threads running compressBand, so import uses every core. */
import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import { type CompressJob, type CompressResult, compressBand } from './compress.js'

// Workers hold almost nothing on their JS heaps (tiles live in ArrayBuffers): small young
// generations keep each thread's idle heap from costing tens of MiB of RSS.
const WORKER_LIMITS = { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 64 }

/** Runs compression jobs; `size` 0 runs them inline on the calling thread. */
export class CompressPool {
  readonly size: number
  readonly #workers: Worker[] = []
  readonly #idle: Worker[] = []
  readonly #queue: Array<{ job: CompressJob; resolve: (r: CompressResult) => void; reject: (e: Error) => void }> = []
  readonly #pending = new Map<number, { resolve: (r: CompressResult) => void; reject: (e: Error) => void; worker: Worker }>()
  #nextId = 0

  constructor(size = Math.min(availableParallelism(), 8)) {
    this.size = size
  }

  /** Compresses one job, on a worker when the pool has any. */
  run(job: CompressJob): Promise<CompressResult> {
    if (this.size === 0) {
      try {
        return Promise.resolve(compressBand(job))
      } catch (error) {
        return Promise.reject(error)
      }
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ job, resolve, reject })
      this.#dispatch()
    })
  }

  /** Stops every worker. */
  async close(): Promise<void> {
    await Promise.all(this.#workers.map((worker) => worker.terminate()))
    this.#workers.length = 0
    this.#idle.length = 0
  }

  #dispatch(): void {
    while (this.#queue.length > 0) {
      let worker = this.#idle.pop()
      if (worker === undefined) {
        if (this.#workers.length >= this.size) return
        worker = this.#spawn()
      }
      const { job, resolve, reject } = this.#queue.shift()!
      const id = this.#nextId++
      this.#pending.set(id, { resolve, reject, worker })
      worker.postMessage({ id, job })
    }
  }

  #spawn(): Worker {
    const worker = import.meta.url.endsWith('.ts')
      ? // Under the test runner this module is TypeScript source: load the worker through tsx,
        // whose loader hooks must be registered inside the worker itself.
        new Worker(
          `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(new URL('./compress-worker.ts', import.meta.url).href)}) })`,
          { eval: true, resourceLimits: WORKER_LIMITS },
        )
      : new Worker(new URL('./compress-worker.js', import.meta.url), { resourceLimits: WORKER_LIMITS })
    worker.on('message', ({ id, result, error }: { id: number; result?: CompressResult; error?: string }) => {
      const pending = this.#pending.get(id)
      if (pending === undefined) return
      this.#pending.delete(id)
      this.#idle.push(worker)
      if (error !== undefined) pending.reject(new Error(error))
      else pending.resolve(result!)
      this.#dispatch()
    })
    worker.on('error', (error) => {
      for (const [id, pending] of this.#pending) {
        if (pending.worker === worker) {
          this.#pending.delete(id)
          pending.reject(error)
        }
      }
    })
    this.#workers.push(worker)
    return worker
  }
}
