/**
 * The store (spec/store.md) over any object backend: immutable pack files, each with a sorted
 * index written when it is sealed, and a root log of create-only records for pins and
 * references. Readers take no lock: they read the newest checkpoint and the records after it,
 * load the indexes of the live packs, and see new commits by reading the log's tail again.
 * Writers append to packs of their own and commit with one create-only record, so any number
 * of processes and machines share one store on a disk or in an S3 bucket.
 */
import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import { varint } from 'multiformats'
import { CID } from 'multiformats/cid'
import { ConflictError, IntegrityError, InvalidArgumentError, NotFoundError, StoreError } from '../errors.js'
import { SHA2_256, verifyBlock } from '../format/block.js'
import { collectStore } from './gc.js'
import type { AbortOptions, BlockStore, BlockWriter, CollectOptions, CollectResult, KeepBlock, Pin, Ref, RefsOptions } from './interface.js'
import { blockLinks } from './links.js'
import type { ObjectDriver, ObjectSink } from './objects/interface.js'
import { encodePackIndex, type IndexEntry, PackIndex } from './pack-index.js'
import {
  advanceState,
  appendRecord,
  applyRecord,
  CHECKPOINT_EVERY,
  cloneState,
  type LogRecord,
  readRecords,
  readState,
  type StoreState,
  writeCheckpoint,
} from './root-log.js'

/** The content of the `VERSION` object of a store of this layout. */
export const STORE_VERSION = 'tessera-store 2\n'
/** The `VERSION` of the first release's layout (LevelDB index), migrated on open. */
export const STORE_VERSION_1 = 'tessera-store 1\n'
const MAX_REF_BYTES = 1024
// Reads of blocks closer than this in one pack are merged into one request (remote backends).
const MERGE_GAP = 64 << 10
const MAX_SPAN = 16 << 20
const WRITE_BUFFER = 1 << 20

/** How a store behaves; every member has a default. */
export interface ObjectStoreInit {
  /** Create the store if there is none (default true). */
  readonly create?: boolean
  /** A transaction seals its pack and starts another past this many bytes (default 256 MiB; 64 MiB is better on S3). */
  readonly packBytes?: number
  /** Sealed packs of one transaction being written at once (default 4). */
  readonly uploads?: number
  /**
   * A transaction renews its lease every quarter of this; garbage collection takes a lease
   * older than this for a dead writer's (default 120,000 ms).
   */
  readonly leaseMs?: number
  /** How old the view of pins and references may be before a read looks at the log again (default 100 ms). */
  readonly refreshMs?: number
}

/** Where a block is: its pack, and its offset and length there. */
interface Found {
  readonly pack: string
  readonly offset: number
  readonly length: number
}

/** Blocks one caller waits for, in a batch of remote reads. */
interface PendingRead {
  readonly found: readonly Found[]
  readonly signal: AbortSignal | undefined
  readonly resolve: (blocks: Uint8Array[]) => void
  readonly reject: (error: unknown) => void
}

/** A lease: a transaction in progress (spec/store.md §5.1). */
export interface Lease {
  readonly txn: string
  readonly base: number
  readonly time: number
  readonly host?: string
  readonly pid?: number
}

/**
 * Whether a lease's transaction may still be running: renewed within `leaseMs`, and not
 * written by a process of this machine that no longer exists (so that a killed writer's
 * packs are collected at once, not a lease period later).
 */
export function isLive(lease: Lease, leaseMs: number, now = Date.now()): boolean {
  if (now - lease.time >= leaseMs) return false
  if (lease.host !== hostname() || typeof lease.pid !== 'number') return true
  try {
    process.kill(lease.pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH'
  }
}

/** The object keys of pack `name`. */
export function packKey(name: string): string {
  return `packs/${name}.pack`
}
export function indexKey(name: string): string {
  return `packs/${name}.idx`
}
export function leaseKey(txn: string): string {
  return `txns/${txn}.json`
}

/** A new transaction id: milliseconds since the epoch, 13 digits, and 8 random hex digits. */
export function newTxnId(): string {
  return `${String(Date.now()).padStart(13, '0')}-${randomBytes(4).toString('hex')}`
}

/** The transaction id a pack name starts with, or undefined for other names (a migrated store's packs). */
export function txnOfPack(name: string): string | undefined {
  const match = /^(\d{13}-[0-9a-f]{8})-\d+$/.exec(name)
  return match === null ? undefined : match[1]
}

/** Opens (creating if allowed) the store held by `driver`. */
export async function openObjectStore(driver: ObjectDriver, init: ObjectStoreInit = {}): Promise<ObjectBlockStore> {
  // The state is read beside VERSION (round trips count on S3), and used once VERSION says 2.
  const reading = readState(driver)
  reading.catch(() => {})
  const version = await driver.get('VERSION')
  const text = version === undefined ? undefined : new TextDecoder().decode(version)
  if (text === undefined) {
    if (init.create === false) throw new StoreError('ERR_STORE', `No Tessera store at ${driver.location}`)
    await driver.put('VERSION', new TextEncoder().encode(STORE_VERSION), { ifAbsent: true })
    return openObjectStore(driver, { ...init, create: false })
  }
  if (text === STORE_VERSION_1 && driver.localPath !== undefined) {
    const { migrateV1 } = await import('./migrate-v1.js')
    await migrateV1(driver)
    return openObjectStore(driver, init)
  }
  if (text !== STORE_VERSION) throw new StoreError('ERR_STORE', `${driver.location} is not a Tessera store of a supported version`)
  const store = new ObjectBlockStore(driver, await reading, init)
  await store.loadIndexes()
  return store
}

/** A BlockStore over an ObjectDriver: see the module comment. */
export class ObjectBlockStore implements BlockStore {
  readonly driver: ObjectDriver
  readonly init: Required<Omit<ObjectStoreInit, 'create'>>
  #state: StoreState
  readonly #indexes = new Map<string, PackIndex>()
  // Packs to search, newest first; the pack of the last hit is tried before them.
  #order: string[] = []
  #lastHit: string | undefined
  #refreshed = Date.now()
  #refreshing: Promise<void> | undefined
  #commits: Promise<unknown> = Promise.resolve()
  // Remote reads waiting for the end of this turn of the event loop (see #readMany).
  #batch: PendingRead[] | undefined

  constructor(driver: ObjectDriver, state: StoreState, init: ObjectStoreInit = {}) {
    this.driver = driver
    this.#state = state
    this.init = {
      packBytes: init.packBytes ?? 256 << 20,
      uploads: init.uploads ?? 4,
      leaseMs: init.leaseMs ?? 120_000,
      refreshMs: init.refreshMs ?? 100,
    }
  }

  /** Reads are requests to a server: the backend has no synchronous reads (see BlockStore.remote). */
  get remote(): boolean {
    return this.driver.getRangeSync === undefined
  }

  /** For messages: the backend's location. */
  get location(): string {
    return this.driver.location
  }

  /** The folded root log this store reads (do not modify). */
  get state(): StoreState {
    return this.#state
  }

  async get(cid: CID, options?: AbortOptions): Promise<Uint8Array> {
    const [bytes] = await this.#getMany([cid], options)
    verifyBlock(cid, bytes!)
    return bytes!
  }

  async getMany(cids: readonly CID[], options?: AbortOptions): Promise<Uint8Array[]> {
    const blocks = await this.#getMany(cids, options)
    for (let i = 0; i < cids.length; i++) verifyBlock(cids[i]!, blocks[i]!)
    return blocks
  }

  getManyUnsafe(cids: readonly CID[], options?: AbortOptions): Promise<Uint8Array[]> {
    return this.#getMany(cids, options)
  }

  getManyInto(cids: readonly CID[], scratch: Uint8Array): Uint8Array[] | undefined {
    const getRangeSync = this.driver.getRangeSync?.bind(this.driver)
    // A subclass that overrides getMany (to count or delay reads) sees every read through it.
    if (getRangeSync === undefined || this.getMany !== ObjectBlockStore.prototype.getMany) return undefined
    this.#maybeRefresh()
    const blocks = new Array<Uint8Array>(cids.length)
    let at = 0
    for (let i = 0; i < cids.length; i++) {
      const found = this.#find(cids[i]!)
      // Not in this view (getMany refreshes it), or more than fits.
      if (found === undefined || at + found.length > scratch.length) return undefined
      let bytes: Uint8Array
      try {
        bytes = getRangeSync(packKey(found.pack), found.offset, found.length, scratch.subarray(at, at + found.length))
      } catch (error) {
        // A pack deleted since this view was read: getMany finds its blocks in a fresh one.
        if ((error as { code?: string }).code === 'ERR_NOT_FOUND') return undefined
        throw error
      }
      verifyBlock(cids[i]!, bytes)
      blocks[i] = bytes
      at += found.length
    }
    return blocks
  }

  async #getMany(cids: readonly CID[], options?: AbortOptions): Promise<Uint8Array[]> {
    options?.signal?.throwIfAborted()
    this.#maybeRefresh()
    const found = await this.#findMany(cids)
    try {
      return await this.#readMany(found, options)
    } catch (error) {
      // A pack deleted since this view was read (a collection purged it): its blocks are in
      // the packs that replaced it, which a fresh view names.
      if ((error as { code?: string }).code !== 'ERR_NOT_FOUND') throw error
      await this.refresh(options)
      return this.#readMany(await this.#findMany(cids), options)
    }
  }

  async has(cid: CID, options?: AbortOptions): Promise<boolean> {
    options?.signal?.throwIfAborted()
    await this.#maybeRefreshAsync(options)
    return this.#find(cid) !== undefined
  }

  async size(cid: CID, options?: AbortOptions): Promise<number | undefined> {
    options?.signal?.throwIfAborted()
    await this.#maybeRefreshAsync(options)
    return this.#find(cid)?.length
  }

  async begin(options?: AbortOptions): Promise<BlockWriter> {
    options?.signal?.throwIfAborted()
    const txn = newTxnId()
    const writer = new ObjectWriter(this, txn, this.#state.gen)
    await writer.start(options)
    return writer
  }

  async *pins(options?: AbortOptions): AsyncIterable<Pin> {
    await this.#maybeRefreshAsync(options)
    const pins = [...this.#state.pins].map(([cid, pin]) => ({ cid: CID.parse(cid), label: pin.label, added: pin.added }))
    pins.sort((a, b) => a.added - b.added)
    yield* pins
  }

  async ref(name: string, options?: AbortOptions): Promise<CID | undefined> {
    checkRefName(name)
    await this.#maybeRefreshAsync(options)
    const cid = this.#state.refs.get(name)
    return cid === undefined ? undefined : parseStoredCid(cid)
  }

  async *refs(options: RefsOptions = {}): AsyncIterable<Ref> {
    await this.#maybeRefreshAsync(options)
    const prefix = options.prefix ?? ''
    const names = [...this.#state.refs.keys()].filter((name) => name.startsWith(prefix))
    // UTF-8 bytewise order, as spec/store.md §4 promises.
    names.sort((a, b) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')))
    for (const name of names) {
      options.signal?.throwIfAborted()
      const cid = this.#state.refs.get(name)
      if (cid !== undefined) yield { name, cid: parseStoredCid(cid) }
    }
  }

  async collect(mark: (options: AbortOptions) => Promise<KeepBlock>, options: CollectOptions = {}): Promise<CollectResult> {
    return collectStore(this, mark, options)
  }

  async storedBytes(options?: AbortOptions): Promise<number> {
    let total = 0
    for await (const object of this.driver.list('packs/', options)) total += object.size
    return total
  }

  async close(): Promise<void> {
    await this.#commits.catch(() => {})
    await this.driver.close()
  }

  /** Reads the log's tail now: commits of other processes since the last look become visible. */
  refresh(options?: AbortOptions): Promise<void> {
    this.#refreshing ??= (async () => {
      try {
        const next = cloneState(this.#state)
        const ok = await advanceState(this.driver, next, options)
        const state = ok ? next : await readState(this.driver, options)
        await this.loadIndexes(state, options)
        this.#install(state)
        this.#refreshed = Date.now()
      } finally {
        this.#refreshing = undefined
      }
    })()
    return this.#refreshing
  }

  /** Loads the index of every live pack of `state` not loaded yet. */
  async loadIndexes(state: StoreState = this.#state, options?: AbortOptions): Promise<void> {
    const missing = [...state.packs.keys()].filter((name) => !this.#indexes.has(name))
    let next = 0
    const worker = async () => {
      while (next < missing.length) {
        const name = missing[next++]!
        let index: PackIndex
        try {
          index = await this.readIndex(name, options)
        } catch (error) {
          if ((error as { code?: string }).code !== 'ERR_INTEGRITY') throw error
          // A missing or damaged index does not close the store (spec/store.md §8): the pack's
          // intact blocks are found by reading it, until `tessera repair` writes its index.
          const { scanIndex } = await import('./repair.js')
          index = await scanIndex(this.driver, name, options)
        }
        this.#indexes.set(name, index)
      }
    }
    await Promise.all(Array.from({ length: Math.min(16, missing.length) }, worker))
    if (state === this.#state) this.#install(state)
  }

  /** Reads every pack index again (after one was repaired or replaced). */
  async reloadIndexes(options?: AbortOptions): Promise<void> {
    this.#indexes.clear()
    await this.loadIndexes(this.#state, options)
  }

  // Makes `state` the view, unless a newer one was installed meanwhile (a commit of this process).
  #install(state: StoreState): void {
    if (state.gen < this.#state.gen) return
    this.#state = state
    for (const name of this.#indexes.keys()) {
      if (state.packs.has(name)) continue
      this.#indexes.delete(name)
      // Dropped by a collection: a kept handle would hold its space once it is purged.
      this.driver.release?.(packKey(name))
    }
    this.#order = [...state.packs.keys()]
      .filter((name) => this.#indexes.has(name))
      .sort()
      .reverse()
  }

  /** The verified index of pack `name` (ERR_INTEGRITY, naming `tessera repair`, if it is missing or damaged). */
  async readIndex(name: string, options?: AbortOptions): Promise<PackIndex> {
    const bytes = await this.driver.get(indexKey(name), options)
    if (bytes === undefined) {
      throw new IntegrityError(`The index of pack ${name} is missing from ${this.driver.location}: run \`tessera repair\``)
    }
    try {
      return new PackIndex(bytes, `The index of pack ${name}`)
    } catch (cause) {
      throw new IntegrityError(`${(cause as Error).message}: run \`tessera repair\``, { cause })
    }
  }

  /** Applies a record this process just committed, if nothing else was read meanwhile. */
  adopt(record: LogRecord, indexes: ReadonlyMap<string, PackIndex>): boolean {
    if (record.gen !== this.#state.gen + 1) return false
    const state = cloneState(this.#state)
    applyRecord(state, record)
    for (const [name, index] of indexes) this.#indexes.set(name, index)
    this.#install(state)
    return true
  }

  /** Serializes this process's commits (they would only race each other for the same record number). */
  serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#commits.catch(() => {}).then(fn)
    this.#commits = run
    return run
  }

  /** Where `cid`'s block is in the live packs of this view, or undefined. */
  findLive(digest: Uint8Array): Found | undefined {
    const last = this.#lastHit
    if (last !== undefined) {
      const index = this.#indexes.get(last)
      const i = index?.find(digest) ?? -1
      if (i >= 0) return { pack: last, offset: index!.offset(i), length: index!.length(i) }
    }
    for (const name of this.#order) {
      if (name === last) continue
      const index = this.#indexes.get(name)!
      const i = index.find(digest)
      if (i >= 0) {
        this.#lastHit = name
        return { pack: name, offset: index.offset(i), length: index.length(i) }
      }
    }
    return undefined
  }

  /** The pack that holds `digest` among live packs, with the generation that added it. */
  packOf(digest: Uint8Array): { pack: string; gen: number } | undefined {
    const found = this.findLive(digest)
    return found === undefined ? undefined : { pack: found.pack, gen: this.#state.packs.get(found.pack) ?? 0 }
  }

  /** The bytes at a place in a pack. */
  async readAt(found: Found, options?: AbortOptions): Promise<Uint8Array> {
    const key = packKey(found.pack)
    if (this.driver.getRangeSync !== undefined) return this.driver.getRangeSync(key, found.offset, found.length)
    return this.driver.getRange(key, found.offset, found.length, options)
  }

  /** Every lease (transaction in progress, or left by a dead one). */
  async leases(options?: AbortOptions): Promise<Lease[]> {
    const out: Lease[] = []
    for await (const { key } of this.driver.list('txns/', options)) {
      const bytes = await this.driver.get(key, options)
      if (bytes === undefined) continue
      try {
        out.push(JSON.parse(new TextDecoder().decode(bytes)) as Lease)
      } catch {
        // A torn or foreign object: not a lease.
      }
    }
    return out
  }

  #find(cid: CID): Found | undefined {
    if (cid.multihash.code !== SHA2_256) return undefined
    return this.findLive(cid.multihash.digest)
  }

  async #findMany(cids: readonly CID[]): Promise<Found[]> {
    let found = cids.map((cid) => this.#find(cid))
    if (found.includes(undefined)) {
      // Committed by another process since this view was read?
      await this.refresh()
      found = cids.map((cid) => this.#find(cid))
    }
    return found.map((f, i) => {
      if (f === undefined) {
        const cid = cids[i]!
        if (cid.multihash.code !== SHA2_256)
          throw new IntegrityError(`Unsupported multihash 0x${cid.multihash.code.toString(16)} in ${cid}`)
        throw new NotFoundError(`Block ${cid} not found`)
      }
      return f
    })
  }

  #readMany(found: readonly Found[], options?: AbortOptions): Promise<Uint8Array[]> {
    if (this.driver.getRangeSync !== undefined)
      return Promise.resolve(found.map((f) => this.driver.getRangeSync!(packKey(f.pack), f.offset, f.length)))
    // Remote backends: the reads asked for in one turn of the event loop (a crop's index blocks,
    // then its tiles, read ahead band by band; concurrent crops of a server) go out together.
    return new Promise((resolve, reject) => {
      if (this.#batch === undefined) {
        this.#batch = []
        setImmediate(() => void this.#flushReads())
      }
      this.#batch.push({ found, signal: options?.signal, resolve, reject })
    })
  }

  /**
   * Reads a batch: one ranged request per run of nearby blocks of one pack, all at once. A tile
   * row's tiles lie next to each other in their pack, so a crop's row costs one request, not
   * one a tile. A failed request fails the reads that needed it, not the others.
   */
  async #flushReads(): Promise<void> {
    const batch = this.#batch ?? []
    this.#batch = undefined
    const members: Array<{ found: Found; read: number; slot: number }> = []
    for (const [r, read] of batch.entries()) for (const [slot, found] of read.found.entries()) members.push({ found, read: r, slot })
    members.sort((a, b) => compareFound(a.found, b.found))
    const spans: Array<{ pack: string; start: number; end: number; members: typeof members }> = []
    for (const member of members) {
      const f = member.found
      const last = spans.at(-1)
      if (last !== undefined && last.pack === f.pack && f.offset - last.end <= MERGE_GAP && f.offset + f.length - last.start <= MAX_SPAN) {
        last.end = Math.max(last.end, f.offset + f.length)
        last.members.push(member)
      } else spans.push({ pack: f.pack, start: f.offset, end: f.offset + f.length, members: [member] })
    }
    // One caller's signal cancels the requests only if every read of the batch has it (a
    // crop's own reads); otherwise each caller checks its own when its blocks arrive.
    const signal = batch.every((read) => read.signal === batch[0]?.signal) ? batch[0]?.signal : undefined
    const outs = batch.map((read) => new Array<Uint8Array>(read.found.length))
    const failures = new Array<unknown>(batch.length)
    await Promise.all(
      spans.map(async (span) => {
        try {
          const bytes = await this.driver.getRange(packKey(span.pack), span.start, span.end - span.start, { signal })
          for (const { found, read, slot } of span.members)
            outs[read]![slot] = bytes.subarray(found.offset - span.start, found.offset - span.start + found.length)
        } catch (error) {
          for (const { read } of span.members) failures[read] ??= error
        }
      }),
    )
    for (const [r, read] of batch.entries()) {
      if (failures[r] !== undefined) read.reject(failures[r])
      else read.resolve(outs[r]!)
    }
  }

  // Crops call this on every read: a clock check, and a refresh in the background when the view is old.
  #maybeRefresh(): void {
    if (Date.now() - this.#refreshed >= this.init.refreshMs && this.#refreshing === undefined) this.refresh().catch(() => {})
  }

  async #maybeRefreshAsync(options?: AbortOptions): Promise<void> {
    if (Date.now() - this.#refreshed >= this.init.refreshMs) await this.refresh(options)
  }
}

function compareFound(a: Found, b: Found): number {
  return a.pack < b.pack ? -1 : a.pack > b.pack ? 1 : a.offset - b.offset
}

/** The pack a transaction appends to. */
interface OpenPack {
  readonly name: string
  readonly sink: ObjectSink
  readonly entries: IndexEntry[]
  written: number
}

/** What a transaction expects of a reference it sets: any value (undefined), none (null), or this CID. */
type Expectation = CID | null | undefined

/** One transaction: packs of its own, a lease while it is open, one log record on commit (spec/store.md §5). */
class ObjectWriter implements BlockWriter {
  readonly #store: ObjectBlockStore
  readonly #txn: string
  readonly #base: number
  #open = true
  #started = false
  #committed = false
  #renewal: NodeJS.Timeout | undefined
  // The pack being appended to.
  #pack: OpenPack | undefined
  #opening: Promise<OpenPack> | undefined
  #buffer = Buffer.allocUnsafe(WRITE_BUFFER)
  #buffered = 0
  #flushing: Promise<void> = Promise.resolve()
  #packCount = 0
  readonly #sealing = new Set<Promise<void>>()
  readonly #sealed = new Map<string, PackIndex>()
  // Blocks of this transaction (hex digest -> where), so a block is appended once.
  readonly #pending = new Map<string, { pack: string; offset: number; length: number }>()
  readonly #pins = new Map<string, string>()
  readonly #unpins = new Set<string>()
  readonly #refs = new Map<string, { cid: CID | undefined; expected: Expectation }>()
  newBytes = 0

  constructor(store: ObjectBlockStore, txn: string, base: number) {
    this.#store = store
    this.#txn = txn
    this.#base = base
  }

  /** Writes the lease (before any pack, so that no collection takes them for a dead writer's). */
  async start(options?: AbortOptions): Promise<void> {
    await this.#writeLease(options)
    this.#started = true
    const every = Math.max(1000, this.#store.init.leaseMs / 4)
    this.#renewal = setInterval(() => {
      this.#writeLease().catch(() => {})
    }, every)
    this.#renewal.unref()
  }

  async put(cid: CID, bytes: Uint8Array, options?: AbortOptions): Promise<boolean> {
    options?.signal?.throwIfAborted()
    this.#check()
    if (cid.multihash.code !== SHA2_256 || cid.multihash.digest.length !== 32) {
      throw new InvalidArgumentError(`The store keeps sha2-256 blocks only, not ${cid}`)
    }
    const digest = cid.multihash.digest
    const key = Buffer.from(digest).toString('hex')
    // Synchronous up to the reservation: concurrent puts of one block (imports sharing a writer) append it once.
    if (this.#pending.has(key) || this.#store.findLive(digest) !== undefined) return false
    let pack = this.#pack
    // Appends are synchronous once the pack is known: a pack sealed or opened while this put
    // waited is looked up again.
    while (pack === undefined || pack !== this.#pack) pack = this.#pack ?? (await this.#openPack())
    if (this.#pending.has(key)) return false
    const cidBytes = cid.bytes
    const header = varint.encodeTo(cidBytes.length + bytes.length, new Uint8Array(varint.encodingLength(cidBytes.length + bytes.length)))
    const offset = pack.written + header.length + cidBytes.length
    this.#append(header)
    this.#append(cidBytes)
    this.#append(bytes)
    pack.written += header.length + cidBytes.length + bytes.length
    pack.entries.push({ digest: digest.slice(), offset, length: bytes.length, codec: cid.code })
    this.#pending.set(key, { pack: pack.name, offset, length: bytes.length })
    this.newBytes += bytes.length
    if (pack.written >= this.#store.init.packBytes) await this.#sealCurrent(options)
    return true
  }

  pin(cid: CID, label: string): void {
    this.#check()
    this.#unpins.delete(cid.toString())
    this.#pins.set(cid.toString(), label)
  }

  unpin(cid: CID): void {
    this.#check()
    this.#pins.delete(cid.toString())
    this.#unpins.add(cid.toString())
  }

  setRef(name: string, cid: CID | undefined, expected?: CID | null): void {
    this.#check()
    checkRefName(name)
    this.#refs.set(name, { cid, expected })
  }

  async commit(options?: AbortOptions): Promise<void> {
    options?.signal?.throwIfAborted()
    this.#check()
    try {
      await this.#store.serialize(() => this.#commit(options))
      this.#committed = true
      this.#open = false
      await this.#finish()
    } catch (error) {
      // A conflict leaves the transaction open: the caller may look again and retry.
      if (!(error instanceof ConflictError)) await this.abort()
      throw error
    }
  }

  async abort(): Promise<void> {
    if (!this.#started || this.#committed) return
    this.#open = false
    await Promise.allSettled([...this.#sealing])
    if (this.#pack !== undefined) await this.#pack.sink.abort().catch(() => {})
    this.#pack = undefined
    const driver = this.#store.driver
    for (const name of this.#sealed.keys()) {
      await driver.delete(packKey(name)).catch(() => {})
      await driver.delete(indexKey(name)).catch(() => {})
    }
    this.#sealed.clear()
    this.#pending.clear()
    await this.#finish()
  }

  async #commit(options?: AbortOptions): Promise<void> {
    const store = this.#store
    const empty = this.#pending.size === 0 && this.#pins.size === 0 && this.#unpins.size === 0 && this.#refs.size === 0
    if (empty) return
    await this.#sealCurrent(options)
    await Promise.all([...this.#sealing])
    let checked = this.#base
    let markFloor: number | undefined
    for (;;) {
      await store.refresh(options)
      const state = store.state
      const records = await readRecords(store.driver, checked, options)
      if (records === undefined) {
        throw new ConflictError(`The store's log moved past this transaction (begun at generation ${this.#base}): run it again`, {
          reason: 'transaction',
        })
      }
      let dropped = false
      for (const record of records) {
        if (record.expire?.includes(this.#txn)) {
          throw new ConflictError('This transaction was taken for a dead one (its lease lapsed) and its packs deleted: run it again', {
            reason: 'transaction',
          })
        }
        if (record.drop !== undefined && record.drop.length > 0) {
          dropped = true
          markFloor = Math.min(markFloor ?? Number.POSITIVE_INFINITY, record.mark ?? record.gen)
        }
      }
      checked = Math.max(checked, records.at(-1)?.gen ?? checked)
      for (const [name, { expected }] of this.#refs) {
        if (expected === undefined) continue
        const current = state.refs.get(name) ?? null
        if (current !== (expected === null ? null : expected.toString())) {
          throw new ConflictError(`Reference ${name} changed since this transaction read it`)
        }
      }
      // A collection dropped packs while this transaction was open: make sure nothing it
      // links to lives only in them (spec/store.md §10.2), copying what does.
      if (dropped && markFloor !== undefined) await this.#rescue(markFloor, options)
      const record: LogRecord = {
        gen: state.gen + 1,
        time: Date.now(),
        base: this.#base,
        txn: this.#txn,
        ...(this.#sealed.size > 0 ? { add: [...this.#sealed.keys()] } : {}),
        ...(this.#pins.size > 0 ? { pins: [...this.#pins].map(([cid, label]) => ({ cid, label })) } : {}),
        ...(this.#unpins.size > 0 ? { unpins: [...this.#unpins] } : {}),
        ...(this.#refs.size > 0
          ? { refs: Object.fromEntries([...this.#refs].map(([name, { cid }]) => [name, cid === undefined ? null : cid.toString()])) }
          : {}),
      }
      if (await appendRecord(store.driver, record, options)) {
        if (!store.adopt(record, this.#sealed)) await store.refresh(options)
        if (record.gen % CHECKPOINT_EVERY === 0) await this.#checkpoint(options).catch(() => {})
        return
      }
    }
  }

  /** Copies into this transaction every block its roots reach that lives only in dropped packs. */
  async #rescue(markFloor: number, options?: AbortOptions): Promise<void> {
    const store = this.#store
    const roots: CID[] = [...this.#pins.keys()].map((cid) => CID.parse(cid))
    for (const { cid } of this.#refs.values()) if (cid !== undefined) roots.push(cid)
    const dropped = new Map<string, PackIndex>()
    for (const name of store.state.dropped.keys()) {
      try {
        dropped.set(name, await store.readIndex(name, options))
      } catch {
        // Purged already: what it held is not to be had.
      }
    }
    const seen = new Set<string>()
    const stack = [...roots]
    while (stack.length > 0) {
      const cid = stack.pop()!
      const key = Buffer.from(cid.multihash.digest).toString('hex')
      if (seen.has(key) || cid.multihash.code !== SHA2_256) continue
      seen.add(key)
      const digest = cid.multihash.digest
      const own = this.#pending.get(key)
      let bytes: Uint8Array | undefined
      if (own !== undefined) {
        bytes = await this.#readOwn(own, options)
      } else {
        const live = store.packOf(digest)
        // A pack the collection saw and kept whole holds only live blocks, whose links it kept too.
        if (live !== undefined && live.gen <= markFloor) continue
        if (live !== undefined) {
          bytes = await store.readAt(store.findLive(digest)!, options)
        } else {
          for (const [name, index] of dropped) {
            const i = index.find(digest)
            if (i < 0) continue
            try {
              bytes = await store.driver.getRange(packKey(name), index.offset(i), index.length(i), options)
            } catch (cause) {
              // Purged meanwhile: this transaction outlived the protection of its lease.
              throw new ConflictError(`Block ${cid} was collected while this transaction relied on it: run it again`, {
                cause,
                reason: 'transaction',
              })
            }
            verifyBlock(cid, bytes)
            await this.put(cid, bytes, options)
            break
          }
        }
      }
      if (bytes === undefined) continue // absent everywhere: a weak link (spec/dataset.md §8)
      for (const link of blockLinks(cid, bytes)) stack.push(link)
    }
    await this.#sealCurrent(options)
    await Promise.all([...this.#sealing])
  }

  async #readOwn(where: { pack: string; offset: number; length: number }, options?: AbortOptions): Promise<Uint8Array> {
    if (this.#pack !== undefined && where.pack === this.#pack.name) await this.#sealCurrent(options)
    await Promise.all([...this.#sealing])
    return this.#store.driver.getRange(packKey(where.pack), where.offset, where.length, options)
  }

  async #checkpoint(options?: AbortOptions): Promise<void> {
    const store = this.#store
    const now = Date.now()
    const live = (await store.leases(options)).filter((lease) => isLive(lease, store.init.leaseMs, now))
    const keepFrom = Math.min(store.state.gen, ...live.map((lease) => lease.base))
    await writeCheckpoint(store.driver, store.state, keepFrom, options)
  }

  // One pack is opened at a time, however many puts wait for it.
  #openPack(): Promise<OpenPack> {
    this.#opening ??= (async () => {
      try {
        const name = `${this.#txn}-${++this.#packCount}`
        this.#pack = { name, sink: await this.#store.driver.create(packKey(name)), entries: [], written: 0 }
        return this.#pack
      } finally {
        this.#opening = undefined
      }
    })()
    return this.#opening
  }

  #append(bytes: Uint8Array): void {
    if (bytes.length > this.#buffer.length - this.#buffered) {
      this.#flush()
      if (bytes.length > this.#buffer.length) {
        this.#write(bytes.slice())
        return
      }
    }
    this.#buffer.set(bytes, this.#buffered)
    this.#buffered += bytes.length
  }

  #flush(): void {
    if (this.#buffered === 0) return
    const chunk = this.#buffer.subarray(0, this.#buffered)
    this.#buffer = Buffer.allocUnsafe(WRITE_BUFFER)
    this.#buffered = 0
    this.#write(chunk)
  }

  #write(chunk: Uint8Array): void {
    const sink = this.#pack!.sink
    this.#flushing = this.#flushing.then(() => sink.write(chunk))
  }

  /** Seals the current pack: its bytes made durable, then its index written (in the background, a few at a time). */
  async #sealCurrent(options?: AbortOptions): Promise<void> {
    const pack = this.#pack
    if (pack === undefined) return
    this.#flush()
    this.#pack = undefined
    const flushed = this.#flushing
    this.#flushing = Promise.resolve()
    const driver = this.#store.driver
    const seal = (async () => {
      await flushed
      await pack.sink.finish(options)
      const bytes = encodePackIndex(pack.entries)
      await driver.put(indexKey(pack.name), bytes, options)
      this.#sealed.set(pack.name, new PackIndex(bytes))
    })()
    this.#sealing.add(seal)
    seal.then(
      () => this.#sealing.delete(seal),
      () => {},
    )
    await this.#writeLease(options)
    while (this.#sealing.size >= this.#store.init.uploads) await Promise.race([...this.#sealing])
  }

  async #writeLease(options?: AbortOptions): Promise<void> {
    const lease: Lease = { txn: this.#txn, base: this.#base, time: Date.now(), host: hostname(), pid: process.pid }
    await this.#store.driver.put(leaseKey(this.#txn), new TextEncoder().encode(`${JSON.stringify(lease)}\n`), options)
  }

  async #finish(): Promise<void> {
    if (this.#renewal !== undefined) clearInterval(this.#renewal)
    this.#renewal = undefined
    await this.#store.driver.delete(leaseKey(this.#txn)).catch(() => {})
  }

  #check(): void {
    if (!this.#open) throw new StoreError('ERR_STORE', 'Transaction already finished')
  }
}

/** InvalidArgumentError for an empty or over-long reference name. */
function checkRefName(name: string): void {
  const bytes = typeof name === 'string' ? Buffer.byteLength(name, 'utf8') : -1
  if (bytes <= 0 || bytes > MAX_REF_BYTES) {
    throw new InvalidArgumentError(`Expected a reference name of 1 to ${MAX_REF_BYTES} UTF-8 bytes but received ${JSON.stringify(name)}`)
  }
}

function parseStoredCid(text: string): CID {
  try {
    return CID.parse(text)
  } catch (cause) {
    throw new IntegrityError('Malformed CID in the store root log', { cause })
  }
}
