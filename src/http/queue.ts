/**
 * Budgets of the server's work (spec/http.md §8). A Budget is a counting semaphore over an
 * amount (jobs, bytes) with a bounded FIFO of waiters: beyond the queue a request is refused at
 * once (503) rather than piling up, and one that asks for more than the whole budget could never
 * run (413). A Lane pairs slots (jobs computing at once) with a memory budget (bytes held by the
 * responses in flight, reserved up front from an estimate): memory is bounded in bytes, not by a
 * count of requests, and a cheap lane and an expensive lane keep cheap requests from waiting
 * behind expensive ones.
 */
import { AbortError } from '../errors.js'
import { busy, overBudget } from './errors.js'

/** Gives back what was acquired; idempotent. */
export type Release = () => void

/** Construction parameters of a Budget. */
export interface BudgetInit {
  /** The amount available (at least 1). */
  readonly capacity: number
  /** Requests that may wait; more are refused with ERR_BUSY. */
  readonly maxQueued: number
  /** Retry-After of the ERR_BUSY answer, in seconds (default 1). */
  readonly retryAfter?: number
  /** What is budgeted, for messages (e.g. "bytes of the render memory budget"). */
  readonly unit?: string
  /** Longest wait in the queue, in ms: then ERR_BUSY (default: no limit). */
  readonly maxWait?: number
}

interface Waiter {
  readonly amount: number
  readonly grant: (release: Release) => void
}

/** A counting semaphore over an amount, with a bounded FIFO of waiters (the first waiter is served first: no starvation). */
export class Budget {
  readonly capacity: number
  readonly maxQueued: number
  readonly retryAfter: number
  readonly unit: string
  readonly maxWait: number | undefined
  #used = 0
  readonly #waiting: Waiter[] = []

  constructor(init: BudgetInit) {
    if (!Number.isSafeInteger(init.capacity) || init.capacity < 1) throw new RangeError('capacity must be a positive integer')
    if (!Number.isSafeInteger(init.maxQueued) || init.maxQueued < 0) throw new RangeError('maxQueued must be a non-negative integer')
    this.capacity = init.capacity
    this.maxQueued = init.maxQueued
    this.retryAfter = init.retryAfter ?? 1
    this.unit = init.unit ?? 'units'
    this.maxWait = init.maxWait
  }

  /** The amount held. */
  get used(): number {
    return this.#used
  }

  /** Requests waiting. */
  get queued(): number {
    return this.#waiting.length
  }

  /** Whether a request would have to wait (or be refused). */
  get saturated(): boolean {
    return this.#waiting.length > 0 || this.#used >= this.capacity
  }

  /**
   * Waits until `amount` is available and returns its release. Throws ERR_LIMIT (413) when
   * `amount` exceeds the capacity, ERR_BUSY (503) when the queue is full or the wait exceeds
   * `maxWait`, AbortError when `signal` fires while waiting.
   */
  acquire(amount: number, signal?: AbortSignal): Promise<Release> {
    if (signal?.aborted) return Promise.reject(new AbortError())
    let n: number
    try {
      n = this.#check(amount)
    } catch (error) {
      return Promise.reject(error)
    }
    const now = this.tryAcquire(n)
    if (now !== undefined) return Promise.resolve(now)
    if (this.#waiting.length >= this.maxQueued) return Promise.reject(busy(this.retryAfter))
    return new Promise((resolve, reject) => {
      const leave = (error: Error) => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        const at = this.#waiting.indexOf(waiter)
        if (at >= 0) this.#waiting.splice(at, 1)
        reject(error)
        // The head may have been the one blocking the others.
        this.#pump()
      }
      const onAbort = () => leave(new AbortError())
      // A wait longer than a client would wait is answered now: retry later.
      const timer = this.maxWait === undefined ? undefined : setTimeout(() => leave(busy(this.retryAfter)), this.maxWait)
      const waiter: Waiter = {
        amount: n,
        grant: (release) => {
          clearTimeout(timer)
          signal?.removeEventListener('abort', onAbort)
          resolve(release)
        },
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.#waiting.push(waiter)
    })
  }

  /** `amount` now if nobody waits and it is available, else undefined. Throws ERR_LIMIT above the capacity. */
  tryAcquire(amount: number): Release | undefined {
    const n = this.#check(amount)
    if (this.#waiting.length > 0 || this.#used + n > this.capacity) return undefined
    this.#used += n
    return this.#releaser(n)
  }

  #check(amount: number): number {
    const n = Math.max(0, Math.ceil(amount))
    if (!Number.isSafeInteger(n)) throw new RangeError(`Expected a non-negative amount but received ${amount}`)
    if (n > this.capacity) throw overBudget(`The request needs ${n} ${this.unit}, more than the server's budget of ${this.capacity}`)
    return n
  }

  #releaser(n: number): Release {
    let released = false
    return () => {
      if (released) return
      released = true
      this.#used -= n
      this.#pump()
    }
  }

  #pump(): void {
    while (this.#waiting.length > 0 && this.#used + this.#waiting[0]!.amount <= this.capacity) {
      const next = this.#waiting.shift()!
      this.#used += next.amount
      next.grant(this.#releaser(next.amount))
    }
  }
}

/** Construction parameters of a WorkQueue. */
export interface WorkQueueInit {
  /** Jobs that may run at once (at least 1). */
  readonly concurrency: number
  /** Jobs that may wait for a slot; more are refused with ERR_BUSY. */
  readonly maxQueued: number
  /** Retry-After of the ERR_BUSY answer, in seconds (default 1). */
  readonly retryAfter?: number
  /** Longest wait for a slot, in ms: then ERR_BUSY (default: no limit). */
  readonly maxWait?: number
}

/** A Budget of job slots: at most `concurrency` jobs at once, at most `maxQueued` waiting. */
export class WorkQueue {
  readonly concurrency: number
  readonly maxQueued: number
  readonly #slots: Budget

  constructor(init: WorkQueueInit) {
    if (!Number.isSafeInteger(init.concurrency) || init.concurrency < 1) throw new RangeError('concurrency must be a positive integer')
    this.#slots = new Budget({
      capacity: init.concurrency,
      maxQueued: init.maxQueued,
      retryAfter: init.retryAfter ?? 1,
      unit: 'slots',
      ...(init.maxWait === undefined ? {} : { maxWait: init.maxWait }),
    })
    this.concurrency = init.concurrency
    this.maxQueued = init.maxQueued
  }

  /** Jobs holding a slot. */
  get running(): number {
    return this.#slots.used
  }

  /** Jobs waiting for a slot. */
  get queued(): number {
    return this.#slots.queued
  }

  /** Whether a new job would have to wait (or be refused). */
  get saturated(): boolean {
    return this.#slots.saturated
  }

  /**
   * Waits for a slot and returns its release function (idempotent). Throws ERR_BUSY when the
   * queue is full and AbortError when `signal` fires while waiting.
   */
  acquire(signal?: AbortSignal): Promise<Release> {
    return this.#slots.acquire(1, signal)
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
}

/** Construction parameters of a Lane. */
export interface LaneInit {
  /** For logs and messages: "light", "heavy". */
  readonly name: string
  /** Jobs computing at once. */
  readonly concurrency: number
  /** Requests that may wait for memory, and jobs that may wait for a slot. */
  readonly maxQueued: number
  /** Bytes the lane's responses may hold at once. */
  readonly memory: number
  /** Retry-After of its ERR_BUSY answers, in seconds. */
  readonly retryAfter: number
  /** Longest wait for memory, in ms: then ERR_BUSY. */
  readonly maxWait: number
}

/**
 * Where a response that decodes or encodes pixels runs: it reserves its memory estimate from
 * `memory` for its whole life (until the response is sent or the client goes away), and holds
 * one of `slots` only while it computes, not while it waits for a slow client. A response that
 * has started does not time out waiting for a slot (it cannot answer 503 any more); one that
 * waits for its memory longer than `maxWait` gets 503.
 */
export class Lane {
  readonly name: string
  readonly slots: WorkQueue
  readonly memory: Budget

  constructor(init: LaneInit) {
    this.name = init.name
    this.slots = new WorkQueue({ concurrency: init.concurrency, maxQueued: init.maxQueued, retryAfter: init.retryAfter })
    this.memory = new Budget({
      capacity: init.memory,
      maxQueued: init.maxQueued,
      retryAfter: init.retryAfter,
      unit: `bytes of memory (${init.name} lane)`,
      maxWait: init.maxWait,
    })
  }
}
