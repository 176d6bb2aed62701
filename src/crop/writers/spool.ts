/**
 * A write-then-read-once byte queue: in memory up to a threshold, then in a temp file.
 * The TIFF writer needs it because its header (tile offsets) must precede tile data whose
 * compressed sizes are only known after compressing every tile.
 */
import { randomBytes } from 'node:crypto'
import { type FileHandle, open, rm } from 'node:fs/promises'
import { join } from 'node:path'

/** Bytes read from the temp file per yielded chunk. */
const READ_CHUNK = 1 << 20

/** Options of a `Spool`. */
export interface SpoolInit {
  /** Bytes kept in memory; past that, everything goes to a temp file. */
  readonly memoryLimit: number
  /** Directory of the temp file. */
  readonly tmpDir: string
}

/**
 * Appends then drains once. Always call `dispose()` (in a `finally`): it deletes the temp file.
 * A crashed process can leave a `tessera-spool-*.tmp` behind in `tmpDir`.
 */
export class Spool {
  readonly #init: SpoolInit
  #memory: Uint8Array[] = []
  #size = 0
  #file: FileHandle | undefined
  #path: string | undefined

  constructor(init: SpoolInit) {
    this.#init = init
  }

  /** Bytes appended so far. */
  get size(): number {
    return this.#size
  }

  /** Path of the temp file, once there is one (for tests and diagnostics). */
  get path(): string | undefined {
    return this.#path
  }

  /** Appends `chunks`; the spool keeps references to them, so they must not be reused. */
  async append(chunks: readonly Uint8Array[]): Promise<void> {
    const bytes = chunks.reduce((sum, c) => sum + c.length, 0)
    if (this.#file === undefined && this.#size + bytes <= this.#init.memoryLimit) {
      this.#memory.push(...chunks)
    } else {
      if (this.#file === undefined) {
        this.#path = join(this.#init.tmpDir, `tessera-spool-${randomBytes(8).toString('hex')}.tmp`)
        this.#file = await open(this.#path, 'wx+', 0o600)
        const held = this.#memory
        this.#memory = []
        await writeAll(this.#file, held, 0)
      }
      await writeAll(this.#file, chunks, this.#size)
    }
    this.#size += bytes
  }

  /** Yields everything appended, in order, as fresh buffers. */
  async *drain(): AsyncGenerator<Uint8Array, void, undefined> {
    if (this.#file === undefined) {
      const held = this.#memory
      this.#memory = []
      yield* held
      return
    }
    for (let position = 0; position < this.#size; ) {
      const buffer = new Uint8Array(Math.min(READ_CHUNK, this.#size - position))
      const { bytesRead } = await this.#file.read(buffer, 0, buffer.length, position)
      if (bytesRead === 0) throw new Error(`Spool file ${this.#path} ended early at ${position} of ${this.#size} bytes`)
      position += bytesRead
      yield bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead)
    }
  }

  /** Drops the memory held and closes and deletes the temp file, if any. */
  async dispose(): Promise<void> {
    this.#memory = []
    const file = this.#file
    this.#file = undefined
    try {
      await file?.close()
    } finally {
      if (this.#path !== undefined) await rm(this.#path, { force: true })
    }
  }
}

async function writeAll(file: FileHandle, chunks: readonly Uint8Array[], position: number): Promise<void> {
  // writev may write less than asked (disk full, signals); continue from where it stopped.
  let pending = chunks.filter((c) => c.length > 0)
  let at = position
  while (pending.length > 0) {
    const { bytesWritten } = await file.writev(pending, at)
    at += bytesWritten
    let skip = bytesWritten
    const rest: Uint8Array[] = []
    for (const chunk of pending) {
      if (skip >= chunk.length) skip -= chunk.length
      else {
        rest.push(skip > 0 ? chunk.subarray(skip) : chunk)
        skip = 0
      }
    }
    if (bytesWritten === 0 && rest.length > 0) throw new Error('Could not write to the spool file')
    pending = rest
  }
}
