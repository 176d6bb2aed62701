/**
 * Objects as files under a directory: key `a/b.c` is the file `DIR/a/b.c`. Whole-object
 * writes go to a temporary file first, are fsynced, then appear atomically: by rename(2)
 * when replacing, by link(2) when create-only (link fails with EEXIST if the name is taken,
 * which makes it a compare-and-swap on POSIX file systems, NFS included).
 */
import { randomBytes } from 'node:crypto'
import { closeSync, fstatSync, fsyncSync, openSync, readSync, writeSync } from 'node:fs'
import { link, mkdir, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises'
import { dirname, join, sep } from 'node:path'
import { IntegrityError, NotFoundError, StoreError } from '../../errors.js'
import { processAlive, STALE_TEMP_MS } from '../../temp.js'
import type { AbortOptions } from '../interface.js'
import type { ListOptions, ObjectDriver, ObjectInfo, ObjectSink, PutOptions } from './interface.js'

// Descriptors of objects read by range, kept open: objects are immutable once written (packs,
// indexes), and opening a file per read would cost more than the read.
const MAX_OPEN_FILES = 256

/** A directory of objects. */
export class DiskDriver implements ObjectDriver {
  readonly location: string
  readonly #dir: string
  readonly #fds = new Map<string, number>()

  constructor(dir: string) {
    this.#dir = dir
    this.location = dir
  }

  localPath(key: string): string {
    return join(this.#dir, ...checkKey(key).split('/'))
  }

  async get(key: string, options?: AbortOptions): Promise<Uint8Array | undefined> {
    options?.signal?.throwIfAborted()
    try {
      const bytes = await readFile(this.localPath(key))
      return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length)
    } catch (error) {
      if (isMissing(error)) return undefined
      throw storeError(`Cannot read ${key} in ${this.#dir}`, error)
    }
  }

  async getRange(key: string, offset: number, length: number, options?: AbortOptions): Promise<Uint8Array> {
    options?.signal?.throwIfAborted()
    return this.getRangeSync(key, offset, length)
  }

  // Synchronous positional reads: a page-cache hit costs microseconds, less than a trip
  // through libuv's thread pool, and crops make many small ones.
  getRangeSync(key: string, offset: number, length: number, into?: Uint8Array): Uint8Array {
    const fd = this.#open(key)
    const bytes = into?.length === length ? into : Buffer.allocUnsafe(length)
    let read = 0
    while (read < length) {
      const n = readSync(fd, bytes, read, length - read, offset + read)
      if (n === 0) break
      read += n
    }
    if (read !== length) throw new IntegrityError(`${key} in ${this.#dir} is truncated: ${read} of ${length} bytes at ${offset}`)
    return new Uint8Array(bytes.buffer, bytes.byteOffset, length)
  }

  async put(key: string, bytes: Uint8Array, options: PutOptions = {}): Promise<boolean> {
    options.signal?.throwIfAborted()
    const path = this.localPath(key)
    const temporary = await this.#writeTemporary(path, bytes)
    try {
      if (options.ifAbsent === true) {
        try {
          await link(temporary, path)
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false
          throw storeError(`Cannot create ${key} in ${this.#dir}`, error)
        }
        syncDirectory(dirname(path))
        return true
      }
      await rename(temporary, path)
      syncDirectory(dirname(path))
      this.#forget(key)
      return true
    } finally {
      await rm(temporary, { force: true })
    }
  }

  async create(key: string, options?: AbortOptions): Promise<ObjectSink> {
    options?.signal?.throwIfAborted()
    const path = this.localPath(key)
    await mkdir(dirname(path), { recursive: true })
    // Written in place under its final name: nothing refers to it until the root log does
    // (spec/store.md §5), and a crash leaves an orphan for garbage collection.
    const fd = openSync(path, 'wx')
    return new FileSink(fd, path)
  }

  async stat(key: string, options?: AbortOptions): Promise<ObjectInfo | undefined> {
    options?.signal?.throwIfAborted()
    try {
      const info = await stat(this.localPath(key))
      return { key, size: info.size, modified: info.mtimeMs }
    } catch (error) {
      if (isMissing(error)) return undefined
      throw storeError(`Cannot stat ${key} in ${this.#dir}`, error)
    }
  }

  async *list(prefix: string, options: ListOptions = {}): AsyncIterable<ObjectInfo> {
    options.signal?.throwIfAborted()
    const slash = prefix.lastIndexOf('/')
    const folder = slash < 0 ? '' : prefix.slice(0, slash)
    const keys: string[] = []
    const walk = async (relative: string): Promise<void> => {
      let entries: import('node:fs').Dirent[]
      try {
        entries = await readdir(relative === '' ? this.#dir : join(this.#dir, ...relative.split('/')), { withFileTypes: true })
      } catch (error) {
        if (isMissing(error) || (error as NodeJS.ErrnoException).code === 'ENOTDIR') return
        throw storeError(`Cannot list ${relative} in ${this.#dir}`, error)
      }
      for (const entry of entries) {
        if (entry.name.includes('.tmp-')) continue
        const key = relative === '' ? entry.name : `${relative}/${entry.name}`
        if (entry.isDirectory()) {
          if (key.startsWith(prefix) || prefix.startsWith(`${key}/`)) await walk(key)
        } else if (key.startsWith(prefix)) keys.push(key)
      }
    }
    await walk(folder)
    keys.sort(compareKeys)
    for (const key of keys) {
      options.signal?.throwIfAborted()
      if (options.startAfter !== undefined && compareKeys(key, options.startAfter) <= 0) continue
      let info: Awaited<ReturnType<typeof stat>>
      try {
        info = await stat(this.localPath(key))
      } catch (error) {
        if (isMissing(error)) continue
        throw storeError(`Cannot stat ${key} in ${this.#dir}`, error)
      }
      if (info.isDirectory()) continue
      yield { key, size: info.size, modified: info.mtimeMs }
    }
  }

  async delete(key: string, options?: AbortOptions): Promise<void> {
    options?.signal?.throwIfAborted()
    this.#forget(key)
    try {
      await unlink(this.localPath(key))
    } catch (error) {
      if (!isMissing(error)) throw storeError(`Cannot delete ${key} in ${this.#dir}`, error)
    }
  }

  /**
   * Removes the temporaries of writes whose process was killed between writing and renaming
   * (`<key>.tmp-p<pid>-<random>`, or `<key>.tmp-<random>` before pids were added): those whose
   * process is gone and that have not changed for STALE_TEMP_MS. Returns how many.
   */
  async removeStaleTemporaries(options?: AbortOptions): Promise<number> {
    let removed = 0
    const walk = async (dir: string): Promise<void> => {
      const entries = await readdir(dir, { withFileTypes: true }).catch(() => [])
      for (const entry of entries) {
        options?.signal?.throwIfAborted()
        const path = join(dir, entry.name)
        if (entry.isDirectory()) await walk(path)
        else if (entry.name.includes('.tmp-')) {
          const pid = /\.tmp-p(\d+)-[0-9a-f]+$/.exec(entry.name)?.[1]
          if (pid !== undefined && processAlive(Number(pid))) continue
          const info = await stat(path).catch(() => undefined)
          if (info === undefined || Date.now() - info.mtimeMs < STALE_TEMP_MS) continue
          await unlink(path).then(
            () => removed++,
            () => undefined,
          )
        }
      }
    }
    await walk(this.#dir)
    return removed
  }

  async close(): Promise<void> {
    for (const fd of this.#fds.values()) closeSync(fd)
    this.#fds.clear()
  }

  #open(key: string): number {
    let fd = this.#fds.get(key)
    if (fd !== undefined) {
      // Most recently used last.
      this.#fds.delete(key)
      this.#fds.set(key, fd)
      return fd
    }
    try {
      fd = openSync(this.localPath(key), 'r')
    } catch (error) {
      if (isMissing(error)) throw new NotFoundError(`${key} does not exist in ${this.#dir}`, { cause: error })
      throw storeError(`Cannot open ${key} in ${this.#dir}`, error)
    }
    this.#fds.set(key, fd)
    if (this.#fds.size > MAX_OPEN_FILES) {
      const [oldest, old] = this.#fds.entries().next().value!
      this.#fds.delete(oldest)
      closeSync(old)
    }
    return fd
  }

  release(key: string): void {
    this.#forget(key)
  }

  // A deleted or replaced file's cached descriptor would keep showing the old bytes (and keep the space).
  #forget(key: string): void {
    const fd = this.#fds.get(key)
    if (fd === undefined) return
    this.#fds.delete(key)
    closeSync(fd)
  }

  async #writeTemporary(path: string, bytes: Uint8Array): Promise<string> {
    await mkdir(dirname(path), { recursive: true })
    const temporary = `${path}.tmp-p${process.pid}-${randomBytes(6).toString('hex')}`
    const fd = openSync(temporary, 'wx')
    try {
      let done = 0
      while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done, done)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    return temporary
  }
}

/** Appends to a file; fsyncs it and its directory on finish. */
class FileSink implements ObjectSink {
  readonly #fd: number
  readonly #path: string
  #length = 0
  #closed = false

  constructor(fd: number, path: string) {
    this.#fd = fd
    this.#path = path
  }

  get length(): number {
    return this.#length
  }

  async write(bytes: Uint8Array): Promise<void> {
    if (this.#closed) throw new StoreError('ERR_STORE', `${this.#path} is already finished`)
    let done = 0
    while (done < bytes.length) done += writeSync(this.#fd, bytes, done, bytes.length - done, this.#length + done)
    this.#length += bytes.length
  }

  async finish(options?: AbortOptions): Promise<void> {
    options?.signal?.throwIfAborted()
    if (this.#closed) throw new StoreError('ERR_STORE', `${this.#path} is already finished`)
    this.#closed = true
    try {
      fsyncSync(this.#fd)
    } finally {
      closeSync(this.#fd)
    }
    syncDirectory(dirname(this.#path))
  }

  async abort(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true
      closeSync(this.#fd)
    }
    await rm(this.#path, { force: true })
  }
}

/** Makes a new or removed file's directory entry durable (POSIX: fsync the directory). */
export function syncDirectory(dir: string): void {
  const fd = openSync(dir, 'r')
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

/** The size of an open file. */
export function fileSize(fd: number): number {
  return fstatSync(fd).size
}

function checkKey(key: string): string {
  if (
    key === '' ||
    key.startsWith('/') ||
    key.split('/').some((part) => part === '' || part === '.' || part === '..') ||
    key.includes(sep === '/' ? '\0' : '\\')
  ) {
    throw new StoreError('ERR_STORE', `Invalid object key ${JSON.stringify(key)}`)
  }
  return key
}

function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException).code === 'ENOENT'
}

function storeError(message: string, cause: unknown): StoreError {
  return new StoreError('ERR_STORE', `${message}: ${(cause as Error).message}`, { cause })
}
