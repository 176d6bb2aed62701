/**
 * What every route shares: the store, the limits, the work queues and a small cache of opened
 * images (their manifests and index blocks are immutable, so keeping them is always correct).
 */
import { availableParallelism, tmpdir } from 'node:os'
import { type BlockStore, DEFAULT_MAX_PIXELS, imageRootCid, openImage, type TesseraImage } from '../image.js'
import { WorkQueue } from './queue.js'

/** Server limits (spec/http.md, Limits). */
export interface HttpLimits {
  /**
   * Decode/encode jobs that run at once (crops, IIIF images, decoded tiles); default: two per
   * core. Tiles decode on the main thread; deflate and sharp's encoders run on libuv's threads,
   * and a job also waits on store reads and on the client, so a little more than one per core.
   */
  readonly concurrency: number
  /** Jobs that may wait for a slot; beyond, 503 ERR_BUSY. Default 256. */
  readonly queue: number
  /** Largest output width, height and area of IIIF images and of jpg/webp crops (default 8192, 8192, 2^24). */
  readonly maxWidth: number
  readonly maxHeight: number
  readonly maxArea: number
  /** Serve IIIF `^` sizes that upscale (default true). */
  readonly upscaling: boolean
  /** Largest upload body in bytes (default 2^31). */
  readonly maxUploadBytes: number
  /** Largest uploaded image in pixels (default the importer's 2^31). */
  readonly maxUploadPixels: number
  /** Imports that run at once (default 1) and that may wait (default 4). */
  readonly importConcurrency: number
  readonly importQueue: number
}

/** The defaults of HttpLimits. */
export function defaultLimits(): HttpLimits {
  return {
    concurrency: 2 * Math.max(1, availableParallelism()),
    queue: 256,
    maxWidth: 8192,
    maxHeight: 8192,
    maxArea: 2 ** 24,
    upscaling: true,
    maxUploadBytes: 2 ** 31,
    maxUploadPixels: DEFAULT_MAX_PIXELS,
    importConcurrency: 1,
    importQueue: 4,
  }
}

/** Construction parameters of the HTTP server. */
export interface ServerInit {
  /** The store to serve; the caller opens and closes it. */
  readonly store: BlockStore
  readonly limits?: Partial<HttpLimits>
  /**
   * The public base URL (scheme, host, optional path prefix) that absolute links use
   * (IIIF `id`, redirects). Default: taken from each request's Host header and protocol.
   */
  readonly publicUrl?: string
  /** Where uploads and large TIFF re-encodes spool (default the OS temp dir). */
  readonly tmpDir?: string
  /** Compression threads per import (default: the importer's, one per core). */
  readonly importWorkers?: number
  /** fastify's logger option (pino): false, true, or pino options. Default false. */
  readonly logger?: boolean | Record<string, unknown>
}

/** Images kept open (manifest + reader with its index-block cache). */
const IMAGE_CACHE = 64

/** State shared by the routes of one server. */
export class HttpContext {
  readonly store: BlockStore
  readonly limits: HttpLimits
  readonly work: WorkQueue
  readonly imports: WorkQueue
  readonly publicUrl: string | undefined
  readonly tmpDir: string
  readonly importWorkers: number | undefined
  readonly #images = new Map<string, Promise<TesseraImage>>()

  constructor(init: ServerInit) {
    this.store = init.store
    this.limits = { ...defaultLimits(), ...init.limits }
    this.work = new WorkQueue({ concurrency: this.limits.concurrency, maxQueued: this.limits.queue })
    this.imports = new WorkQueue({ concurrency: this.limits.importConcurrency, maxQueued: this.limits.importQueue })
    this.publicUrl = init.publicUrl?.replace(/\/+$/, '')
    this.tmpDir = init.tmpDir ?? tmpdir()
    this.importWorkers = init.importWorkers
  }

  /**
   * Opens the image whose root is `text` (the facade's openImage, cached): InvalidCidError for a
   * string that is not a CID or names a block that is not an image root, NotFoundError when
   * the root is not stored.
   */
  openImage(text: string): Promise<TesseraImage> {
    const cid = imageRootCid(text)
    const key = cid.toString()
    const cached = this.#images.get(key)
    if (cached !== undefined) {
      this.#images.delete(key)
      this.#images.set(key, cached)
      return cached
    }
    // Not under the request's signal: other requests may be waiting for the same opening.
    const opening = openImage(this.store, cid)
    this.#images.set(key, opening)
    // Failures are not cached: a missing image may be uploaded a moment later.
    opening.catch(() => this.#images.delete(key))
    if (this.#images.size > IMAGE_CACHE) this.#images.delete(this.#images.keys().next().value!)
    return opening
  }
}
