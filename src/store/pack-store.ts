/**
 * The embedded store (spec/store.md): block bytes in append-only pack files, located through
 * a LevelDB index. This file is the one importer of `level`.
 *
 * Pack files are written by one transaction each and framed like a CARv1 body
 * (varint length | CID | bytes), so the index can be rebuilt from them. Positional reads from
 * a pack are an order of magnitude cheaper than LevelDB reads of large values, which is why
 * payloads do not live in LevelDB itself (WiscKey's key/value separation).
 */
import { closeSync, fsyncSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs'
import { mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Level } from 'level'
import { varint } from 'multiformats'
import { CID } from 'multiformats/cid'
import { IntegrityError, InvalidArgumentError, NotFoundError, StoreError } from '../errors.js'
import { verifyBlock } from '../format/block.js'
import { collectPacks } from './gc.js'
import type {
  AbortOptions,
  BlockLocation,
  BlockStore,
  BlockWriter,
  CollectOptions,
  CollectResult,
  KeepBlock,
  Pin,
  Ref,
  RefsOptions,
} from './interface.js'
import {
  blockKey,
  decodeLocation,
  encodeLocation,
  type Location,
  PIN_PREFIX,
  packPath,
  prefixed,
  REF_PREFIX,
  syncDirectory,
} from './pack-file.js'

const STORE_VERSION = 'tessera-store 1\n'
const WRITE_BUFFER = 4 << 20
const MAX_REF_BYTES = 1024

/** Options for opening a store directory. */
export interface PackStoreInit {
  /** How long to wait for another process to release the store, in ms (default 30000). */
  readonly lockTimeout?: number
  /** Create the store if it does not exist (default true). */
  readonly create?: boolean
}

/** Opens (creating if needed) the store in `dir`. */
export async function openPackStore(dir: string, init: PackStoreInit = {}): Promise<PackStore> {
  const versionFile = join(dir, 'VERSION')
  let version: string | undefined
  try {
    version = await readFile(versionFile, 'utf8')
  } catch {
    if (init.create === false) throw new StoreError('ERR_STORE', `No Tessera store at ${dir}`)
  }
  if (version === undefined) {
    await mkdir(join(dir, 'packs'), { recursive: true })
    // Written last and atomically: a directory with a VERSION file is a complete store.
    await writeFile(`${versionFile}.tmp`, STORE_VERSION)
    await rename(`${versionFile}.tmp`, versionFile)
  } else if (version !== STORE_VERSION) {
    throw new StoreError('ERR_STORE', `${dir} is not a Tessera store of a supported version`)
  }
  const db = new Level<Uint8Array, Uint8Array>(join(dir, 'index'), { keyEncoding: 'view', valueEncoding: 'view' })
  const deadline = Date.now() + (init.lockTimeout ?? 30_000)
  for (;;) {
    try {
      await db.open()
      break
    } catch (error) {
      const locked = (error as { cause?: { code?: string } }).cause?.code === 'LEVEL_LOCKED'
      if (!locked) throw new StoreError('ERR_STORE', `Cannot open the store index at ${dir}`, { cause: error })
      if (Date.now() >= deadline) {
        throw new StoreError('ERR_STORE_LOCKED', `The store at ${dir} is in use by another process`, { cause: error })
      }
      await sleep(50)
    }
  }
  return new PackStore(dir, db)
}

/** A BlockStore over pack files and a LevelDB index. */
export class PackStore implements BlockStore {
  readonly dir: string
  readonly #db: Level<Uint8Array, Uint8Array>
  readonly #fds = new Map<number, number>()
  // In-process exclusion of garbage collection and transactions (spec/store.md §10).
  #openWriters = 0
  #collecting: Promise<unknown> | undefined

  constructor(dir: string, db: Level<Uint8Array, Uint8Array>) {
    this.dir = dir
    this.#db = db
  }

  async get(cid: CID, options?: AbortOptions): Promise<Uint8Array> {
    const [bytes] = await this.getMany([cid], options)
    return bytes!
  }

  async getMany(cids: readonly CID[], options?: AbortOptions): Promise<Uint8Array[]> {
    const blocks = this.#readMany(cids, options)
    for (let i = 0; i < cids.length; i++) verifyBlock(cids[i]!, blocks[i]!)
    return blocks
  }

  async getManyUnsafe(cids: readonly CID[], options?: AbortOptions): Promise<Uint8Array[]> {
    return this.#readMany(cids, options)
  }

  async locateMany(cids: readonly CID[], options?: AbortOptions): Promise<BlockLocation[]> {
    options?.signal?.throwIfAborted()
    return cids.map((cid) => {
      const value = this.#db.getSync(blockKey(cid))
      if (value === undefined) throw new NotFoundError(`Block ${cid} not found`)
      const { pack, offset, length } = decodeLocation(value)
      return { path: packPath(this.dir, pack), offset, length }
    })
  }

  #readMany(cids: readonly CID[], options?: AbortOptions): Uint8Array[] {
    options?.signal?.throwIfAborted()
    // Synchronous index lookups: a LevelDB hit in its block cache costs microseconds, far
    // less than a round trip through libuv's thread pool, and crops make many of them.
    return cids.map((cid) => {
      const value = this.#db.getSync(blockKey(cid))
      if (value === undefined) throw new NotFoundError(`Block ${cid} not found`)
      return this.#read(decodeLocation(value))
    })
  }

  async has(cid: CID): Promise<boolean> {
    return (await this.#db.get(blockKey(cid))) !== undefined
  }

  async size(cid: CID): Promise<number | undefined> {
    const value = await this.#db.get(blockKey(cid))
    return value === undefined ? undefined : decodeLocation(value).length
  }

  async begin(options?: AbortOptions): Promise<BlockWriter> {
    options?.signal?.throwIfAborted()
    // A collection in progress: wait for it, so that no block it is deleting gets reused.
    while (this.#collecting !== undefined) await this.#collecting.catch(() => {})
    this.#openWriters++
    try {
      const { id, fd } = await this.createPack()
      return new PackWriter(this, this.#db, id, fd, () => {
        this.#openWriters--
      })
    } catch (error) {
      this.#openWriters--
      throw error
    }
  }

  /**
   * Creates the next pack file exclusively (spec/store.md §3): id = 1 + the largest id in
   * `packs/`, incremented on EEXIST. Returns its id and an open file descriptor.
   */
  async createPack(): Promise<{ id: number; fd: number }> {
    const names = await readdir(join(this.dir, 'packs'))
    const ids = names.map((name) => Number.parseInt(name, 10)).filter(Number.isInteger)
    let id = ids.length === 0 ? 1 : Math.max(...ids) + 1
    for (;;) {
      try {
        return { id, fd: openSync(packPath(this.dir, id), 'wx') }
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
        id++
      }
    }
  }

  async *pins(): AsyncIterable<Pin> {
    const pins: Pin[] = []
    for await (const [key, value] of this.#db.iterator({ gte: Uint8Array.of(PIN_PREFIX), lt: Uint8Array.of(PIN_PREFIX + 1) })) {
      const record = JSON.parse(Buffer.from(value).toString('utf8')) as { label: string; added: number }
      pins.push({ cid: CID.decode(key.subarray(1)), label: record.label, added: record.added })
    }
    pins.sort((a, b) => a.added - b.added)
    yield* pins
  }

  async ref(name: string, options?: AbortOptions): Promise<CID | undefined> {
    options?.signal?.throwIfAborted()
    const value = await this.#db.get(refKey(name))
    return value === undefined ? undefined : decodeRefValue(value)
  }

  async *refs(options: RefsOptions = {}): AsyncIterable<Ref> {
    const prefix = refKey(options.prefix ?? '', true)
    const end = new Uint8Array(prefix.length + 1)
    end.set(prefix)
    // Keys are 'r' ‖ UTF-8 name, and no UTF-8 byte is 0xff: this bounds every name with the prefix.
    end[prefix.length] = 0xff
    for await (const [key, value] of this.#db.iterator({ gte: prefix, lt: end })) {
      options.signal?.throwIfAborted()
      yield { name: Buffer.from(key.subarray(1)).toString('utf8'), cid: decodeRefValue(value) }
    }
  }

  async collect(mark: (options: AbortOptions) => Promise<KeepBlock>, options: CollectOptions = {}): Promise<CollectResult> {
    options.signal?.throwIfAborted()
    if (this.#openWriters > 0 || this.#collecting !== undefined) {
      throw new StoreError('ERR_STORE_LOCKED', `The store at ${this.dir} has a transaction open: garbage collection needs it alone`)
    }
    const run = (async () => {
      const keep = await mark({ signal: options.signal })
      options.onPhase?.('marked')
      return collectPacks(
        {
          dir: this.dir,
          db: this.#db,
          createPack: () => this.createPack(),
          releasePack: (id) => this.#release(id),
          storedBytes: () => this.storedBytes(),
        },
        keep,
        options,
      )
    })()
    this.#collecting = run
    try {
      return await run
    } finally {
      this.#collecting = undefined
    }
  }

  async storedBytes(): Promise<number> {
    let total = 0
    for (const name of await readdir(join(this.dir, 'packs'))) total += (await stat(join(this.dir, 'packs', name))).size
    return total
  }

  async close(): Promise<void> {
    for (const fd of this.#fds.values()) closeSync(fd)
    this.#fds.clear()
    await this.#db.close()
  }

  // Closes the cached handle of a pack about to be deleted: an open handle would keep its space.
  #release(id: number): void {
    const fd = this.#fds.get(id)
    if (fd === undefined) return
    closeSync(fd)
    this.#fds.delete(id)
  }

  #read(location: Location): Uint8Array {
    let fd = this.#fds.get(location.pack)
    if (fd === undefined) {
      try {
        fd = openSync(packPath(this.dir, location.pack), 'r')
      } catch (cause) {
        throw new IntegrityError(`Pack ${location.pack} of the store at ${this.dir} cannot be read`, { cause })
      }
      this.#fds.set(location.pack, fd)
    }
    const bytes = Buffer.allocUnsafe(location.length)
    // Synchronous positional reads: a page-cache hit costs microseconds, less than a promise round trip.
    const read = readSync(fd, bytes, 0, location.length, location.offset)
    if (read !== location.length) throw new IntegrityError(`Pack ${location.pack} is truncated`)
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length)
  }
}

/** Appends one transaction's blocks to its own pack file. */
class PackWriter implements BlockWriter {
  readonly #store: PackStore
  readonly #db: Level<Uint8Array, Uint8Array>
  readonly #pack: number
  #fd: number | undefined
  #buffer = Buffer.allocUnsafe(WRITE_BUFFER)
  #buffered = 0
  #written = 0
  readonly #pending = new Map<string, { key: Uint8Array; location: Location }>()
  readonly #pins: Array<{ cid: CID; label: string }> = []
  readonly #unpins: CID[] = []
  readonly #refs = new Map<string, CID | undefined>()
  readonly #onFinish: () => void
  newBytes = 0

  constructor(store: PackStore, db: Level<Uint8Array, Uint8Array>, pack: number, fd: number, onFinish: () => void) {
    this.#store = store
    this.#db = db
    this.#pack = pack
    this.#fd = fd
    this.#onFinish = onFinish
  }

  async put(cid: CID, bytes: Uint8Array, options?: AbortOptions): Promise<boolean> {
    options?.signal?.throwIfAborted()
    this.#open()
    const key = blockKey(cid)
    const pendingKey = Buffer.from(key).toString('latin1')
    if (this.#pending.has(pendingKey) || (await this.#db.get(key)) !== undefined) return false
    // Another put of the same block (concurrent imports share a writer) may have run meanwhile.
    if (this.#pending.has(pendingKey)) return false
    const cidBytes = cid.bytes
    const header = varint.encodeTo(cidBytes.length + bytes.length, new Uint8Array(10))
    const headerLength = varint.encodingLength(cidBytes.length + bytes.length)
    const offset = this.#written + this.#buffered + headerLength + cidBytes.length
    this.#append(header.subarray(0, headerLength))
    this.#append(cidBytes)
    this.#append(bytes)
    this.#pending.set(pendingKey, { key, location: { pack: this.#pack, offset, length: bytes.length } })
    this.newBytes += bytes.length
    return true
  }

  pin(cid: CID, label: string): void {
    this.#open()
    this.#pins.push({ cid, label })
  }

  unpin(cid: CID): void {
    this.#open()
    this.#unpins.push(cid)
  }

  setRef(name: string, cid: CID | undefined): void {
    this.#open()
    refKey(name)
    this.#refs.set(name, cid)
  }

  async commit(options?: AbortOptions): Promise<void> {
    options?.signal?.throwIfAborted()
    const fd = this.#open()
    // The transaction counts as open until its batch is written: a collection starting
    // earlier would take its pack, not yet indexed, for an orphan.
    try {
      try {
        this.#flush()
        fsyncSync(fd)
      } finally {
        closeSync(fd)
        this.#fd = undefined
      }
      if (this.#written === 0) unlinkSync(packPath(this.#store.dir, this.#pack))
      else syncDirectory(join(this.#store.dir, 'packs'))
      const batch = this.#db.batch()
      for (const { key, location } of this.#pending.values()) batch.put(key, encodeLocation(location))
      for (const cid of this.#unpins) batch.del(pinKey(cid))
      const added = Date.now()
      for (const { cid, label } of this.#pins) {
        batch.put(pinKey(cid), Buffer.from(JSON.stringify({ label, added })))
      }
      for (const [name, cid] of this.#refs) {
        if (cid === undefined) batch.del(refKey(name))
        else batch.put(refKey(name), cid.bytes)
      }
      // One LevelDB batch is atomic: every block, pin and reference appears together or not at all.
      await batch.write({ sync: true })
    } finally {
      this.#onFinish()
    }
  }

  async abort(): Promise<void> {
    if (this.#fd === undefined) return
    closeSync(this.#fd)
    this.#fd = undefined
    this.#onFinish()
    unlinkSync(packPath(this.#store.dir, this.#pack))
    this.#pending.clear()
  }

  #open(): number {
    if (this.#fd === undefined) throw new StoreError('ERR_STORE', 'Transaction already finished')
    return this.#fd
  }

  #append(bytes: Uint8Array): void {
    if (bytes.length > this.#buffer.length - this.#buffered) {
      this.#flush()
      if (bytes.length > this.#buffer.length) {
        this.#writeAll(bytes)
        return
      }
    }
    this.#buffer.set(bytes, this.#buffered)
    this.#buffered += bytes.length
  }

  #flush(): void {
    if (this.#buffered === 0) return
    this.#writeAll(this.#buffer.subarray(0, this.#buffered))
    this.#buffered = 0
  }

  #writeAll(bytes: Uint8Array): void {
    const fd = this.#open()
    let done = 0
    while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done, this.#written + done)
    this.#written += bytes.length
  }
}

function pinKey(cid: CID): Uint8Array {
  return prefixed(PIN_PREFIX, cid.bytes)
}

/** 'r' ‖ UTF-8 name; InvalidArgumentError for an empty (unless `allowEmpty`) or over-long name. */
function refKey(name: string, allowEmpty = false): Uint8Array {
  const bytes = typeof name === 'string' ? Buffer.from(name, 'utf8') : undefined
  if (bytes === undefined || (bytes.length === 0 && !allowEmpty) || bytes.length > MAX_REF_BYTES) {
    throw new InvalidArgumentError(`Expected a reference name of 1 to ${MAX_REF_BYTES} UTF-8 bytes but received ${JSON.stringify(name)}`)
  }
  return prefixed(REF_PREFIX, bytes)
}

function decodeRefValue(value: Uint8Array): CID {
  try {
    return CID.decode(value)
  } catch (cause) {
    throw new IntegrityError('Malformed reference in the store index', { cause })
  }
}
