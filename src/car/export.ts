/**
 * CAR export (spec/dataset.md §10.1, spec/http.md §7): the one CARv1 writer
 * (https://ipld.io/specs/transport/car/carv1/), behind both `tessera car export` and
 * `GET /ipfs/{cid}?format=car`. Header `{version: 1, roots: [root]}`, then each block the
 * walk reaches (dataset/walk.ts: each once, depth first, links in encoding order, weak links
 * when stored: the layout `ipfs dag export` writes), framed as varint(|CID| + |data|) ‖ CID ‖
 * data. Each block's length is known before its bytes are read (dag-cbor blocks are read by
 * the walk, tiles' lengths are in their index block, other blocks' come from the store), so
 * the whole length, and any byte range, is planned without reading a tile.
 */
import { varint } from 'multiformats'
import { walkBlocks } from '../dataset/walk.js'
import { IntegrityError, NotFoundError } from '../errors.js'
import { type CID, cborBlock } from '../format/block.js'
import type { AbortOptions, BlockStore } from '../store/interface.js'

/** A piece of a CAR whose length is known before its bytes are read. */
export interface CarPart {
  readonly length: number
  read(signal?: AbortSignal): Uint8Array | Promise<Uint8Array>
}

/** One block of a CAR: its frame prefix (varint and CID) and the block itself as a part. */
export interface CarBlock extends CarPart {
  readonly cid: CID
  readonly prefix: Uint8Array
  /** Reached only through a weak link: a provenance image the store happens to hold. */
  readonly weak: boolean
}

/** Options of carBlocks, exportCar and planCar. */
export interface CarOptions extends AbortOptions {
  /** `all` (default): the DAG under the root; `block`: the root block only. */
  readonly scope?: 'all' | 'block'
}

/** What an export wrote. */
export interface CarExportStats {
  blocks: number
  bytes: number
}

/** Options of exportCar. */
export interface CarExportOptions extends CarOptions {
  /** Incremented as blocks are written. */
  readonly stats?: CarExportStats
}

/** A whole CAR laid out: its parts in order (the header, then per block its prefix and bytes). */
export interface CarPlan {
  readonly length: number
  readonly parts: CarPart[]
  /** The blocks reached only through weak links: with the root, they determine the bytes. */
  readonly weak: CID[]
}

/** The CAR header for `root`: varint(|header|) ‖ dag-cbor `{roots: [root], version: 1}`. */
export function carHeader(root: CID): Uint8Array {
  const header = cborBlock({ version: 1, roots: [root] }).bytes
  return Buffer.concat([varint.encodeTo(header.length, new Uint8Array(varint.encodingLength(header.length))), header])
}

/**
 * The blocks of the CAR of `root`, in order. NotFoundError if the root is not stored;
 * IntegrityError if a block under it is missing (the store is damaged): while walking for
 * dag-cbor blocks and blocks of unknown length, when read for tiles.
 */
export async function* carBlocks(store: BlockStore, root: CID, options: CarOptions = {}): AsyncGenerator<CarBlock> {
  const missing = (cid: CID, cause?: unknown) =>
    cid.equals(root)
      ? new NotFoundError(`Block ${cid} not found`, { cause })
      : new IntegrityError(`Block ${cid} of the DAG under ${root} is missing from the store`, { cause })
  const onError = (cid: CID, error: Error) => {
    throw error instanceof NotFoundError ? missing(cid, error) : error
  }
  for await (const { cid, bytes, length: stated, weak } of walkBlocks(store, [root], { signal: options.signal, onError })) {
    const length = bytes?.length ?? stated ?? (await store.size(cid, options))
    if (length === undefined) throw missing(cid)
    const cidBytes = cid.bytes
    const total = varint.encodingLength(cidBytes.length + length)
    const prefix = new Uint8Array(total + cidBytes.length)
    varint.encodeTo(cidBytes.length + length, prefix)
    prefix.set(cidBytes, total)
    const read = async (signal?: AbortSignal) => {
      const data = bytes ?? (await store.get(cid, { signal }).catch((error) => onError(cid, error)))
      if (data.length !== length) throw new IntegrityError(`Block ${cid} has ${data.length} bytes, ${length} expected`)
      return data
    }
    yield { cid, prefix, weak, length, read }
    if (options.scope === 'block') return
  }
}

/**
 * The CAR of the DAG under `root`, streamed with memory bounded by one block (see carBlocks
 * for the errors, which come mid-stream: write to a temporary file, keep it when the stream ends).
 */
export async function* exportCar(store: BlockStore, root: CID, options: CarExportOptions = {}): AsyncGenerator<Uint8Array> {
  yield carHeader(root)
  for await (const block of carBlocks(store, root, options)) {
    const bytes = await block.read(options.signal)
    if (options.stats !== undefined) {
      options.stats.blocks++
      options.stats.bytes += bytes.length
    }
    yield block.prefix
    yield bytes
  }
}

/** The CAR of `root` laid out before its first byte, for Content-Length and ranges; reads no tile. */
export async function planCar(store: BlockStore, root: CID, options: CarOptions = {}): Promise<CarPlan> {
  const header = carHeader(root)
  const parts: CarPart[] = [{ length: header.length, read: () => header }]
  const weak: CID[] = []
  let length = header.length
  for await (const block of carBlocks(store, root, options)) {
    parts.push({ length: block.prefix.length, read: () => block.prefix }, block)
    length += block.prefix.length + block.length
    if (block.weak) weak.push(block.cid)
  }
  return { length, parts, weak }
}
