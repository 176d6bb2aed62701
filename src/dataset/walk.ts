/**
 * Reachability (spec/dataset.md §8): the blocks a root reaches, walked depth first with each
 * block once. Every link of every dag-cbor block is followed, so the walk needs no schema:
 * images (index blocks, tiles, ICC profile), datasets (entry tree, images, history) and any
 * other IPLD DAG. The one exception: an image root's `metadata.derivedFrom` and
 * `metadata.canonicalVersion` name other images that need not be stored (format.md §5), so
 * these links are *weak*: followed when the block is there, skipped when it is not.
 *
 * Links are visited in the order the block encodes them (dag-cbor's key order, then list
 * order), which is the order `ipfs dag export` writes a CAR in.
 */
import { TesseraError } from '../errors.js'
import { CID, DAG_CBOR, decodeCbor } from '../format/block.js'
import type { AbortOptions, BlockStore } from '../store/interface.js'

/** A link found in a block; `weak` if the block it names may be absent. */
export interface Link {
  readonly cid: CID
  readonly weak: boolean
}

/** Options of walk. */
export interface WalkOptions extends AbortOptions {
  /**
   * Called once per block reached, parents before children (preorder). `bytes` are given for
   * dag-cbor blocks, which the walk reads (verified) to find their links; other blocks
   * (tiles) are not read by the walk.
   */
  readonly visit?: (cid: CID, bytes: Uint8Array | undefined) => void | Promise<void>
  /**
   * A dag-cbor block that cannot be read or decoded. Return to skip it (and what only it
   * reaches); the default rethrows.
   */
  readonly onError?: (cid: CID, error: TesseraError) => void
  /** Blocks already visited, by multihash key (see blockKey): shared between walks to visit each once. */
  readonly seen?: Set<string>
}

/** The key `seen` uses for a block: its multihash, as the store does (latin1 string of the bytes). */
export function seenKey(cid: CID): string {
  return Buffer.from(cid.multihash.bytes.buffer, cid.multihash.bytes.byteOffset, cid.multihash.bytes.length).toString('latin1')
}

/** Multihash code of `identity`: such a CID carries its bytes inline and names no stored block. */
const IDENTITY = 0x00

/** Walks every block reachable from `roots`, depth first; see WalkOptions. */
export async function walk(store: BlockStore, roots: readonly CID[], options: WalkOptions = {}): Promise<void> {
  const seen = options.seen ?? new Set<string>()
  const stack: Array<Iterator<Link>> = [roots.map((cid) => ({ cid, weak: false }))[Symbol.iterator]()]
  let steps = 0
  while (stack.length > 0) {
    const next = stack[stack.length - 1]!.next()
    if (next.done === true) {
      stack.pop()
      continue
    }
    const { cid, weak } = next.value
    if (cid.multihash.code === IDENTITY) continue
    const key = seenKey(cid)
    if (seen.has(key)) continue
    if (++steps % 1024 === 0) options.signal?.throwIfAborted()
    if (cid.code !== DAG_CBOR) {
      if (weak && !(await store.has(cid, options))) continue
      seen.add(key)
      await options.visit?.(cid, undefined)
      continue
    }
    let bytes: Uint8Array
    let value: unknown
    try {
      if (weak && !(await store.has(cid, options))) continue
      bytes = await store.get(cid, options)
      value = decodeCbor(bytes)
    } catch (error) {
      if (!(error instanceof TesseraError) || options.onError === undefined) throw error
      seen.add(key)
      options.onError(cid, error)
      continue
    }
    seen.add(key)
    await options.visit?.(cid, bytes)
    stack.push(linksOf(value)[Symbol.iterator]())
  }
}

/** The links of a decoded dag-cbor value, in encoding order; image provenance links are weak. */
export function linksOf(value: unknown): Link[] {
  const links: Link[] = []
  const image = isImageRoot(value)
  const collect = (node: unknown, weak: boolean): void => {
    if (node === null || typeof node !== 'object' || node instanceof Uint8Array) return
    const cid = CID.asCID(node)
    if (cid !== null) {
      links.push({ cid, weak })
      return
    }
    if (Array.isArray(node)) {
      for (const item of node) collect(item, weak)
      return
    }
    for (const child of Object.values(node)) collect(child, weak)
  }
  if (!image) {
    collect(value, false)
    return links
  }
  for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
    if (key !== 'metadata' || child === null || typeof child !== 'object' || CID.asCID(child) !== null || Array.isArray(child)) {
      collect(child, false)
      continue
    }
    for (const [field, link] of Object.entries(child as Record<string, unknown>)) {
      collect(link, field === 'derivedFrom' || field === 'canonicalVersion')
    }
  }
  return links
}

/** An image root by its shape: a map with an integer `tessera` (format.md §5). */
function isImageRoot(value: unknown): boolean {
  return (
    value !== null &&
    typeof value === 'object' &&
    !Array.isArray(value) &&
    !(value instanceof Uint8Array) &&
    typeof (value as { tessera?: unknown }).tessera === 'number'
  )
}
