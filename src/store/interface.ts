/** The block store contract: blocks by CID, plus named pins. It knows nothing of images. */
import type { CID } from 'multiformats/cid'

/** Options every async store operation accepts. */
export interface AbortOptions {
  readonly signal?: AbortSignal
}

/** A pinned root: something that must stay reachable, with a label for people. */
export interface Pin {
  readonly cid: CID
  readonly label: string
  /** Milliseconds since the epoch when it was pinned. */
  readonly added: number
}

/** A named reference to a root, e.g. a dataset's head (spec/store.md §4). */
export interface Ref {
  readonly name: string
  readonly cid: CID
}

/** Options of `refs`. */
export interface RefsOptions extends AbortOptions {
  /** Only references whose name starts with this (default: all). */
  readonly prefix?: string
}

/** Which blocks garbage collection keeps: called with each stored block's multihash bytes. */
export type KeepBlock = (multihash: Uint8Array) => boolean

/** Options of `collect`. */
export interface CollectOptions extends AbortOptions {
  /** Compute what would be deleted and reclaimed, change nothing (default false). */
  readonly dryRun?: boolean
  /** How long to wait for another collection of the store to finish, in ms (default 0: ERR_STORE_LOCKED at once). */
  readonly lockTimeout?: number
  /** Called as the collection passes each step (spec/store.md §10): for progress and crash tests. */
  readonly onPhase?: (phase: CollectPhase) => void
}

/** The steps of a collection, in order; the pack steps repeat once per group of rewritten packs. */
export type CollectPhase = 'marked' | 'pack-written' | 'index-written' | 'packs-deleted' | 'done'

/** What a collection found and did. */
export interface CollectResult {
  /** Blocks kept, and their bytes. */
  readonly keptBlocks: number
  readonly keptBytes: number
  /** Blocks deleted (or that would be, in a dry run), and their bytes. */
  readonly deletedBlocks: number
  readonly deletedBytes: number
  /** Pack files rewritten without their dead blocks, deleted outright, and found orphaned (counted in deleted). */
  readonly packsRewritten: number
  readonly packsDeleted: number
  readonly orphanPacks: number
  /** storedBytes() before and after (after = before in a dry run). */
  readonly bytesBefore: number
  readonly bytesAfter: number
}

/** Block storage addressed by CID. Every read is verified against the CID. */
export interface BlockStore {
  /**
   * True when each read is a round trip to another machine (S3): readers then ask for what
   * they need at once rather than as they go (src/crop/prefetch.ts). Absent: local.
   */
  readonly remote?: boolean
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
   * Stores that read synchronously (a local pack store): the blocks' bytes, each verified, read
   * one after another into `scratch` and returned as views of it, so a caller that uses them at
   * once allocates nothing (the crop reader). Undefined when they cannot be read so, now: they
   * do not fit, or this view of the store lacks one; then use `getMany`. IntegrityError if one
   * is corrupt. The views hold their bytes only until `scratch` is written again.
   */
  getManyInto?(cids: readonly CID[], scratch: Uint8Array): Uint8Array[] | undefined
  /** Whether the block is stored (and committed). */
  has(cid: CID, options?: AbortOptions): Promise<boolean>
  /** Stored size in bytes of a block, or undefined if absent. */
  size(cid: CID, options?: AbortOptions): Promise<number | undefined>
  /** Starts a write transaction: nothing it writes is visible until `commit`. */
  begin(options?: AbortOptions): Promise<BlockWriter>
  /** Every pin, oldest first. */
  pins(options?: AbortOptions): AsyncIterable<Pin>
  /**
   * The CID reference `name` points to, or undefined. References (and `refs`, `collect`) are
   * optional capabilities: the store has them; a wrapper may not.
   */
  ref?(name: string, options?: AbortOptions): Promise<CID | undefined>
  /** References, in name order (UTF-8 bytewise). */
  refs?(options?: RefsOptions): AsyncIterable<Ref>
  /**
   * Garbage collection's store half (spec/store.md §10). Runs beside readers and writers of
   * any process: `mark` decides what stays (from the roots it reads); blocks it does not keep
   * stop being visible, and their space is given back once no transaction that began before
   * can need them. ERR_STORE_LOCKED if another collection is running.
   */
  collect?(mark: (options: AbortOptions) => Promise<KeepBlock>, options?: CollectOptions): Promise<CollectResult>
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
  /** Removes a pin on commit (nothing if `cid` is not pinned). */
  unpin(cid: CID): void
  /**
   * Points reference `name` (1 to 1024 UTF-8 bytes) at `cid` on commit; `undefined` deletes it.
   * With `expected`, a compare-and-swap: the commit fails with ERR_CONFLICT (the transaction
   * stays open) unless the reference then points at `expected` (`null`: does not exist).
   */
  setRef(name: string, cid: CID | undefined, expected?: CID | null): void
  /**
   * Makes every block, pin and reference change durable and visible at once. ERR_CONFLICT (a
   * reference's expectation failed; the transaction stays open for another try) or any other
   * error (the transaction is aborted).
   */
  commit(options?: AbortOptions): Promise<void>
  /** Discards everything written; the store is left as it was. */
  abort(): Promise<void>
  /** Bytes of new (not deduplicated) blocks written so far. */
  readonly newBytes: number
}
