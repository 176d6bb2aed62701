/**
 * DecodePool's jobs, run on its worker threads: decode one region into shared memory, either
 * from payloads the calling thread read (`DecodeJob`), or from the store the worker opens
 * itself by location (`RegionJob`: the calling thread then only posts the request).
 */

import { createHash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import { IntegrityError } from '../errors.js'
import type { Region, TileCodec } from '../format/interface.js'
import { decodeManifest } from '../format/manifest.js'
import { type TileShape, threadCoder } from '../format/tile-codec.js'
import type { BlockStore } from '../store/interface.js'
import { openStoreAt } from '../store/open.js'
import { decodeBand } from './decode.js'
import { ImageReader } from './engine.js'
import type { BandPlan } from './plan.js'

/** One region to decode: its bands with their payloads and the sha2-256 digests they must have. */
export interface DecodeJob {
  readonly shape: TileShape
  readonly codec: TileCodec
  readonly rowBytes: number
  /** Each band's payloads, given as bytes or as places in files to read them from. */
  readonly bands: ReadonlyArray<{
    readonly plan: BandPlan
    /** One per slice, then the references of the deltas among them. */
    readonly payloads: readonly Uint8Array[]
    readonly digests: Uint8Array[]
    /** Per slice, the index in `payloads` of its reference (spec/format.md §6.1), or -1 for a plain tile. */
    readonly refs?: readonly number[]
  }>
  /** Receives the region's rows, contiguous (shared memory, so nothing is copied back). */
  readonly out: Uint8Array
}

/** A region to read from the store at `location`, image `root`, entirely on the worker. */
export interface RegionJob {
  readonly kind: 'region'
  readonly location: string
  readonly root: string
  readonly level: number
  readonly region: Region
  readonly rowBytes: number
  /**
   * Receives the region's rows (shared memory). Absent: the worker allocates them and moves
   * them back (`RegionRead.pixels`), so that no thread holds them once the caller lets go (a
   * worker collects its heap rarely, and a shared buffer lives while any thread refers to it).
   */
  readonly out?: Uint8Array
}

/** What a region job read: for the caller's CropStats, and the rows when the job gave no `out`. */
export interface RegionRead {
  readonly tiles: number
  readonly bytes: number
  readonly indexBlocks: number
  readonly pixels?: Uint8Array
}

// Each worker opens a store once and keeps it (readers take no lock), and keeps a few images open.
const stores = new Map<string, Promise<BlockStore>>()
const readers = new Map<string, Promise<ImageReader>>()
const READERS = 64

function openReader(location: string, root: string): Promise<ImageReader> {
  const key = `${location}\n${root}`
  let reader = readers.get(key)
  if (reader === undefined) {
    let store = stores.get(location)
    if (store === undefined) {
      store = openStoreAt(location, { create: false })
      stores.set(location, store)
      store.catch(() => stores.delete(location))
    }
    reader = store.then(async (opened) => {
      const cid = CID.parse(root)
      return new ImageReader(opened, decodeManifest(await opened.get(cid)), cid)
    })
    readers.set(key, reader)
    reader.catch(() => readers.delete(key))
    if (readers.size > READERS) readers.delete(readers.keys().next().value!)
  }
  return reader
}

/** Reads and decodes a region on this thread, from the store itself. */
export async function decodeRegion(job: RegionJob): Promise<RegionRead> {
  const reader = await openReader(job.location, job.root)
  // Verified here, on this thread: the reader hashes every payload against its CID.
  const stats = { tilesRead: 0, tileBytesRead: 0, indexBlocksRead: 0 }
  const out = job.out ?? new Uint8Array(job.region.height * job.rowBytes)
  await reader.readInto(job.region, out, { level: job.level, stats })
  const read = { tiles: stats.tilesRead, bytes: stats.tileBytesRead, indexBlocks: stats.indexBlocksRead }
  return job.out === undefined ? { ...read, pixels: out } : read
}

/** Verifies every payload against its digest, then decodes the bands into `job.out`. */
export function decodeJob(job: DecodeJob): true {
  const coder = threadCoder(job.shape, job.codec)
  let offset = 0
  for (const { plan, payloads, digests, refs } of job.bands) {
    for (let i = 0; i < payloads.length; i++) {
      const digest = createHash('sha256').update(payloads[i]!).digest()
      if (!digest.equals(digests[i]!)) throw new IntegrityError('A tile does not match its hash')
    }
    const bytes = plan.height * job.rowBytes
    const references = refs?.map((at) => (at < 0 ? undefined : payloads[at]!))
    decodeBand(coder, plan, payloads, job.out.subarray(offset, offset + bytes), references)
    offset += bytes
  }
  return true
}
