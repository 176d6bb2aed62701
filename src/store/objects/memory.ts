/** Objects in a Map: the in-memory backend of the store, for tests and throw-away stores. */
import { IntegrityError, NotFoundError, StoreError } from '../../errors.js'
import type { AbortOptions } from '../interface.js'
import type { ListOptions, ObjectDriver, ObjectInfo, ObjectSink, PutOptions } from './interface.js'

interface Entry {
  readonly bytes: Uint8Array
  readonly modified: number
}

/** A Map of objects. */
export class MemoryDriver implements ObjectDriver {
  readonly location = 'memory:'
  readonly objects = new Map<string, Entry>()

  async get(key: string, options?: AbortOptions): Promise<Uint8Array | undefined> {
    options?.signal?.throwIfAborted()
    return this.objects.get(key)?.bytes
  }

  async getRange(key: string, offset: number, length: number, options?: AbortOptions): Promise<Uint8Array> {
    options?.signal?.throwIfAborted()
    return this.getRangeSync(key, offset, length)
  }

  getRangeSync(key: string, offset: number, length: number): Uint8Array {
    const entry = this.objects.get(key)
    if (entry === undefined) throw new NotFoundError(`${key} does not exist in memory`)
    if (offset + length > entry.bytes.length)
      throw new IntegrityError(`${key} is truncated: asked ${length} bytes at ${offset} of ${entry.bytes.length}`)
    return new Uint8Array(entry.bytes.buffer, entry.bytes.byteOffset + offset, length)
  }

  async put(key: string, bytes: Uint8Array, options: PutOptions = {}): Promise<boolean> {
    options.signal?.throwIfAborted()
    if (options.ifAbsent === true && this.objects.has(key)) return false
    this.objects.set(key, { bytes: bytes.slice(), modified: Date.now() })
    return true
  }

  async create(key: string, options?: AbortOptions): Promise<ObjectSink> {
    options?.signal?.throwIfAborted()
    const chunks: Uint8Array[] = []
    let length = 0
    let done = false
    const check = () => {
      if (done) throw new StoreError('ERR_STORE', `${key} is already finished`)
    }
    return {
      get length() {
        return length
      },
      write: async (bytes) => {
        check()
        chunks.push(bytes.slice())
        length += bytes.length
      },
      finish: async (finishOptions?: AbortOptions) => {
        finishOptions?.signal?.throwIfAborted()
        check()
        done = true
        const bytes = new Uint8Array(length)
        let at = 0
        for (const chunk of chunks) {
          bytes.set(chunk, at)
          at += chunk.length
        }
        this.objects.set(key, { bytes, modified: Date.now() })
      },
      abort: async () => {
        done = true
      },
    }
  }

  async stat(key: string, options?: AbortOptions): Promise<ObjectInfo | undefined> {
    options?.signal?.throwIfAborted()
    const entry = this.objects.get(key)
    return entry === undefined ? undefined : { key, size: entry.bytes.length, modified: entry.modified }
  }

  async *list(prefix: string, options: ListOptions = {}): AsyncIterable<ObjectInfo> {
    options.signal?.throwIfAborted()
    const keys = [...this.objects.keys()].filter(
      (key) => key.startsWith(prefix) && (options.startAfter === undefined || key > options.startAfter),
    )
    keys.sort()
    for (const key of keys) {
      options.signal?.throwIfAborted()
      const entry = this.objects.get(key)
      if (entry !== undefined) yield { key, size: entry.bytes.length, modified: entry.modified }
    }
  }

  async delete(key: string, options?: AbortOptions): Promise<void> {
    options?.signal?.throwIfAborted()
    this.objects.delete(key)
  }

  async close(): Promise<void> {}
}
