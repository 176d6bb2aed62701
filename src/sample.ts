/**
 * Seeded random crops for machine learning (spec/sample.md): a pure planner that draws which
 * image and region every sample is from a seed, and an executor that crops them in index
 * order with a bounded window of reads in flight, plus the batch writers (one .npy array of
 * shape (count, height, width, channels), or the samples concatenated).
 */
import { availableParallelism } from 'node:os'
import type { ImageReader, ReadOptions } from './crop/engine.js'
import { loadVersion, resolveSpecifier } from './dataset/dataset.js'
import { parseSpecifier } from './dataset/names.js'
import { isDatasetVersion, listEntries } from './dataset/resolve.js'
import { iterateEntries, NodeCache } from './dataset/tree.js'
import { InvalidArgumentError, NotFoundError } from './errors.js'
import type { CID } from './format/block.js'
import type { PixelFormat, Region } from './format/interface.js'
import { bytesPerPixel, pixelFormat } from './format/pixel.js'
import { openImage, type TesseraImage } from './image.js'
import type { AbortOptions, BlockStore } from './store/interface.js'
import { defaultThreads } from './threads.js'

/**
 * The image list that `images` names (spec/sample.md §1.1), in order: a CID as is; a string is a
 * specifier (spec/dataset.md §7): a CID (an image, or every entry of a dataset version), `NAME`
 * (every entry of the dataset's newest version), `NAME/path` or `VERSION-CID/path` (that entry,
 * or every entry under that directory), entries in name order. Every specifier is parsed before
 * any is resolved; one that names no image is an error (NotFoundError).
 */
export async function sampleImages(store: BlockStore, images: readonly (CID | string)[], options: AbortOptions = {}): Promise<CID[]> {
  const specs = images.map((image) => (typeof image === 'string' ? { text: image, spec: parseSpecifier(image) } : image))
  const out: CID[] = []
  for (const item of specs) {
    if (!('spec' in item)) {
      out.push(item)
      continue
    }
    const { text, spec } = item
    if (spec.kind === 'cid') {
      if (!(await isDatasetVersion(store, spec.cid, options))) {
        out.push(spec.cid)
        continue
      }
    }
    const resolved = await resolveSpecifier(store, text, options)
    if (resolved.kind === 'cid') {
      // A dataset version named by its CID: every entry of it.
      const version = await loadVersion(store, resolved.cid, options)
      for await (const entry of iterateEntries(new NodeCache(store), version.entries, options)) out.push(entry.image)
      continue
    }
    const before = out.length
    for await (const item of listEntries(store, resolved, { ...options, recursive: true })) {
      if (item.kind === 'entry') out.push(item.entry.image)
    }
    if (out.length === before) throw new NotFoundError(`${text} names no image: the dataset is empty`)
  }
  return out
}

/** Decoding on every core, for `sampleCrops`' `decoder`. */
export { DecodePool } from './crop/decode-pool.js'

/**
 * Decode threads for one of `processes` sampling processes sharing a machine of `cores` cores
 * (the shards of one batch): alone, one per core (defaultThreads); else its share of the cores,
 * and none (decoding on the calling thread) when that share is one core or less. Two shard
 * processes on two cores with a decode thread per core each gave fewer samples/s than one
 * process; decoding on their own threads, 1.1-1.3x more (bench/README.md, One store, many processes).
 */
export function shardThreads(processes: number, cores: number = availableParallelism()): number {
  if (!Number.isSafeInteger(processes) || processes < 1) {
    throw new InvalidArgumentError(`Expected a positive integer for processes but received ${String(processes)}`)
  }
  if (processes === 1) return defaultThreads(cores)
  const share = Math.floor(cores / processes)
  return share <= 1 ? 0 : defaultThreads(share)
}

/** What planSamples needs to know of each image: the size of the sampled level and its tile size. */
export interface SampleSource {
  readonly width: number
  readonly height: number
  /** Tile edge in pixels; needed only with `align`. */
  readonly tileSize?: number
}

/** How to draw samples (spec/sample.md §2). */
export interface SamplePlanOptions {
  /** Edge of square samples; `width` and `height` override it. */
  readonly size?: number
  readonly width?: number
  readonly height?: number
  /** Number of samples, at least 1. */
  readonly count: number
  /** An integer from 0 to 2^32 - 1, or a string (hashed with FNV-1a, spec/sample.md §2.1). */
  readonly seed: number | string
  /** Draw origins on the tile grid only (x and y multiples of the tile size). Default false. */
  readonly align?: boolean
}

/**
 * Reads a whole region into one buffer. A DecodePool (src/crop/decode-pool.ts) is one: it
 * decodes on worker threads, so samples in flight decode on every core.
 */
export interface RegionDecoder {
  read(reader: ImageReader, region: Region, options?: ReadOptions): Promise<Uint8Array>
}

/** How to sample: the plan, plus where and how to read. */
export interface SampleOptions extends SamplePlanOptions, AbortOptions {
  /** Pyramid level the regions are drawn from and cropped at (default 0). */
  readonly level?: number
  /**
   * Samples read ahead of the consumer (default 4): memory is bounded by this many samples.
   * With a `decoder` of n threads, at least n keeps every thread busy.
   */
  readonly concurrency?: number
  /** Decodes each sample (default: ImageReader.bands on the calling thread). */
  readonly decoder?: RegionDecoder
  /**
   * Only the samples whose index is `index` modulo `count` (default: all): N processes given
   * shards 0..N-1 of one batch read it together, each its share, the regions drawn exactly as
   * one process would (spec/sample.md §4). For data loaders with several worker processes.
   */
  readonly shard?: { readonly index: number; readonly count: number }
}

/** One planned sample: which image (an index into the image list) and which region of it. */
export interface PlannedSample {
  readonly index: number
  readonly image: number
  readonly region: Region
}

/** One cropped sample. */
export interface Sample {
  readonly index: number
  readonly cid: CID
  /** In pixels of `level`. */
  readonly region: Region
  readonly level: number
  readonly format: PixelFormat
  /** Interleaved samples, rows top to bottom, 16-bit samples little-endian (spec/format.md §1). */
  readonly data: Uint8Array
}

/** Output formats of a sample batch. */
export type SampleFormat = 'npy' | 'raw'

/** A batch of samples whose images are open and checked: everything known before any pixel is read. */
export interface SampleBatch {
  /** The opened images, parallel to the list given (a CID listed twice is opened once). */
  readonly images: readonly TesseraImage[]
  readonly format: PixelFormat
  readonly width: number
  readonly height: number
  readonly count: number
  readonly level: number
  /** The plan: pure and repeatable, each call starts again from the seed. */
  plan(): Generator<PlannedSample>
  /** The samples in index order, each read through ImageReader.bands. */
  samples(options?: AbortOptions): AsyncGenerator<Sample>
}

const TWO_32 = 2 ** 32
const DEFAULT_CONCURRENCY = 4

/**
 * The regions of a batch, drawn from the seed (spec/sample.md §2): for each sample an image
 * uniformly from `sources`, then x and y uniformly over the valid origins (or the tile-grid
 * origins with `align`). Pure and deterministic. Throws InvalidArgumentError at call time.
 */
export function planSamples(sources: readonly SampleSource[], options: SamplePlanOptions): Generator<PlannedSample> {
  const { width, height } = sampleSize(options)
  const count = checkCount(options.count)
  const state = seedState(options.seed)
  const align = options.align === true
  if (sources.length === 0) throw new InvalidArgumentError('Expected at least one image to sample from')
  const ranges = sources.map((source, i) => {
    if (source.width < width || source.height < height) {
      throw new InvalidArgumentError(`Image ${i} is ${source.width}x${source.height}, smaller than the ${width}x${height} samples`)
    }
    const step = align ? (source.tileSize ?? 0) : 1
    if (!Number.isSafeInteger(step) || step < 1) throw new InvalidArgumentError(`Image ${i} has no tile size to align samples to`)
    // The valid origins are the multiples of `step` from 0 to (image size - sample size).
    const columns = Math.floor((source.width - width) / step) + 1
    const rows = Math.floor((source.height - height) / step) + 1
    // below() draws from at most 2^32 values.
    if (columns > TWO_32 || rows > TWO_32) throw new InvalidArgumentError(`Image ${i} has more than 2^32 origins in one direction`)
    return { step, columns, rows }
  })
  return plan(state, count, width, height, ranges)
}

function* plan(
  state: number,
  count: number,
  width: number,
  height: number,
  ranges: ReadonlyArray<{ step: number; columns: number; rows: number }>,
): Generator<PlannedSample> {
  const next = mulberry32(state)
  for (let index = 0; index < count; index++) {
    // The draw order is normative (spec/sample.md §2.3): image, then x, then y.
    const image = below(next, ranges.length)
    const { step, columns, rows } = ranges[image]!
    const x = below(next, columns) * step
    const y = below(next, rows) * step
    yield { index, image, region: { x, y, width, height } }
  }
}

/**
 * Opens every image once, checks that they share one pixel format and are at least as large
 * as the samples at `level`, and returns the batch; nothing is cropped yet.
 */
export async function openSampleBatch(store: BlockStore, images: readonly (CID | string)[], options: SampleOptions): Promise<SampleBatch> {
  const { width, height } = sampleSize(options)
  const count = checkCount(options.count)
  checkShard(options.shard)
  seedState(options.seed)
  const level = options.level ?? 0
  if (!Number.isSafeInteger(level) || level < 0) {
    throw new InvalidArgumentError(`Expected a non-negative integer for level but received ${String(level)}`)
  }
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY
  if (!Number.isSafeInteger(concurrency) || concurrency < 1) {
    throw new InvalidArgumentError(`Expected a positive integer for concurrency but received ${String(concurrency)}`)
  }
  if (images.length === 0) throw new InvalidArgumentError('Expected at least one image to sample from')
  const cids = await sampleImages(store, images, options)
  options.signal?.throwIfAborted()

  const opened = new Map<string, Promise<TesseraImage>>()
  const list = await Promise.all(
    cids.map((cid) => {
      const key = cid.toString()
      let image = opened.get(key)
      if (image === undefined) {
        image = openImage(store, cid, options)
        opened.set(key, image)
      }
      return image
    }),
  )
  const first = list[0]!.manifest
  const format = pixelFormat(first.colorModel, first.bitsPerSample)
  const sources = list.map((image) => {
    const { manifest } = image
    if (manifest.colorModel !== format.colorModel || manifest.bitsPerSample !== format.bitsPerSample) {
      throw new InvalidArgumentError(
        `Images of one batch must share a pixel format: ${list[0]!.cid} is ${formatName(format)}, ${image.cid} is ${manifest.colorModel} ${manifest.bitsPerSample}-bit`,
      )
    }
    const size = image.reader.level(level)
    if (size.width < width || size.height < height) {
      throw new InvalidArgumentError(
        `Image ${image.cid} is ${size.width}x${size.height} at level ${level}, smaller than the ${width}x${height} samples`,
      )
    }
    return { width: size.width, height: size.height, tileSize: manifest.tileSize }
  })
  const planOptions: SamplePlanOptions = { width, height, count, seed: options.seed, align: options.align === true }
  planSamples(sources, planOptions) // validates once, so plan() cannot throw later
  const shard = options.shard ?? { index: 0, count: 1 }

  const batch: SampleBatch = {
    images: list,
    format,
    width,
    height,
    count: shard.index < count ? Math.ceil((count - shard.index) / shard.count) : 0,
    level,
    plan: function* () {
      for (const planned of planSamples(sources, planOptions)) if (planned.index % shard.count === shard.index) yield planned
    },
    samples: (sampleOptions = {}) => readSamples(batch, concurrency, options.decoder, sampleOptions.signal ?? options.signal),
  }
  return batch
}

/**
 * The samples of a batch in index order (spec/sample.md): opens each image once, checks the
 * whole batch before reading any tile, then crops with up to `concurrency` samples in flight.
 * Throws InvalidArgumentError at call time for bad options; image problems (too small, mixed
 * pixel formats, a missing level) fail the first `next()` with ERR_INVALID_ARGUMENT.
 */
export function sampleCrops(store: BlockStore, images: readonly (CID | string)[], options: SampleOptions): AsyncIterable<Sample> {
  sampleSize(options)
  checkCount(options.count)
  checkShard(options.shard)
  seedState(options.seed)
  if (images.length === 0) throw new InvalidArgumentError('Expected at least one image to sample from')
  return (async function* () {
    const batch = await openSampleBatch(store, images, options)
    yield* batch.samples()
  })()
}

async function* readSamples(
  batch: SampleBatch,
  concurrency: number,
  decoder: RegionDecoder | undefined,
  outer: AbortSignal | undefined,
): AsyncGenerator<Sample> {
  // Reads still in flight when the consumer stops are cancelled through this controller.
  const controller = new AbortController()
  const signal = outer === undefined ? controller.signal : AbortSignal.any([outer, controller.signal])
  const pixel = bytesPerPixel(batch.format)
  const plan = batch.plan()
  const window: Array<Promise<Sample>> = []
  const fill = () => {
    while (window.length < concurrency) {
      const next = plan.next()
      if (next.done === true) return
      const read = readSample(batch, next.value, pixel, decoder, signal)
      // Rejections are observed when the sample's turn comes; until then they must not be "unhandled".
      read.catch(() => {})
      window.push(read)
    }
  }
  try {
    signal.throwIfAborted()
    fill()
    while (window.length > 0) {
      const sample = await window.shift()!
      // Samples read ahead are not handed out once the caller has cancelled.
      signal.throwIfAborted()
      fill()
      yield sample
    }
  } finally {
    controller.abort()
  }
}

async function readSample(
  batch: SampleBatch,
  planned: PlannedSample,
  pixel: number,
  decoder: RegionDecoder | undefined,
  signal: AbortSignal,
): Promise<Sample> {
  const image = batch.images[planned.image]!
  const { region } = planned
  const sample = { index: planned.index, cid: image.cid, region, level: batch.level, format: batch.format }
  if (decoder !== undefined) return { ...sample, data: await decoder.read(image.reader, region, { level: batch.level, signal }) }
  const rowBytes = region.width * pixel
  let data: Uint8Array | undefined
  for await (const band of image.reader.bands(region, { level: batch.level, signal })) {
    // A sample within one tile row arrives as one band: hand that buffer over as it is.
    if (band.height === region.height) {
      data = band.data
      break
    }
    data ??= new Uint8Array(rowBytes * region.height)
    data.set(band.data, band.y * rowBytes)
  }
  return { ...sample, data: data! }
}

/**
 * The batch as one file, streamed sample by sample: `npy` is one NumPy array of shape
 * (count, height, width, channels), dtype |u1 or <u2 (header first: the shape is known up
 * front); `raw` is the samples concatenated, with no header (spec/sample.md §3).
 */
export async function* writeSamples(batch: SampleBatch, format: SampleFormat, options: AbortOptions = {}): AsyncGenerator<Uint8Array> {
  if (format !== 'npy' && format !== 'raw') throw new InvalidArgumentError(`Expected npy or raw but received ${String(format)}`)
  if (format === 'npy') yield npyBatchHeader([batch.count, batch.height, batch.width, batch.format.channels], batch.format)
  for await (const sample of batch.samples(options)) yield sample.data
}

/** Data starts at a multiple of this, as numpy's own writer pads (ARRAY_ALIGN in numpy/lib/format.py). */
const NPY_ALIGN = 64

/** A version 1.0 .npy header for a C-order array of `shape` (see src/crop/writers/npy.ts). */
function npyBatchHeader(shape: readonly number[], format: PixelFormat): Uint8Array {
  const descr = format.bitsPerSample === 8 ? '|u1' : '<u2'
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}), }`
  const unpadded = 10 + dict.length + 1
  const total = Math.ceil(unpadded / NPY_ALIGN) * NPY_ALIGN
  if (total - 10 > 0xffff) throw new InvalidArgumentError('NumPy header too long for format version 1.0')
  const header = new Uint8Array(total)
  header.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0])
  new DataView(header.buffer).setUint16(8, total - 10, true)
  header.set(new TextEncoder().encode(`${dict}${' '.repeat(total - unpadded)}\n`), 10)
  return header
}

/** The 32-bit generator state of a seed (spec/sample.md §2.1). */
function seedState(seed: number | string): number {
  if (typeof seed === 'string') {
    // FNV-1a, 32-bit, over the UTF-8 bytes: http://www.isthe.com/chongo/tech/comp/fnv/
    let hash = 0x811c9dc5
    for (const byte of new TextEncoder().encode(seed)) hash = Math.imul(hash ^ byte, 0x01000193) >>> 0
    return hash
  }
  if (typeof seed !== 'number' || !Number.isInteger(seed) || seed < 0 || seed >= TWO_32) {
    throw new InvalidArgumentError(`Expected an integer from 0 to 4294967295 or a string for seed but received ${String(seed)}`)
  }
  return seed
}

/** mulberry32 (Tommy Ettinger, 2017), returning the full 32-bit output: spec/sample.md §2.2. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = Math.imul(a ^ (a >>> 15), a | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return (t ^ (t >>> 14)) >>> 0
  }
}

/** A uniform integer in [0, n), 1 <= n <= 2^32, by rejection so that it has no modulo bias. */
function below(next: () => number, n: number): number {
  const limit = TWO_32 - (TWO_32 % n)
  for (;;) {
    const value = next()
    if (value < limit) return value % n
  }
}

function sampleSize(options: SamplePlanOptions): { width: number; height: number } {
  const width = options.width ?? options.size
  const height = options.height ?? options.size
  for (const [name, value] of [
    ['width', width],
    ['height', height],
  ] as const) {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
      throw new InvalidArgumentError(`Expected a positive integer for sample ${name} (or size) but received ${String(value)}`)
    }
  }
  return { width: width!, height: height! }
}

function checkCount(count: number): number {
  if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 1) {
    throw new InvalidArgumentError(`Expected a positive integer for count but received ${String(count)}`)
  }
  return count
}

function formatName(format: PixelFormat): string {
  return `${format.colorModel} ${format.bitsPerSample}-bit`
}

function checkShard(shard: SampleOptions['shard']): void {
  if (shard === undefined) return
  const { index, count } = shard
  if (!Number.isSafeInteger(count) || count < 1 || !Number.isSafeInteger(index) || index < 0 || index >= count) {
    throw new InvalidArgumentError(`Expected a shard index from 0 to count - 1 but received ${String(index)}/${String(count)}`)
  }
}
