/**
 * Reachability (spec/dataset.md §8): the blocks a root reaches, depth first (preorder), each
 * once. Every link of every dag-cbor block is followed, so the walk needs no schema: images
 * (index blocks, tiles, ICC profile), datasets (entry tree, images, history) and any other
 * IPLD DAG. The one exception: an image root's `metadata.derivedFrom` and
 * `metadata.canonicalVersion` name other images that need not be stored (format.md §5), so
 * these links are *weak*: followed when the block is there, skipped when it is not.
 *
 * Links are visited in the order the block encodes them (dag-cbor's key order, then list
 * order), which is the order `ipfs dag export` writes a CAR in. The one walk behind gc,
 * verify, `car export` and `/ipfs/{cid}?format=car`.
 */
import { TesseraError } from '../errors.js'
import { CID, DAG_CBOR, decodeCbor } from '../format/block.js'
import type { AbortOptions, BlockStore } from '../store/interface.js'

/** Multihash code of `identity`: such a CID carries its bytes inline and names no stored block. */
export const IDENTITY = 0x00

/** A link found in a block. */
export interface Link {
  readonly cid: CID
  /** The block it names may be absent (image provenance, above). */
  readonly weak: boolean
  /** The block's length as its parent states it: a tile row index's `lengths[i]` (format.md §6). */
  readonly length?: number
}

/** A block the walk reached, through `weak` and `length` the link that first reached it. */
export interface WalkedBlock extends Link {
  /** A dag-cbor block's bytes, which the walk reads (verified) for its links; other blocks (tiles) are not read. */
  readonly bytes?: Uint8Array
}

/** Options of walkBlocks and walk. */
export interface WalkOptions extends AbortOptions {
  /**
   * A dag-cbor block that cannot be read or decoded. Return to skip it (and what only it
   * reaches); the default rethrows.
   */
  readonly onError?: (cid: CID, error: TesseraError) => void
  /** Blocks already reached, by seenKey: shared between walks to reach each once. */
  readonly seen?: Set<string>
}

/** The key `seen` uses for a block: its multihash, as the store does (latin1 string of the bytes). */
export function seenKey(cid: CID): string {
  return Buffer.from(cid.multihash.bytes.buffer, cid.multihash.bytes.byteOffset, cid.multihash.bytes.length).toString('latin1')
}

/** Every block reachable from `roots`, depth first, parents before children; see the module comment. */
export async function* walkBlocks(store: BlockStore, roots: readonly CID[], options: WalkOptions = {}): AsyncGenerator<WalkedBlock> {
  const seen = options.seen ?? new Set<string>()
  const stack: Array<Iterator<Link>> = [roots.map((cid) => ({ cid, weak: false }))[Symbol.iterator]()]
  let steps = 0
  while (stack.length > 0) {
    const next = stack[stack.length - 1]!.next()
    if (next.done === true) {
      stack.pop()
      continue
    }
    const link = next.value
    const key = seenKey(link.cid)
    if (link.cid.multihash.code === IDENTITY || seen.has(key)) continue
    if (++steps % 1024 === 0) options.signal?.throwIfAborted()
    if (link.weak && !(await store.has(link.cid, options))) continue
    seen.add(key)
    if (link.cid.code !== DAG_CBOR) {
      yield link
      continue
    }
    let bytes: Uint8Array
    let value: unknown
    try {
      bytes = await store.get(link.cid, options)
      value = decodeCbor(bytes)
    } catch (error) {
      if (!(error instanceof TesseraError) || options.onError === undefined) throw error
      options.onError(link.cid, error)
      continue
    }
    yield { ...link, bytes }
    stack.push(linksOf(value)[Symbol.iterator]())
  }
}

/** walkBlocks with a callback, awaited for each block before the walk goes on. */
export async function walk(
  store: BlockStore,
  roots: readonly CID[],
  options: WalkOptions & { readonly visit?: (cid: CID, bytes: Uint8Array | undefined) => unknown } = {},
): Promise<void> {
  for await (const block of walkBlocks(store, roots, options)) await options.visit?.(block.cid, block.bytes)
}

/** The links of a decoded dag-cbor value, in encoding order; see Link for `weak` and `length`. */
export function linksOf(value: unknown): Link[] {
  const links: Link[] = []
  const collect = (node: unknown, weak: boolean, length?: unknown): void => {
    if (node === null || typeof node !== 'object' || node instanceof Uint8Array) return
    const cid = CID.asCID(node)
    if (cid !== null) {
      links.push(typeof length === 'number' && Number.isSafeInteger(length) && length >= 0 ? { cid, weak, length } : { cid, weak })
      return
    }
    const map = node as Record<string, unknown>
    // An image root by its shape: a map with an integer `tessera` (format.md §5).
    const image = node === value && typeof map.tessera === 'number'
    for (const [key, child] of Object.entries(node)) {
      if (key === 'tiles' && Array.isArray(child) && Array.isArray(map.lengths)) {
        // A tile row index (format.md §6): `lengths` gives each tile's length.
        for (const [i, tile] of child.entries()) collect(tile, weak, map.lengths[i])
      } else if (image && key === 'metadata' && CID.asCID(child) === null) {
        for (const [field, link] of Object.entries(child ?? {}))
          collect(link, weak || field === 'derivedFrom' || field === 'canonicalVersion')
      } else collect(child, weak)
    }
  }
  collect(value, false)
  return links
}
