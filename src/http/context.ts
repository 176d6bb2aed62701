/**
 * What every route shares: the store, the limits, the lanes and queues, and a small cache of opened
 * images (their manifests and index blocks are immutable, so keeping them is always correct).
 */
import { availableParallelism, tmpdir } from 'node:os'
import { loadVersion, resolveImage, resolveSpecifier } from '../dataset/dataset.js'
import type { DatasetVersion } from '../dataset/interface.js'
import { isDatasetName, parseSpecifier } from '../dataset/names.js'
import { isDatasetVersion } from '../dataset/resolve.js'
import { InvalidCidError, NotFoundError, TesseraError } from '../errors.js'
import { type BlockStore, DEFAULT_UPLOAD_MAX_PIXELS, imageRootCid, openImage, type TesseraImage, TileCache } from '../image.js'
import type { SizeLimits } from './iiif/params.js'
import { imageLimits } from './iiif/render.js'
import { Budget, Lane, WorkQueue } from './queue.js'

/** Server limits (spec/http.md §8). Times are in milliseconds, sizes in bytes. */
export interface HttpLimits {
  /**
   * Jobs of the light lane that compute at once (crops, tiles, small IIIF images); default two
   * per core. Tiles decode on the main thread; deflate runs on the deflate worker threads and
   * sharp's encoders on libuv's, and a job also waits on store reads, so a little more than one
   * per core. A job holds its slot only while it computes, not while it waits for a slow client.
   */
  readonly concurrency: number
  /** Light requests that may wait for memory or a slot; beyond, 503 ERR_BUSY. Default 256. */
  readonly queue: number
  /**
   * Bytes that light responses in flight may hold, each reserving its estimate up front
   * (default 32 MiB). A response over a quarter of it is heavy.
   */
  readonly memoryBudget: number
  /**
   * The heavy lane: bodies computed whole (IIIF images, jpg/webp crops) that read or produce
   * more than `heavyPixels` pixels (default 2^22) or need more than a quarter of `memoryBudget`.
   * They run `heavyConcurrency` at once (default 1), `heavyQueue` may wait (default 4; beyond,
   * 503 with Retry-After 2), and hold at most `heavyMemoryBudget` bytes together (default 48
   * MiB, which also lowers the maxArea info.json states); one that needs more can never run:
   * 413 ERR_LIMIT.
   */
  readonly heavyPixels: number
  readonly heavyConcurrency: number
  readonly heavyQueue: number
  readonly heavyMemoryBudget: number
  /**
   * Bytes that large streamed crops and exports may hold together (default 80 MiB; exporting a
   * 30000-pixel-wide RGB level needs 66): those over the heavy thresholds stream in a lane of
   * their own, with the heavy lane's slot and queue sizes, so that clients slow to read them
   * hold this budget, not the renders' or the light requests'.
   */
  readonly bulkMemoryBudget: number
  /** Longest wait for memory before 503 (default 10 s): a client would have given up. */
  readonly queueTimeout: number
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
  /** Imports that run at once (default 1) and received bodies that may wait for them, on disk (default 16). */
  readonly importConcurrency: number
  readonly importQueue: number
  /** Bytes of upload bodies on disk at once, received or receiving (default twice `maxUploadBytes`). */
  readonly uploadSpoolBytes: number
  /** A request's header section must arrive within this (default 10 s): else 408 and the connection closes. */
  readonly headersTimeout: number
  /** Longest pause inside a request body (default 30 s): else 408 ERR_TIMEOUT and the connection closes. */
  readonly bodyTimeout: number
  /** Longest a response may wait for its client to read (default 30 s): then the connection is closed. */
  readonly sendTimeout: number
  /** Open connections at most (default 1024); more are closed as they arrive. */
  readonly maxConnections: number
}

const MiB = 2 ** 20

/** The decoded-tile cache of a server, unless told otherwise (ServerInit.tileCacheBytes). */
const SERVER_TILE_CACHE_BYTES = 24 * MiB

/** The defaults of HttpLimits. */
export function defaultLimits(): HttpLimits {
  return {
    concurrency: 2 * Math.max(1, availableParallelism()),
    queue: 256,
    memoryBudget: 32 * MiB,
    heavyPixels: 2 ** 22,
    heavyConcurrency: 1,
    heavyQueue: 4,
    heavyMemoryBudget: 48 * MiB,
    bulkMemoryBudget: 80 * MiB,
    queueTimeout: 10_000,
    maxWidth: 8192,
    maxHeight: 8192,
    maxArea: 2 ** 24,
    upscaling: true,
    maxUploadBytes: 2 ** 31,
    maxUploadPixels: DEFAULT_UPLOAD_MAX_PIXELS,
    importConcurrency: 1,
    importQueue: 16,
    uploadSpoolBytes: 2 ** 32,
    headersTimeout: 10_000,
    bodyTimeout: 30_000,
    sendTimeout: 30_000,
    maxConnections: 1024,
  }
}

/** What a response that decodes or encodes pixels costs: bytes it holds at its peak, pixels it reads and writes. */
export interface Cost {
  readonly memory: number
  readonly pixels: number
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
  /**
   * Bytes of decoded tiles kept for the requests that follow (a viewer's neighbouring tiles,
   * overlapping crops), each tile decoded once however many ask at once; 0: none. Default 24 MiB
   * (about 128 RGB tiles of 256x256): with the lanes' budgets it keeps the server's peak RSS
   * under 300 MiB under bench:soak. A viewer's working set may want more.
   */
  readonly tileCacheBytes?: number
  /** A cache to use instead of one of `tileCacheBytes`: shared with other servers or readers, or watched by the caller. */
  readonly tileCache?: TileCache
}

/**
 * The image a request names (spec/http.md, Names): by CID, or by a dataset entry's name,
 * resolved when the request arrives.
 */
export interface Target {
  readonly image: TesseraImage
  /** The image's CID as text. */
  readonly cid: string
  /**
   * The identifier as given (decoded): a CID, `NAME/path` or `VERSION-CID/path`. Links in a
   * response repeat it, so that a page opened by name keeps following the name.
   */
  readonly identifier: string
  /**
   * True when the identifier names a dataset by name: it may resolve to another image after
   * the next import, so the response is cached briefly, never as immutable.
   */
  readonly named: boolean
}

/** A dataset version, or a directory of it, that a request names. */
export interface DatasetTarget {
  readonly version: DatasetVersion
  /** The version's root CID as text. */
  readonly cid: string
  /** The dataset's name; undefined when the version was named by its CID. */
  readonly name: string | undefined
  /** The directory inside the dataset; undefined for the whole of it. */
  readonly path: string | undefined
  /** As in Target. */
  readonly identifier: string
  readonly named: boolean
}

/** What an identifier names: one image, or (a directory of) a dataset version. */
export type Resolution = { readonly kind: 'image'; readonly target: Target } | { readonly kind: 'dataset'; readonly dataset: DatasetTarget }

/** parseSpecifier's errors for an identifier, as ERR_INVALID_CID: IIIF answers 404 for an identifier that names nothing (§7.3). */
function asIdentifierError(identifier: string, error: unknown): unknown {
  if (!(error instanceof TesseraError) || error.code !== 'ERR_INVALID_ARGUMENT') return error
  return new InvalidCidError(`${JSON.stringify(identifier.slice(0, 200))} is neither a CID nor NAME/path: ${error.message}`, {
    cause: error,
  })
}

/** Images kept open (manifest + reader with its index-block cache). */
const IMAGE_CACHE = 64

/** State shared by the routes of one server. */
export class HttpContext {
  readonly store: BlockStore
  readonly limits: HttpLimits
  /** Crops, tiles and IIIF images under the heavy thresholds. */
  readonly light: Lane
  /** Renders over them: few at once, their own memory, so that light ones never wait behind them. */
  readonly heavy: Lane
  /** Streamed crops and exports over them (held for as long as their clients take to read). */
  readonly bulk: Lane
  readonly imports: WorkQueue
  /** Bytes of upload bodies on disk. */
  readonly uploadSpool: Budget
  readonly publicUrl: string | undefined
  readonly tmpDir: string
  readonly importWorkers: number | undefined
  /** Decoded tiles shared by every request (undefined: off); `tileCache.stats` counts requested vs decoded. */
  readonly tileCache: TileCache | undefined
  readonly #images = new Map<string, Promise<TesseraImage>>()
  readonly #iiifLimits = new WeakMap<TesseraImage, SizeLimits>()

  constructor(init: ServerInit) {
    this.store = init.store
    const given = init.limits ?? {}
    const limits = { ...defaultLimits(), ...given }
    this.limits = given.uploadSpoolBytes === undefined ? { ...limits, uploadSpoolBytes: 2 * limits.maxUploadBytes } : limits
    const l = this.limits
    const lane = (name: string, concurrency: number, maxQueued: number, memory: number, retryAfter: number) =>
      new Lane({ name, concurrency, maxQueued, memory, retryAfter, maxWait: l.queueTimeout })
    this.light = lane('light', l.concurrency, l.queue, l.memoryBudget, 1)
    this.heavy = lane('heavy', l.heavyConcurrency, l.heavyQueue, l.heavyMemoryBudget, 2)
    this.bulk = lane('bulk', l.heavyConcurrency, l.heavyQueue, l.bulkMemoryBudget, 2)
    this.imports = new WorkQueue({ concurrency: l.importConcurrency, maxQueued: l.importQueue })
    this.uploadSpool = new Budget({ capacity: l.uploadSpoolBytes, maxQueued: 0, unit: 'bytes of upload spool' })
    this.publicUrl = init.publicUrl?.replace(/\/+$/, '')
    this.tmpDir = init.tmpDir ?? tmpdir()
    this.importWorkers = init.importWorkers
    const cacheBytes = init.tileCacheBytes ?? SERVER_TILE_CACHE_BYTES
    this.tileCache = init.tileCache ?? (cacheBytes > 0 ? new TileCache({ maxBytes: cacheBytes }) : undefined)
  }

  /**
   * The lane of a response that costs `cost`: light up to `heavyPixels` pixels and a quarter of
   * the light memory budget; beyond, heavy for a body computed at once (a IIIF image, a jpg or
   * webp crop), bulk for one streamed band by band.
   */
  laneFor(cost: Cost, streamed: boolean): Lane {
    if (cost.pixels <= this.limits.heavyPixels && cost.memory <= this.limits.memoryBudget / 4) return this.light
    return streamed ? this.bulk : this.heavy
  }

  /**
   * The IIIF Image API limits of `image` (info.json's maxWidth, maxHeight, maxArea): the
   * server's, with maxArea lowered to what the heavy lane's memory holds for its pixel format
   * (iiif/render.ts, imageLimits). Images are immutable: computed once per opened image.
   */
  iiifLimits(image: TesseraImage): SizeLimits {
    let found = this.#iiifLimits.get(image)
    if (found === undefined) {
      const { maxWidth, maxHeight, maxArea, upscaling, heavyMemoryBudget } = this.limits
      found = imageLimits(image, { maxWidth, maxHeight, maxArea, upscaling }, heavyMemoryBudget)
      this.#iiifLimits.set(image, found)
    }
    return found
  }

  /**
   * The image `identifier` names: a CID (openImage), or a dataset entry `NAME/path` or
   * `VERSION-CID/path` resolved now, against the dataset's newest version. An identifier that
   * is neither fails with ERR_INVALID_CID (so that IIIF answers 404, §7.3); a dataset or a
   * directory, which name no single image, with ERR_INVALID_ARGUMENT; a missing entry with
   * ERR_NOT_FOUND.
   */
  async target(identifier: string, signal?: AbortSignal): Promise<Target> {
    if (!identifier.includes('/')) {
      let image: TesseraImage
      try {
        image = await this.openImage(identifier)
      } catch (error) {
        // Not a CID but a dataset's name: resolveImage says why that names no single image.
        if ((error as TesseraError).code === 'ERR_INVALID_CID' && isDatasetName(identifier)) {
          await resolveImage(this.store, identifier, { signal })
        }
        throw error
      }
      return { image, cid: image.cid.toString(), identifier, named: false }
    }
    let spec: ReturnType<typeof parseSpecifier>
    try {
      spec = parseSpecifier(identifier)
    } catch (error) {
      throw asIdentifierError(identifier, error)
    }
    await this.#checkVersion(spec, signal)
    const cid = await resolveImage(this.store, identifier, { signal })
    const image = await this.openImage(cid.toString())
    return { image, cid: image.cid.toString(), identifier, named: spec.kind === 'dataset' && spec.name !== undefined }
  }

  /**
   * What `identifier` names, image or dataset: a CID (an image root or a dataset version),
   * `NAME`, `NAME/path` (an entry or a directory) or `VERSION-CID/path`. Errors as target's; a
   * directory is not checked here (listing it finds whether it has entries).
   */
  async resolve(identifier: string, signal?: AbortSignal): Promise<Resolution> {
    let resolved: Awaited<ReturnType<typeof resolveSpecifier>>
    try {
      await this.#checkVersion(parseSpecifier(identifier), signal)
      resolved = await resolveSpecifier(this.store, identifier, { signal })
    } catch (error) {
      throw asIdentifierError(identifier, error)
    }
    if (resolved.kind === 'cid') {
      if (!(await isDatasetVersion(this.store, resolved.cid, { signal })))
        return { kind: 'image', target: await this.target(identifier, signal) }
      const version = await loadVersion(this.store, resolved.cid, { signal })
      return {
        kind: 'dataset',
        dataset: { version, cid: resolved.cid.toString(), name: undefined, path: undefined, identifier, named: false },
      }
    }
    const named = resolved.name !== undefined
    if (resolved.entry !== undefined) {
      const image = await this.openImage(resolved.entry.image.toString())
      return { kind: 'image', target: { image, cid: image.cid.toString(), identifier, named } }
    }
    const { version, name, path } = resolved
    return { kind: 'dataset', dataset: { version, cid: resolved.cid.toString(), name, path, identifier, named } }
  }

  /** `CID/path` names a path in a dataset version: InvalidCidError when the CID is something else (an image, say), not an integrity failure. */
  async #checkVersion(spec: ReturnType<typeof parseSpecifier>, signal?: AbortSignal): Promise<void> {
    if (spec.kind !== 'dataset' || spec.version === undefined) return
    if (await isDatasetVersion(this.store, spec.version, { signal })) return
    if (!(await this.store.has(spec.version, { signal }))) throw new NotFoundError(`No dataset version ${spec.version}`)
    throw new InvalidCidError(`${spec.version} is not a dataset version: only a version's entries have paths`)
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
    const opening = openImage(this.store, cid).then((image) => {
      if (this.tileCache !== undefined) image.reader.tileCache = this.tileCache
      return image
    })
    this.#images.set(key, opening)
    // Failures are not cached: a missing image may be uploaded a moment later.
    opening.catch(() => this.#images.delete(key))
    if (this.#images.size > IMAGE_CACHE) this.#images.delete(this.#images.keys().next().value!)
    return opening
  }
}
