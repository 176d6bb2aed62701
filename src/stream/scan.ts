/**
 * Scan sharing: one sequential pass over the input feeds every region's writer. The decoder's
 * bands are cut into each region's bands (fresh buffers the writers own), handed over through a
 * one-band channel per region, so the scan runs at the pace of the slowest writer and memory
 * stays at a band per region. The scan starts when the first output is read and stops (releasing
 * the input) once the last region's last row is delivered, on the first error, or when every
 * output has been abandoned.
 */
import { AbortError, CorruptInputError } from '../errors.js'
import type { Band, Region } from '../format/interface.js'
import type { Delivery, RowDecoder, ScanPlan, StreamStats } from './interface.js'

/** The plan of `regions`: every row they need, and where reading can stop. */
export function scanPlan(regions: readonly Region[]): ScanPlan {
  let endRow = 0
  for (const region of regions) endRow = Math.max(endRow, region.y + region.height)
  return { regions, endRow }
}

/** Merged row ranges [start, end) the regions need, ascending. */
export function neededRows(plan: ScanPlan): Array<readonly [number, number]> {
  const ranges = plan.regions.map((r) => [r.y, r.y + r.height] as const).sort((a, b) => a[0] - b[0])
  const merged: Array<[number, number]> = []
  for (const [start, end] of ranges) {
    const last = merged[merged.length - 1]
    if (last !== undefined && start <= last[1]) last[1] = Math.max(last[1], end)
    else merged.push([start, end])
  }
  return merged
}

/** Cuts a row decoder's full-width bands into each region's bands. */
export async function* rowDeliveries(
  decoder: RowDecoder,
  plan: ScanPlan,
  stats: StreamStats,
  signal: AbortSignal | undefined,
): AsyncGenerator<readonly Delivery[]> {
  const pixel = decoder.format.channels * (decoder.format.bitsPerSample / 8)
  const rowBytes = decoder.width * pixel
  for await (const band of decoder.bands(plan, stats, signal)) {
    const step: Delivery[] = []
    plan.regions.forEach((region, index) => {
      const top = Math.max(band.y, region.y)
      const bottom = Math.min(band.y + band.height, region.y + region.height)
      if (top >= bottom) return
      const width = region.width * pixel
      const data = new Uint8Array((bottom - top) * width)
      for (let y = top; y < bottom; y++) {
        const from = (y - band.y) * rowBytes + region.x * pixel
        data.set(band.data.subarray(from, from + width), (y - top) * width)
      }
      step.push({ index, band: { y: top - region.y, height: bottom - top, data } })
    })
    if (step.length > 0) yield step
    if (band.y + band.height >= plan.endRow) return
  }
}

/** A one-band hand-over from the scan to one region's writer. */
class BandChannel implements AsyncIterable<Band> {
  #slot: Band | undefined
  #ended = false
  #failure: { readonly error: unknown } | undefined
  #abandoned = false
  #wakeTaker: (() => void) | undefined
  #wakePutter: (() => void) | undefined
  #iterated = false
  readonly #onFirstPull: () => void
  readonly #onAbandon: () => void

  constructor(onFirstPull: () => void, onAbandon: () => void) {
    this.#onFirstPull = onFirstPull
    this.#onAbandon = onAbandon
  }

  /** Whether the scan owes this channel nothing more. */
  get finished(): boolean {
    return this.#ended || this.#abandoned || this.#failure !== undefined
  }

  /** Hands `band` over, once the previous one has been taken (at once if the reader left). */
  async put(band: Band): Promise<void> {
    while (this.#slot !== undefined && !this.finished) await new Promise<void>((resolve) => (this.#wakePutter = resolve))
    if (this.finished) return
    this.#slot = band
    this.#wake()
  }

  end(): void {
    this.#ended = true
    this.#wake()
  }

  fail(error: unknown): void {
    if (this.finished) return
    this.#failure = { error }
    this.#slot = undefined
    this.#wake()
  }

  #wake(): void {
    const taker = this.#wakeTaker
    const putter = this.#wakePutter
    this.#wakeTaker = undefined
    this.#wakePutter = undefined
    taker?.()
    putter?.()
  }

  [Symbol.asyncIterator](): AsyncIterator<Band> {
    if (this.#iterated) throw new TypeError('A region channel can be read once')
    this.#iterated = true
    return {
      next: async (): Promise<IteratorResult<Band>> => {
        this.#onFirstPull()
        for (;;) {
          const band = this.#slot
          if (band !== undefined) {
            this.#slot = undefined
            this.#wake()
            return { done: false, value: band }
          }
          if (this.#failure !== undefined) throw this.#failure.error
          if (this.#ended || this.#abandoned) return { done: true, value: undefined }
          await new Promise<void>((resolve) => (this.#wakeTaker = resolve))
        }
      },
      return: async (): Promise<IteratorResult<Band>> => {
        if (!this.finished) {
          this.#abandoned = true
          this.#slot = undefined
          this.#wake()
          this.#onAbandon()
        }
        return { done: true, value: undefined }
      },
    }
  }
}

/** A scan of one input, running its decoder's deliveries into one channel per region. */
export class SharedScan {
  readonly channels: readonly BandChannel[]
  readonly done: Promise<void>
  readonly #plan: ScanPlan
  readonly #deliveries: () => AsyncIterable<readonly Delivery[]>
  readonly #release: () => Promise<void>
  #start!: () => void
  #stopping: { readonly reason: unknown } | undefined
  #started = false

  /**
   * `deliveries` is called once, when the first channel is read; `release` runs once the scan is
   * over (or when it is closed before it started).
   */
  constructor(plan: ScanPlan, deliveries: () => AsyncIterable<readonly Delivery[]>, release: () => Promise<void>) {
    this.#plan = plan
    this.#deliveries = deliveries
    this.#release = release
    const started = new Promise<void>((resolve) => (this.#start = resolve))
    this.channels = plan.regions.map(
      () =>
        new BandChannel(
          () => this.#begin(),
          () => this.#checkAbandoned(),
        ),
    )
    this.done = started.then(() => this.#run())
    // Failures reach the outputs' readers; `done` need not be awaited as well.
    this.done.catch(() => undefined)
  }

  #begin(): void {
    if (this.#started) return
    this.#started = true
    this.#start()
  }

  #checkAbandoned(): void {
    if (this.channels.every((channel) => channel.finished)) this.#stopping ??= { reason: undefined }
  }

  /** Stops the scan; channels still open fail with `reason` (default AbortError). */
  close(reason: unknown = new AbortError('The stream crop was closed')): Promise<void> {
    this.#stopping ??= { reason }
    for (const channel of this.channels) channel.fail(reason)
    this.#begin() // a scan never started still releases its input
    return this.done.catch(() => undefined)
  }

  async #run(): Promise<void> {
    const delivered = this.#plan.regions.map(() => 0)
    let failure: { readonly error: unknown } | undefined
    try {
      if (this.#stopping === undefined) {
        for await (const step of this.#deliveries()) {
          for (const { index, band } of step) {
            await this.channels[index]!.put(band)
            delivered[index]! += band.height
            if (delivered[index] === this.#plan.regions[index]!.height) this.channels[index]!.end()
          }
          if (this.#stopping !== undefined || this.channels.every((channel) => channel.finished)) break
        }
      }
      if (this.#stopping === undefined) {
        const short = this.#plan.regions.findIndex((region, i) => delivered[i]! < region.height && !this.channels[i]!.finished)
        if (short >= 0) throw new CorruptInputError(`The input ended before row ${this.#plan.regions[short]!.y + delivered[short]!}`)
      }
    } catch (error) {
      failure = { error }
      for (const channel of this.channels) channel.fail(error)
    } finally {
      await this.#release()
    }
    if (failure !== undefined) throw failure.error
    const reason = this.#stopping?.reason
    if (reason !== undefined) throw reason
  }
}
