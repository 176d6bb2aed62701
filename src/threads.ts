/**
 * A small pool of worker threads running one job function, in order of submission, on as
 * many threads as asked (0 runs jobs inline). Used for import compression and crop decoding.
 * Imports nothing from the rest of Tessera but its errors.
 */
import { availableParallelism } from 'node:os'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { parentPort, type Transferable, Worker } from 'node:worker_threads'
import { errorFromCode } from './errors.js'

// Workers hold almost nothing on their JS heaps (pixels live in ArrayBuffers): small young
// generations keep each thread's idle heap from costing tens of MiB of RSS.
const WORKER_LIMITS = { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 64 }
const WORKER_GARBAGE_BYTES = 8 << 20

/**
 * An error thrown inside a worker, as posted back: a class does not survive postMessage, so
 * its name, code, message and stack travel and `fromWire` rebuilds it.
 */
interface WireError {
  readonly name: string
  readonly code?: string
  readonly message: string
  readonly stack?: string
}

/** What the worker threw, as it can travel. */
function toWire(error: unknown): WireError {
  if (typeof error !== 'object' || error === null) return { name: 'Error', message: String(error) }
  const { name, code, message, stack } = error as { name?: unknown; code?: unknown; message?: unknown; stack?: unknown }
  return {
    name: typeof name === 'string' ? name : 'Error',
    message: typeof message === 'string' ? message : String(error),
    ...(typeof code === 'string' ? { code } : {}),
    ...(typeof stack === 'string' ? { stack } : {}),
  }
}

/**
 * The error again, on the pool's side: a Tessera code becomes its class (an IntegrityError for
 * ERR_INTEGRITY, spec/errors.md), anything else an Error with the same name and code. The
 * stack is the worker's: where it was thrown.
 */
function fromWire(wire: WireError): Error {
  const error =
    (wire.code === undefined ? undefined : errorFromCode(wire.code, wire.message)) ??
    Object.assign(new Error(wire.message), { name: wire.name }, wire.code === undefined ? {} : { code: wire.code })
  if (wire.stack !== undefined) error.stack = wire.stack
  return error
}

/** The default thread count: one per core (of `cores`, default all), at most 8. */
export function defaultThreads(cores: number = availableParallelism()): number {
  return Math.min(cores, 8)
}

/** Runs `Job`s through the function a worker module registers with `serveJobs`. */
export class WorkerPool<Job, Result> {
  readonly size: number
  readonly #url: URL
  readonly #inline: ((job: Job) => Result) | undefined
  readonly #workers: Worker[] = []
  readonly #idle: Worker[] = []
  readonly #queue: Array<{ job: Job; transfer: readonly Transferable[]; resolve: (r: Result) => void; reject: (e: unknown) => void }> = []
  readonly #pending = new Map<number, { resolve: (r: Result) => void; reject: (e: unknown) => void; worker: Worker }>()
  #nextId = 0
  #closing = false

  /**
   * `url`: the worker module (its `.js` build; under the test runner the `.ts` source is
   * loaded instead). `inline`: the same job function, for `size` 0.
   */
  constructor(init: { url: URL; size: number; inline: (job: Job) => Result }) {
    this.#url = init.url
    this.size = init.size
    this.#inline = init.inline
  }

  /** Runs one job; `transfer` lists buffers moved (not copied) to the worker. */
  run(job: Job, transfer: readonly Transferable[] = []): Promise<Result> {
    if (this.size === 0) {
      try {
        return Promise.resolve(this.#inline!(job))
      } catch (error) {
        return Promise.reject(error)
      }
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ job, transfer, resolve, reject })
      this.#dispatch()
    })
  }

  /** Stops every worker. */
  async close(): Promise<void> {
    this.#closing = true
    try {
      await Promise.all(this.#workers.map((worker) => worker.terminate()))
    } finally {
      this.#closing = false
    }
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
      const { job, transfer, resolve, reject } = this.#queue.shift()!
      const id = this.#nextId++
      this.#pending.set(id, { resolve, reject, worker })
      worker.postMessage({ id, job }, transfer as Transferable[])
    }
  }

  #spawn(): Worker {
    const url = this.#url
    const fromSource = import.meta.url.endsWith('.ts')
    const worker = fromSource
      ? // Under the test runner these modules are TypeScript source: load the worker through
        // tsx, whose loader hooks must be registered inside the worker itself.
        new Worker(
          `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(url.href.replace(/\.js$/, '.ts'))}) })`,
          { eval: true, resourceLimits: WORKER_LIMITS },
        )
      : new Worker(url, { resourceLimits: WORKER_LIMITS })
    worker.on('message', ({ id, result, error }: { id: number; result?: Result; error?: WireError }) => {
      const pending = this.#pending.get(id)
      if (pending === undefined) return
      this.#pending.delete(id)
      this.#idle.push(worker)
      if (error !== undefined) pending.reject(fromWire(error))
      else pending.resolve(result!)
      this.#dispatch()
    })
    worker.on('error', (error) => this.#fail(worker, error))
    // A worker that ends (process.exit, out of memory: 'error' comes first then) fails its job
    // and leaves the pool, so that the next job starts another instead of waiting forever.
    worker.on('exit', (code) => {
      this.#fail(worker, new Error(`A worker thread exited with code ${code}`))
      for (const list of [this.#workers, this.#idle]) {
        const at = list.indexOf(worker)
        if (at >= 0) list.splice(at, 1)
      }
      if (!this.#closing) this.#dispatch()
    })
    this.#workers.push(worker)
    return worker
  }

  #fail(worker: Worker, error: unknown): void {
    for (const [id, pending] of this.#pending) {
      if (pending.worker === worker) {
        this.#pending.delete(id)
        pending.reject(error)
      }
    }
  }
}

/** How a worker serves its jobs. */
export interface ServeJobsOptions {
  /** ArrayBuffers the worker may hold before it collects its heap (default 8 MiB; see garbageCollector). */
  readonly garbageBytes?: number
}

/**
 * In a worker module: answers the pool's jobs with `handle`, which returns (or resolves to)
 * the result and the buffers to transfer back. A worker runs one job at a time.
 */
export function serveJobs<Job, Result>(
  handle: (job: Job) => { result: Result; transfer?: Transferable[] } | Promise<{ result: Result; transfer?: Transferable[] }>,
  options: ServeJobsOptions = {},
): void {
  if (parentPort === null) return
  const collect = garbageCollector(options.garbageBytes ?? WORKER_GARBAGE_BYTES)
  parentPort.on('message', async ({ id, job }: { id: number; job: Job }) => {
    try {
      const { result, transfer } = await handle(job)
      parentPort?.postMessage({ id, result }, transfer ?? [])
    } catch (error) {
      parentPort?.postMessage({ id, error: toWire(error) })
    }
    collect()
  })
}

/**
 * Called after each job: every 4th job, collects the worker's heap if it holds more than
 * `garbageBytes` of ArrayBuffers. A worker allocates little JavaScript, so V8 rarely collects
 * on its own, and the buffers of finished jobs (inputs transferred in, outputs copied out,
 * tiles read) would wait for its external-memory trigger at 64 MiB per thread. Under
 * `bench:soak` the deflate workers' 8 MiB took ~30 MiB off the server's peak RSS
 * (bench/README.md, Soak). A full collection costs what the heap holds: well under a
 * millisecond for a deflate worker, 6-8 ms for a decode worker with a store open, whose crops
 * a collection every 8 MiB made 15% slower (so it asks for more). A young-generation
 * collection would be cheaper but leaves the buffers V8 has already promoted. The check
 * (process.memoryUsage, which also reads the RSS) costs ~0.01-0.02 ms. `gc` is reached as V8
 * exposes it to a new context once the flag is set: Node offers no other way inside a worker.
 */
function garbageCollector(garbageBytes: number): () => void {
  const gc = fullCollection()
  let jobs = 0
  return () => {
    if (++jobs % 4 === 0 && process.memoryUsage().arrayBuffers > garbageBytes) gc()
  }
}

/**
 * V8's full collection, as `gc` would be with --expose-gc (see garbageCollector): for code that
 * makes ArrayBuffer garbage faster than V8's external-memory trigger (64 MiB) collects it.
 */
export function fullCollection(): () => void {
  setFlagsFromString('--expose-gc')
  return runInNewContext('gc') as () => void
}
