/**
 * A bounded on-disk cache in front of a remote ObjectDriver (S3): it keeps local copies of the
 * objects the store layout never changes once written (spec/store.md §12), and nothing else.
 *
 * - Cached: `packs/*.idx` and `log/*.json`, `checkpoints/*.json` whole (`get`), and byte ranges
 *   of `packs/*.pack` (`getRange`, the block reads) by key, offset and length. They are
 *   create-only (§3-5); they may be deleted (purge, pruning), which a cached copy survives
 *   harmlessly because listings, and so the store's view, still come from the inner driver.
 * - Always the inner driver's: listings, `stat`, every write, and the mutable objects
 *   (`VERSION`, `txns/*`, `gc.lock`). `put`, `create` and `delete` evict the key's copies.
 * - A wiped and recreated store reuses record and checkpoint numbers: a cached record or
 *   checkpoint is served only if its size and time match the last listing that named it in
 *   this process (the store always lists before it reads them, §5.3).
 *
 * Layout under `dir` (shared by any number of stores and processes):
 *
 *   objects-1/HH/REST/all            a whole object
 *   objects-1/HH/REST/OFFSET-LENGTH  a range
 *
 * `HHREST` is the first 40 hex digits of sha256(namespace ‖ "\n" ‖ key), the namespace telling
 * stores apart (default: the inner driver's location). A file is a 56-byte header (magic
 * "TSRCACH1", f64 listed time or 0, f64 payload length, sha256 of identity ‖ those 24 bytes ‖
 * payload) and the payload. Files are written to a `.tmp-` name and renamed, and checked on
 * every read: a torn, truncated or foreign file is deleted and fetched again, never returned.
 *
 * Size: the files total at most `maxBytes`. Each process counts what it writes on top of its
 * last scan of the directory; before a write would pass the limit (and at least every
 * RESCAN_MS while it writes) it scans again and deletes the least recently used files (by
 * mtime, touched on every hit) down to LOW_WATER of the limit. Processes sharing a directory
 * see each other's writes at their next scan, so together they may pass the limit by what the
 * others wrote since. No lock is taken: a file may vanish under a reader (a miss), and two
 * writers of one entry write the same bytes.
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, readdir, readFile, rename, rm, rmdir, stat, unlink, utimes, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { StoreError } from '../../errors.js'
import type { AbortOptions } from '../interface.js'
import type { ListOptions, ObjectDriver, ObjectInfo, ObjectSink, PutOptions } from './interface.js'

/** Construction of a CachingDriver. */
export interface CachingDriverInit {
  /** The cache's directory, created on the first write; may be shared by stores and processes. */
  readonly dir: string
  /** Limit on the total size of the cache's files, in bytes (a positive integer). */
  readonly maxBytes: number
  /** Tells this store's objects apart from other stores' in `dir` (default: the inner driver's location). */
  readonly namespace?: string
  /**
   * Objects and ranges larger than this are not cached (default: an eighth of maxBytes, at
   * most 16 MiB), so that one large read (a collection copying packs) does not flush the cache.
   */
  readonly maxEntryBytes?: number
}

/** What a CachingDriver did so far (cacheable reads only). */
export interface CacheStats {
  /** Reads answered from the cache. */
  hits: number
  /** Reads passed to the inner driver. */
  misses: number
  hitBytes: number
  missBytes: number
  /** Files deleted to keep within the limit. */
  evicted: number
  /** Cache files found damaged (deleted and fetched again). */
  damaged: number
  /** Failures of the cache's own file operations: the read went to the inner driver, or nothing was cached. */
  errors: number
}

/** The layout's immutable objects read whole (spec/store.md §2, §4, §5.2, §5.3). */
const WHOLE = /^(?:packs\/[^/]+\.idx|log\/\d+\.json|checkpoints\/\d+\.json)$/
/** The pack files, read by range (§3, §6). */
const RANGED = /^packs\/[^/]+\.pack$/
/** Objects whose copies are checked against listings (numbered: a recreated store reuses the names). */
const LISTED = /^(?:log|checkpoints)\//
const SUBDIR = 'objects-1'
const MAGIC = new TextEncoder().encode('TSRCACH1')
const HEADER = 56
const MIB = 1024 * 1024
/** Eviction goes down to this fraction of the limit, so that scans are rare. */
const LOW_WATER = 0.9
/** A process that writes rescans the directory at least this often (other processes' writes). */
const RESCAN_MS = 30_000
/** Bytes of copies waiting to be written, at most (beyond it, reads are not cached). */
const PENDING_BYTES = 64 * MIB
/** Listed sizes and times remembered, at most (the oldest are forgotten). */
const LISTED_ENTRIES = 4096
/** `.tmp-` files older than this are left by dead writers. */
const TMP_AGE_MS = 10 * 60_000

interface CacheFile {
  readonly path: string
  readonly size: number
  /** mtime: the last hit or write. */
  readonly used: number
  /** Another writer's file in progress: counted, never deleted. */
  readonly temporary: boolean
}

/** An ObjectDriver that keeps local copies of the immutable objects of another one: see the module comment. */
export class CachingDriver implements ObjectDriver {
  readonly location: string
  readonly inner: ObjectDriver
  readonly #root: string
  readonly #namespace: string
  readonly #maxBytes: number
  readonly #maxEntry: number
  readonly #stats: CacheStats = { hits: 0, misses: 0, hitBytes: 0, missBytes: 0, evicted: 0, damaged: 0, errors: 0 }
  readonly #listed = new Map<string, { size: number; modified: number }>()
  // Bytes on disk as this process knows them: its last scan plus what it wrote since.
  #known = 0
  // Every byte this process wrote (to tell what a scan may have missed).
  #written = 0
  // Bytes of writes allowed by #room and not finished.
  #reserved = 0
  #scannedAt = Number.NEGATIVE_INFINITY
  #evicting: Promise<void> | undefined
  #pendingBytes = 0
  readonly #pending = new Set<Promise<void>>()

  constructor(inner: ObjectDriver, init: CachingDriverInit) {
    if (!Number.isSafeInteger(init.maxBytes) || init.maxBytes <= 0) {
      throw new StoreError('ERR_STORE_CONFIG', `Expected a positive integer for the cache's maxBytes but received ${init.maxBytes}`)
    }
    const maxEntry = init.maxEntryBytes ?? Math.min(Math.floor(init.maxBytes / 8), 16 * MIB)
    if (!Number.isSafeInteger(maxEntry) || maxEntry < 0) {
      throw new StoreError('ERR_STORE_CONFIG', `Expected a non-negative integer for the cache's maxEntryBytes but received ${maxEntry}`)
    }
    if (init.dir === '') throw new StoreError('ERR_STORE_CONFIG', 'Expected a directory for the cache but received ""')
    this.inner = inner
    this.location = inner.location
    this.#root = join(init.dir, SUBDIR)
    this.#namespace = init.namespace ?? inner.location
    this.#maxBytes = init.maxBytes
    this.#maxEntry = maxEntry
  }

  /** A snapshot of the counters. */
  get stats(): CacheStats {
    return { ...this.#stats }
  }

  async get(key: string, options?: AbortOptions): Promise<Uint8Array | undefined> {
    options?.signal?.throwIfAborted()
    if (!WHOLE.test(key) || key.includes('.tmp-')) return this.inner.get(key, options)
    const [path, identity] = this.#entry(key, 'all')
    const listed = this.#listed.get(key)
    const cached = await this.#read(path, identity)
    if (cached !== undefined) {
      if (listed === undefined || (listed.size === cached.payload.length && listed.modified === cached.modified)) {
        return this.#hit(cached.payload)
      }
    }
    const bytes = await this.inner.get(key, options)
    if (bytes !== undefined) this.#miss(path, identity, listed?.modified ?? 0, bytes)
    return bytes
  }

  async getRange(key: string, offset: number, length: number, options?: AbortOptions): Promise<Uint8Array> {
    options?.signal?.throwIfAborted()
    const cacheable =
      RANGED.test(key) &&
      !key.includes('.tmp-') &&
      Number.isSafeInteger(offset) &&
      offset >= 0 &&
      Number.isSafeInteger(length) &&
      length > 0 &&
      HEADER + length <= this.#maxEntry
    if (!cacheable) return this.inner.getRange(key, offset, length, options)
    const [path, identity] = this.#entry(key, `${offset}-${length}`)
    const cached = await this.#read(path, identity)
    if (cached !== undefined && cached.payload.length === length) return this.#hit(cached.payload)
    const bytes = await this.inner.getRange(key, offset, length, options)
    this.#miss(path, identity, 0, bytes)
    return bytes
  }

  async put(key: string, bytes: Uint8Array, options?: PutOptions): Promise<boolean> {
    const written = await this.inner.put(key, bytes, options)
    if (written) await this.#evictKey(key)
    return written
  }

  async create(key: string, options?: AbortOptions): Promise<ObjectSink> {
    await this.#evictKey(key)
    return this.inner.create(key, options)
  }

  stat(key: string, options?: AbortOptions): Promise<ObjectInfo | undefined> {
    return this.inner.stat(key, options)
  }

  async *list(prefix: string, options?: ListOptions): AsyncIterable<ObjectInfo> {
    for await (const info of this.inner.list(prefix, options)) {
      if (LISTED.test(info.key)) {
        this.#listed.delete(info.key)
        this.#listed.set(info.key, { size: info.size, modified: info.modified })
        if (this.#listed.size > LISTED_ENTRIES) this.#listed.delete(this.#listed.keys().next().value!)
      }
      yield info
    }
  }

  async delete(key: string, options?: AbortOptions): Promise<void> {
    await this.inner.delete(key, options)
    await this.#evictKey(key)
  }

  /** Waits for the copies being written and the eviction in progress. */
  async flush(): Promise<void> {
    while (this.#pending.size > 0 || this.#evicting !== undefined) {
      await Promise.all([...this.#pending, this.#evicting?.catch(() => {})])
    }
  }

  async close(): Promise<void> {
    await this.flush()
    await this.inner.close()
  }

  /** The file and identity of a cache entry: `name` is `all` or `OFFSET-LENGTH`. */
  #entry(key: string, name: string): [path: string, identity: string] {
    const hash = createHash('sha256').update(`${this.#namespace}\n${key}`).digest('hex')
    return [join(this.#root, hash.slice(0, 2), hash.slice(2, 40), name), `${this.#namespace}\n${key}\n${name}`]
  }

  /** The verified entry in `path`, or undefined (missing, unreadable, or damaged: then deleted). */
  async #read(path: string, identity: string): Promise<{ modified: number; payload: Uint8Array } | undefined> {
    let file: Buffer
    try {
      file = await readFile(path)
    } catch (error) {
      if (!isMissing(error)) this.#stats.errors++
      return undefined
    }
    const entry = decodeEntry(identity, file)
    if (entry === undefined) {
      this.#stats.damaged++
      await unlink(path).catch(() => {})
      return undefined
    }
    // Least recently used goes first: mark it used (best effort; a vanished file is fine).
    const now = new Date()
    utimes(path, now, now).catch(() => {})
    return entry
  }

  #hit(payload: Uint8Array): Uint8Array {
    this.#stats.hits++
    this.#stats.hitBytes += payload.length
    return payload
  }

  /** Counts a miss and writes the copy in the background (encoded now: the caller may reuse `bytes`). */
  #miss(path: string, identity: string, modified: number, bytes: Uint8Array): void {
    this.#stats.misses++
    this.#stats.missBytes += bytes.length
    const size = HEADER + bytes.length
    if (size > this.#maxEntry || size > this.#maxBytes || this.#pendingBytes + size > PENDING_BYTES) return
    const file = encodeEntry(identity, modified, bytes)
    this.#pendingBytes += size
    const task: Promise<void> = this.#write(path, file)
      .catch(() => {
        this.#stats.errors++
      })
      .finally(() => {
        this.#pendingBytes -= size
        this.#pending.delete(task)
      })
    this.#pending.add(task)
  }

  async #write(path: string, file: Uint8Array): Promise<void> {
    if (!(await this.#room(file.length))) return
    const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`
    try {
      try {
        await writeFile(tmp, file)
      } catch (error) {
        if (!isMissing(error)) throw error
        // A new object's directory, or one a scan removed as empty a moment ago.
        await mkdir(dirname(path), { recursive: true })
        await writeFile(tmp, file)
      }
      await rename(tmp, path)
      this.#known += file.length
      this.#written += file.length
    } catch (error) {
      await unlink(tmp).catch(() => {})
      throw error
    } finally {
      this.#reserved -= file.length
    }
  }

  /** Reserves `size` bytes below the limit, evicting if needed; false if they cannot be found. */
  async #room(size: number): Promise<boolean> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const fresh = Date.now() - this.#scannedAt < RESCAN_MS
      if (fresh && this.#known + this.#reserved + size <= this.#maxBytes) {
        this.#reserved += size
        return true
      }
      this.#evicting ??= this.#evict(size).finally(() => {
        this.#evicting = undefined
      })
      await this.#evicting
    }
    return false
  }

  /** Scans the directory; if `size` more bytes would not fit, deletes the least recently used files down to LOW_WATER. */
  async #evict(size: number): Promise<void> {
    const written = this.#written
    const files = await this.#scan()
    let total = files.reduce((sum, file) => sum + file.size, 0)
    if (total + this.#reserved + size > this.#maxBytes) {
      const target = Math.min(this.#maxBytes * LOW_WATER, this.#maxBytes - this.#reserved - size)
      files.sort((a, b) => a.used - b.used)
      for (const file of files) {
        if (total <= target) break
        if (file.temporary) continue
        try {
          await unlink(file.path)
          this.#stats.evicted++
        } catch (error) {
          // Evicted by another process meanwhile: gone all the same.
          if (!isMissing(error)) {
            this.#stats.errors++
            continue
          }
        }
        total -= file.size
      }
    }
    // Writes that finished during the scan may be missing from it: count them again (too many is safe).
    this.#known = total + (this.#written - written)
    this.#scannedAt = Date.now()
  }

  /** Every cache file (in-progress `.tmp-` files count but are never chosen); removes dead writers' temporaries and empty directories. */
  async #scan(): Promise<CacheFile[]> {
    const out: CacheFile[] = []
    const now = Date.now()
    for (const fan of await listDir(this.#root)) {
      for (const object of await listDir(join(this.#root, fan))) {
        const dir = join(this.#root, fan, object)
        const names = await listDir(dir)
        if (names.length === 0) {
          // A writer that loses the race recreates it (see #write).
          await rmdir(dir).catch(() => {})
          continue
        }
        await Promise.all(
          names.map(async (name) => {
            const path = join(dir, name)
            const info = await stat(path).catch(() => undefined)
            if (info === undefined || !info.isFile()) return
            if (name.includes('.tmp-')) {
              if (now - info.mtimeMs > TMP_AGE_MS) await unlink(path).catch(() => {})
              else out.push({ path, size: info.size, used: info.mtimeMs, temporary: true })
              return
            }
            out.push({ path, size: info.size, used: info.mtimeMs, temporary: false })
          }),
        )
      }
    }
    return out
  }

  /** Deletes the copies of `key` (after a write or delete of a cacheable key). */
  async #evictKey(key: string): Promise<void> {
    if (!(WHOLE.test(key) || RANGED.test(key))) return
    const [path] = this.#entry(key, 'all')
    await rm(dirname(path), { recursive: true, force: true }).catch(() => {
      this.#stats.errors++
    })
  }
}

/** A cache file's bytes: see the module comment. */
function encodeEntry(identity: string, modified: number, payload: Uint8Array): Uint8Array {
  const file = new Uint8Array(HEADER + payload.length)
  file.set(MAGIC, 0)
  const view = new DataView(file.buffer)
  view.setFloat64(8, modified, true)
  view.setFloat64(16, payload.length, true)
  file.set(payload, HEADER)
  file.set(checksum(identity, file.subarray(0, 24), payload), 24)
  return file
}

/** The entry in a cache file, or undefined if it is not a whole, intact entry for `identity`. */
function decodeEntry(identity: string, file: Uint8Array): { modified: number; payload: Uint8Array } | undefined {
  if (file.length < HEADER || !MAGIC.every((byte, i) => file[i] === byte)) return undefined
  const view = new DataView(file.buffer, file.byteOffset, file.length)
  if (view.getFloat64(16, true) !== file.length - HEADER) return undefined
  // A plain Uint8Array over the file's memory (no copy).
  const payload = new Uint8Array(file.buffer, file.byteOffset + HEADER, file.length - HEADER)
  const sum = checksum(identity, file.subarray(0, 24), payload)
  if (!sum.every((byte, i) => file[24 + i] === byte)) return undefined
  return { modified: view.getFloat64(8, true), payload }
}

function checksum(identity: string, head: Uint8Array, payload: Uint8Array): Uint8Array {
  return createHash('sha256').update(identity).update('\0').update(head).update(payload).digest()
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir)
  } catch {
    return []
  }
}

function isMissing(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code
  return code === 'ENOENT' || code === 'ENOTDIR'
}
