/**
 * A bounded work queue: at most `concurrency` jobs hold a slot, at most `maxQueued` wait for
 * one, and anything beyond is refused at once (503) rather than piling up memory. Decoding and
 * encoding happen only inside a slot, which is what bounds the server's memory under load.
 */
import { AbortError } from '../errors.js'
import { busy } from './errors.js'

/** Construction parameters of a WorkQueue. */
export interface WorkQueueInit {
  /** Jobs that may run at once (at least 1). */
  readonly concurrency: number
  /** Jobs that may wait for a slot; more are refused with ERR_BUSY. */
  readonly maxQueued: number
}

interface Waiter {
  readonly grant: (release: () => void) => void
}

/** A counting semaphore with a bounded FIFO of waiters. */
export class WorkQueue {
  readonly concurrency: number
  readonly maxQueued: number
  #running = 0
  readonly #waiting: Waiter[] = []

  constructor(init: WorkQueueInit) {
    if (!Number.isSafeInteger(init.concurrency) || init.concurrency < 1) throw new RangeError('concurrency must be a positive integer')
    if (!Number.isSafeInteger(init.maxQueued) || init.maxQueued < 0) throw new RangeError('maxQueued must be a non-negative integer')
    this.concurrency = init.concurrency
    this.maxQueued = init.maxQueued
  }

  /** Jobs holding a slot. */
  get running(): number {
    return this.#running
  }

  /** Jobs waiting for a slot. */
  get queued(): number {
    return this.#waiting.length
  }

  /**
   * Waits for a slot and returns its release function (idempotent). Throws ERR_BUSY when the
   * queue is full and AbortError when `signal` fires while waiting.
   */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(new AbortError())
    if (this.#running < this.concurrency) {
      this.#running++
      return Promise.resolve(this.#releaser())
    }
    if (this.#waiting.length >= this.maxQueued) return Promise.reject(busy())
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const at = this.#waiting.indexOf(waiter)
        if (at >= 0) this.#waiting.splice(at, 1)
        reject(new AbortError())
      }
      const waiter: Waiter = {
        grant: (release) => {
          signal?.removeEventListener('abort', onAbort)
          resolve(release)
        },
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.#waiting.push(waiter)
    })
  }

  /** Runs `job` inside a slot. */
  async run<T>(job: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const release = await this.acquire(signal)
    try {
      return await job()
    } finally {
      release()
    }
  }

  #releaser(): () => void {
    let released = false
    return () => {
      if (released) return
      released = true
      const next = this.#waiting.shift()
      // The slot passes straight to the next waiter: the running count does not change.
      if (next !== undefined) next.grant(this.#releaser())
      else this.#running--
    }
  }
}
