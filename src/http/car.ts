/**
 * CARv1 streams of stored DAGs (https://ipld.io/specs/transport/car/carv1/), as the IPFS
 * trustless gateway serves them: header `{version: 1, roots: [root]}`, then each block once
 * (`dups=n`) in depth-first order (`order=dfs`), each framed as
 * varint(|CID| + |data|) ‖ CID ‖ data. The whole layout, hence the length, is planned before
 * the first byte is sent (index blocks give the tiles' lengths), so ranges need no buffering.
 */
import { varint } from 'multiformats'
import { IntegrityError, NotFoundError } from '../errors.js'
import { CID, cborBlock, DAG_CBOR, decodeCbor, RAW } from '../format/block.js'
import { decodeManifest, decodeTileRow } from '../format/manifest.js'
import type { BlockStore } from '../store/interface.js'
import type { Segment } from './response.js'

/** Multihash code of `identity`: such a CID carries its bytes inline and is never a block of a CAR. */
export const IDENTITY = 0x00

/** Media type of the CAR responses, with the parameters of IPIP-412. */
export const CAR_TYPE = 'application/vnd.ipld.car; version=1; order=dfs; dups=n'

/** A planned CAR: its segments (header, then per block a frame prefix and the block) and total length. */
export interface CarPlan {
  readonly length: number
  readonly segments: Segment[]
  readonly blocks: number
}

/** The bytes a CAR header takes for `root`. */
export function carHeader(root: CID): Uint8Array {
  const header = cborBlock({ version: 1, roots: [root] }).bytes
  return Buffer.concat([varint.encodeTo(header.length, new Uint8Array(varint.encodingLength(header.length))), header])
}

/**
 * Plans the CAR of the DAG under `root`. `scope` `block` sends only the root block; `all` the
 * whole DAG. For an image root, "the whole DAG" is the image's blocks (spec/format.md §4):
 * levels, index blocks and tiles, then the ICC profile; `derivedFrom` and `canonicalVersion`
 * name other images and are not followed. Other dag-cbor blocks are walked generically.
 * NotFoundError if the root is not stored; IntegrityError if a block under it is missing.
 */
export async function planCar(store: BlockStore, root: CID, scope: 'block' | 'all', signal?: AbortSignal): Promise<CarPlan> {
  const segments: Segment[] = []
  const seen = new Set<string>()
  let length = 0
  let blocks = 0
  const push = (segment: Segment) => {
    segments.push(segment)
    length += segment.length
  }
  const frame = (cid: CID, size: number) => {
    const cidBytes = cid.bytes
    const total = cidBytes.length + size
    const prefix = new Uint8Array(varint.encodingLength(total) + cidBytes.length)
    varint.encodeTo(total, prefix)
    prefix.set(cidBytes, varint.encodingLength(total))
    push({ length: prefix.length, read: () => prefix })
    blocks++
  }
  /** Adds a block whose bytes are in hand. */
  const addBytes = (cid: CID, bytes: Uint8Array) => {
    frame(cid, bytes.length)
    push({ length: bytes.length, read: () => bytes })
  }
  /** Adds a block read only when the response reaches it. */
  const addLazy = (cid: CID, size: number) => {
    frame(cid, size)
    push({ length: size, read: (s) => store.get(cid, { signal: s }) })
  }
  const first = (cid: CID): boolean => {
    if (cid.multihash.code === IDENTITY) return false
    const key = cid.toString()
    if (seen.has(key)) return false
    seen.add(key)
    return true
  }
  const missing = (cid: CID) => new IntegrityError(`Block ${cid} of the DAG under ${root} is missing from the store`)

  push({ length: carHeader(root).length, read: () => carHeader(root) })
  if (!first(root)) return { length, segments, blocks }
  if (root.code !== DAG_CBOR) {
    const size = await store.size(root, { signal })
    if (size === undefined) throw new NotFoundError(`Block ${root} not found`)
    addLazy(root, size)
    return { length, segments, blocks }
  }
  const rootBytes = await store.get(root, { signal })
  addBytes(root, rootBytes)
  if (scope === 'block') return { length, segments, blocks }

  let manifest: ReturnType<typeof decodeManifest> | undefined
  try {
    manifest = decodeManifest(rootBytes)
  } catch {
    manifest = undefined
  }
  if (manifest !== undefined) {
    const { tileSize } = manifest
    for (const level of manifest.levels) {
      const columns = Math.ceil(level.width / tileSize)
      for (const rowCid of level.rows) {
        if (!first(rowCid)) continue
        signal?.throwIfAborted()
        const rowBytes = await store.get(rowCid, { signal }).catch((error) => {
          throw error instanceof NotFoundError ? missing(rowCid) : error
        })
        addBytes(rowCid, rowBytes)
        const index = decodeTileRow(rowBytes, columns)
        index.tiles.forEach((tile, i) => {
          if (first(tile)) addLazy(tile, index.lengths[i]!)
        })
      }
    }
    const icc = manifest.metadata.icc
    if (icc !== undefined && first(icc)) {
      const size = await store.size(icc, { signal })
      if (size === undefined) throw missing(icc)
      addLazy(icc, size)
    }
    return { length, segments, blocks }
  }
  // Any other dag-cbor block: depth first, links in the order the block encodes them.
  const walk = async (bytes: Uint8Array) => {
    for (const link of linksOf(decodeCbor(bytes))) {
      if (!first(link)) continue
      signal?.throwIfAborted()
      if (link.code === DAG_CBOR) {
        const child = await store.get(link, { signal }).catch((error) => {
          throw error instanceof NotFoundError ? missing(link) : error
        })
        addBytes(link, child)
        await walk(child)
      } else {
        const size = await store.size(link, { signal })
        if (size === undefined) throw missing(link)
        addLazy(link, size)
      }
    }
  }
  await walk(rootBytes)
  return { length, segments, blocks }
}

/** The CIDs in a decoded dag-cbor value, in encoding order (raw and dag-cbor links only). */
function* linksOf(value: unknown): Generator<CID> {
  if (value === null || typeof value !== 'object' || value instanceof Uint8Array) return
  const cid = CID.asCID(value)
  if (cid !== null) {
    if (cid.code === RAW || cid.code === DAG_CBOR) yield cid
    return
  }
  for (const child of Array.isArray(value) ? value : Object.values(value)) yield* linksOf(child)
}
