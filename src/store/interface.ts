/** The block store contract: blocks by CID, plus named pins. It knows nothing of images. */
import type { CID } from 'multiformats/cid'

/** Options every async store operation accepts. */
export interface AbortOptions {
  readonly signal?: AbortSignal
}

/** A block's bytes in a file: `length` bytes at `offset` of `path`. */
export interface BlockLocation {
  readonly path: string
  readonly offset: number
  readonly length: number
}

/** A pinned root: something that must stay reachable, with a label for people. */
export interface Pin {
  readonly cid: CID
  readonly label: string
  /** Milliseconds since the epoch when it was pinned. */
  readonly added: number
}

/** Block storage addressed by CID. Every read is verified against the CID. */
export interface BlockStore {
  /** The block's bytes, verified against `cid`; NotFoundError if absent, IntegrityError if corrupt. */
  get(cid: CID, options?: AbortOptions): Promise<Uint8Array>
  /** The blocks' bytes in order, each verified; fails like `get` on the first bad one. */
  getMany(cids: readonly CID[], options?: AbortOptions): Promise<Uint8Array[]>
  /**
   * The blocks' bytes in order, NOT verified against their CIDs: for a caller that verifies
   * them itself elsewhere (the crop decode workers hash on their own threads). Fails with
   * ERR_NOT_FOUND on the first missing block.
   */
  getManyUnsafe(cids: readonly CID[], options?: AbortOptions): Promise<Uint8Array[]>
  /**
   * Where the blocks' bytes lie in files, for readers on other threads (stores that keep
   * blocks in files implement it). Nothing is verified: whoever reads must hash.
   */
  locateMany?(cids: readonly CID[], options?: AbortOptions): Promise<BlockLocation[]>
  /** Whether the block is stored (and committed). */
  has(cid: CID, options?: AbortOptions): Promise<boolean>
  /** Stored size in bytes of a block, or undefined if absent. */
  size(cid: CID, options?: AbortOptions): Promise<number | undefined>
  /** Starts a write transaction: nothing it writes is visible until `commit`. */
  begin(options?: AbortOptions): Promise<BlockWriter>
  /** Every pin, oldest first. */
  pins(options?: AbortOptions): AsyncIterable<Pin>
  /** Bytes the store occupies for block data. */
  storedBytes(options?: AbortOptions): Promise<number>
  /** Releases files and handles. */
  close(): Promise<void>
}

/** An all-or-nothing batch of block writes and pins. */
export interface BlockWriter {
  /** Adds a block; a block already stored or already added is skipped. Returns true if new. */
  put(cid: CID, bytes: Uint8Array, options?: AbortOptions): Promise<boolean>
  /** Records a pin, applied on commit together with the blocks. */
  pin(cid: CID, label: string): void
  /** Makes every block and pin durable and visible at once. */
  commit(options?: AbortOptions): Promise<void>
  /** Discards everything written; the store is left as it was. */
  abort(): Promise<void>
  /** Bytes of new (not deduplicated) blocks written so far. */
  readonly newBytes: number
}
