/**
 * Where a stream crop reads its input: a forward-only stream (standard input, an upload, any
 * `AsyncIterable<Uint8Array>`) or a file that may be read by position. Both count the bytes
 * they take from the input, which is what `--stats` reports and what the early stop saves.
 */
import type { FileHandle } from 'node:fs/promises'
import { CorruptInputError, UnsupportedFormatError } from '../errors.js'

/** Sequential reads, forward skips and (on files) seeks over one input. */
export interface ByteSource {
  /** Whether `seek` may go backwards: the input is a regular file. */
  readonly seekable: boolean
  /** The input's size in bytes when known (a regular file). */
  readonly size: number | undefined
  /** Offset of the next byte `read` returns. */
  readonly position: number
  /** Bytes taken from the input so far (read, peeked or skipped over on a stream). */
  readonly bytesRead: number
  /** Exactly the next `length` bytes; CorruptInputError naming `what` when the input ends first. */
  read(length: number, what: string): Promise<Uint8Array>
  /** Up to `max` of the next bytes, at least one; undefined at the end of the input. */
  readSome(max: number): Promise<Uint8Array | undefined>
  /** Up to `length` of the next bytes without consuming them (fewer only at the end of the input). */
  peek(length: number): Promise<Uint8Array>
  /**
   * Moves to `position`: forward on a stream (dropping what lies between), anywhere on a file.
   * On a stream, a position already passed is UnsupportedFormatError naming `what`.
   */
  seek(position: number, what: string): Promise<void>
  /** Stops reading and releases the input (a stream's iterator is returned, a file closed). Idempotent. */
  close(): Promise<void>
}

/** A ByteSource over an async iterable of chunks, read once from the front. Chunks must not change once yielded. */
export class StreamSource implements ByteSource {
  readonly seekable = false
  readonly size = undefined
  #iterator: AsyncIterator<Uint8Array> | undefined
  #iterable: AsyncIterable<Uint8Array>
  /** Chunks taken from the input and not consumed yet; the first starts at `#offset`. */
  #queue: Uint8Array[] = []
  #offset = 0
  #queued = 0
  #position = 0
  #bytesRead = 0
  #ended = false
  #closed: Promise<void> | undefined

  constructor(input: AsyncIterable<Uint8Array>) {
    this.#iterable = input
  }

  get position(): number {
    return this.#position
  }

  get bytesRead(): number {
    return this.#bytesRead
  }

  /** Pulls one more chunk into the queue; false at the end of the input. */
  async #pull(): Promise<boolean> {
    if (this.#ended || this.#closed !== undefined) return false
    this.#iterator ??= this.#iterable[Symbol.asyncIterator]()
    for (;;) {
      const next = await this.#iterator.next()
      if (next.done === true) {
        this.#ended = true
        return false
      }
      const chunk = next.value
      if (!(chunk instanceof Uint8Array)) throw new TypeError('Expected the input to yield Uint8Array chunks')
      if (chunk.length === 0) continue
      this.#queue.push(chunk)
      this.#queued += chunk.length
      this.#bytesRead += chunk.length
      return true
    }
  }

  async #fill(length: number): Promise<void> {
    while (this.#queued < length && (await this.#pull()));
  }

  /** Removes and returns up to `length` queued bytes (a view when they lie in one chunk). */
  #take(length: number): Uint8Array {
    const first = this.#queue[0]!
    if (first.length - this.#offset >= length) {
      const out = first.subarray(this.#offset, this.#offset + length)
      this.#drop(length)
      return out
    }
    const out = new Uint8Array(length)
    let filled = 0
    while (filled < length) {
      const chunk = this.#queue[0]!
      const n = Math.min(chunk.length - this.#offset, length - filled)
      out.set(chunk.subarray(this.#offset, this.#offset + n), filled)
      filled += n
      this.#drop(n)
    }
    return out
  }

  #drop(length: number): void {
    this.#queued -= length
    this.#position += length
    let rest = length
    while (rest > 0) {
      const available = this.#queue[0]!.length - this.#offset
      if (rest < available) {
        this.#offset += rest
        return
      }
      rest -= available
      this.#queue.shift()
      this.#offset = 0
    }
  }

  async read(length: number, what: string): Promise<Uint8Array> {
    if (length === 0) return new Uint8Array(0)
    await this.#fill(length)
    if (this.#queued < length) {
      throw new CorruptInputError(
        `${what}: the input ends at byte ${this.#position + this.#queued}, ${length - this.#queued} bytes short (truncated?)`,
      )
    }
    return this.#take(length)
  }

  async readSome(max: number): Promise<Uint8Array | undefined> {
    if (this.#queued === 0 && !(await this.#pull())) return undefined
    return this.#take(Math.min(max, this.#queue[0]!.length - this.#offset))
  }

  async peek(length: number): Promise<Uint8Array> {
    await this.#fill(length)
    const n = Math.min(length, this.#queued)
    const first = this.#queue[0]
    if (first === undefined) return new Uint8Array(0)
    if (first.length - this.#offset >= n) return first.subarray(this.#offset, this.#offset + n)
    // Copy without consuming: concatenate, then keep the concatenation as the queue's head.
    const joined = new Uint8Array(this.#queued)
    let at = 0
    for (let i = 0; i < this.#queue.length; i++) {
      const chunk = i === 0 ? this.#queue[0]!.subarray(this.#offset) : this.#queue[i]!
      joined.set(chunk, at)
      at += chunk.length
    }
    this.#queue = [joined]
    this.#offset = 0
    return joined.subarray(0, n)
  }

  async seek(position: number, what: string): Promise<void> {
    if (position < this.#position) {
      throw new UnsupportedFormatError(
        `${what} lies at byte ${position}, before the ${this.#position} bytes already read from the stream: cannot stream it; pass a file`,
      )
    }
    let rest = position - this.#position
    while (rest > 0) {
      if (this.#queued === 0 && !(await this.#pull())) {
        throw new CorruptInputError(`${what}: the input ends at byte ${this.#position}, before byte ${position} (truncated?)`)
      }
      const n = Math.min(rest, this.#queued)
      this.#drop(n)
      rest -= n
    }
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#queue = []
      this.#queued = 0
      // return() ends the producer (a Node stream's iterator destroys the stream). Not awaited:
      // behind a read that never completes (a stalled upload) it would never settle.
      if (this.#iterator !== undefined && !this.#ended) void this.#iterator.return?.()?.catch(() => undefined)
    })()
    return this.#closed
  }
}

/** Bytes read from a file at a time when reading sequentially. */
const READ_AHEAD = 256 << 10

/** A ByteSource over an open regular file: sequential reads through a read-ahead buffer, seeks anywhere. */
export class FileSource implements ByteSource {
  readonly seekable = true
  readonly size: number
  readonly #handle: FileHandle
  #buffer = new Uint8Array(0)
  /** File offset of `#buffer[0]`. */
  #bufferStart = 0
  #position = 0
  #bytesRead = 0
  #closed: Promise<void> | undefined

  /** Takes ownership of `handle`. */
  constructor(handle: FileHandle, size: number) {
    this.#handle = handle
    this.size = size
  }

  get position(): number {
    return this.#position
  }

  get bytesRead(): number {
    return this.#bytesRead
  }

  /** Makes the buffer hold the bytes from `#position` on, at least `length` of them where the file has them. */
  async #fill(length: number): Promise<void> {
    const have = this.#bufferStart + this.#buffer.length - this.#position
    if (this.#position >= this.#bufferStart && have >= length) return
    const keep = this.#position >= this.#bufferStart && have > 0 ? this.#buffer.subarray(this.#position - this.#bufferStart) : undefined
    const kept = keep?.length ?? 0
    const want = Math.min(Math.max(length, READ_AHEAD), this.size - this.#position)
    const buffer = new Uint8Array(Math.max(want, kept))
    if (keep !== undefined) buffer.set(keep)
    let filled = kept
    while (filled < want) {
      const { bytesRead } = await this.#handle.read({ buffer, offset: filled, length: want - filled, position: this.#position + filled })
      if (bytesRead === 0) break // the file shrank under us: reads report it as truncation
      filled += bytesRead
      this.#bytesRead += bytesRead
    }
    this.#buffer = buffer.subarray(0, filled)
    this.#bufferStart = this.#position
  }

  async read(length: number, what: string): Promise<Uint8Array> {
    if (length === 0) return new Uint8Array(0)
    await this.#fill(length)
    const available = this.#buffer.length - (this.#position - this.#bufferStart)
    if (available < length) {
      throw new CorruptInputError(
        `${what}: the file ends at byte ${this.#position + available}, ${length - available} bytes short (truncated?)`,
      )
    }
    const at = this.#position - this.#bufferStart
    this.#position += length
    return this.#buffer.subarray(at, at + length)
  }

  async readSome(max: number): Promise<Uint8Array | undefined> {
    if (this.#position >= this.size) return undefined
    await this.#fill(1)
    const at = this.#position - this.#bufferStart
    const n = Math.min(max, this.#buffer.length - at)
    if (n <= 0) return undefined
    this.#position += n
    return this.#buffer.subarray(at, at + n)
  }

  async peek(length: number): Promise<Uint8Array> {
    await this.#fill(length)
    const at = this.#position - this.#bufferStart
    return this.#buffer.subarray(at, Math.min(at + length, this.#buffer.length))
  }

  async seek(position: number, what: string): Promise<void> {
    if (position > this.size)
      throw new CorruptInputError(`${what} lies at byte ${position}, past the end of the ${this.size}-byte file (truncated?)`)
    this.#position = position
  }

  close(): Promise<void> {
    this.#buffer = new Uint8Array(0)
    this.#closed ??= this.#handle.close()
    return this.#closed
  }
}
