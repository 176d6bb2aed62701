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
import { IntegrityError, NotFoundError, StoreError } from '../errors.js'
import { verifyBlock } from '../format/block.js'
import type { AbortOptions, BlockLocation, BlockStore, BlockWriter, Pin } from './interface.js'

const STORE_VERSION = 'tessera-store 1\n'
const BLOCK_PREFIX = 0x62 // 'b' + multihash bytes -> location
const PIN_PREFIX = 0x70 // 'p' + CID bytes -> pin record
const WRITE_BUFFER = 4 << 20

/** Options for opening a store directory. */
export interface PackStoreInit {
  /** How long to wait for another process to release the store, in ms (default 30000). */
  readonly lockTimeout?: number
  /** Create the store if it does not exist (default true). */
  readonly create?: boolean
}

interface Location {
  readonly pack: number
  readonly offset: number
  readonly length: number
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
    const packs = join(this.dir, 'packs')
    const ids = (await readdir(packs)).map((name) => Number.parseInt(name, 10)).filter(Number.isInteger)
    let id = ids.length === 0 ? 1 : Math.max(...ids) + 1
    for (;;) {
      try {
        return new PackWriter(this, this.#db, id, openSync(packPath(this.dir, id), 'wx'))
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
  newBytes = 0

  constructor(store: PackStore, db: Level<Uint8Array, Uint8Array>, pack: number, fd: number) {
    this.#store = store
    this.#db = db
    this.#pack = pack
    this.#fd = fd
  }

  async put(cid: CID, bytes: Uint8Array, options?: AbortOptions): Promise<boolean> {
    options?.signal?.throwIfAborted()
    this.#open()
    const key = blockKey(cid)
    const pendingKey = Buffer.from(key).toString('latin1')
    if (this.#pending.has(pendingKey) || (await this.#db.get(key)) !== undefined) return false
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
    this.#pins.push({ cid, label })
  }

  async commit(options?: AbortOptions): Promise<void> {
    options?.signal?.throwIfAborted()
    const fd = this.#open()
    this.#flush()
    fsyncSync(fd)
    closeSync(fd)
    this.#fd = undefined
    if (this.#written === 0) unlinkSync(packPath(this.#store.dir, this.#pack))
    else syncDirectory(join(this.#store.dir, 'packs'))
    const batch = this.#db.batch()
    for (const { key, location } of this.#pending.values()) batch.put(key, encodeLocation(location))
    const added = Date.now()
    for (const { cid, label } of this.#pins) {
      batch.put(pinKey(cid), Buffer.from(JSON.stringify({ label, added })))
    }
    // One LevelDB batch is atomic: every block and pin appears together or not at all.
    await batch.write({ sync: true })
  }

  async abort(): Promise<void> {
    if (this.#fd === undefined) return
    closeSync(this.#fd)
    this.#fd = undefined
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

/** Makes a new file's directory entry durable (POSIX: fsync the directory). */
function syncDirectory(dir: string): void {
  const fd = openSync(dir, 'r')
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

function packPath(dir: string, id: number): string {
  return join(dir, 'packs', `${String(id).padStart(8, '0')}.pack`)
}

function blockKey(cid: CID): Uint8Array {
  const mh = cid.multihash.bytes
  const key = new Uint8Array(mh.length + 1)
  key[0] = BLOCK_PREFIX
  key.set(mh, 1)
  return key
}

function pinKey(cid: CID): Uint8Array {
  const bytes = cid.bytes
  const key = new Uint8Array(bytes.length + 1)
  key[0] = PIN_PREFIX
  key.set(bytes, 1)
  return key
}

function encodeLocation(location: Location): Uint8Array {
  const out = Buffer.allocUnsafe(16)
  out.writeUInt32LE(location.pack, 0)
  out.writeBigUInt64LE(BigInt(location.offset), 4)
  out.writeUInt32LE(location.length, 12)
  return out
}

function decodeLocation(value: Uint8Array): Location {
  if (value.length !== 16) throw new IntegrityError('Malformed block location in the store index')
  const view = Buffer.from(value.buffer, value.byteOffset, value.length)
  return { pack: view.readUInt32LE(0), offset: Number(view.readBigUInt64LE(4)), length: view.readUInt32LE(12) }
}
