/** An in-memory BlockStore, for tests and for the compliance suite. */
import type { CID } from 'multiformats/cid'
import { InvalidArgumentError, NotFoundError, StoreError } from '../errors.js'
import { verifyBlock } from '../format/block.js'
import type { AbortOptions, BlockStore, BlockWriter, CollectOptions, CollectResult, KeepBlock, Pin, Ref, RefsOptions } from './interface.js'

/** Keeps blocks in a Map keyed by the CID's multihash. */
export class MemoryBlockStore implements BlockStore {
  readonly blocks = new Map<string, Uint8Array>()
  readonly #pins = new Map<string, Pin>()
  readonly #refs = new Map<string, CID>()
  #openWriters = 0
  #collecting: Promise<unknown> | undefined

  async get(cid: CID, options?: AbortOptions): Promise<Uint8Array> {
    options?.signal?.throwIfAborted()
    const bytes = this.blocks.get(key(cid))
    if (bytes === undefined) throw new NotFoundError(`Block ${cid} not found`)
    verifyBlock(cid, bytes)
    return bytes
  }

  async getMany(cids: readonly CID[], options?: AbortOptions): Promise<Uint8Array[]> {
    return Promise.all(cids.map((cid) => this.get(cid, options)))
  }

  async getManyUnsafe(cids: readonly CID[], options?: AbortOptions): Promise<Uint8Array[]> {
    options?.signal?.throwIfAborted()
    return cids.map((cid) => {
      const bytes = this.blocks.get(key(cid))
      if (bytes === undefined) throw new NotFoundError(`Block ${cid} not found`)
      return bytes
    })
  }

  async has(cid: CID): Promise<boolean> {
    return this.blocks.has(key(cid))
  }

  async size(cid: CID): Promise<number | undefined> {
    return this.blocks.get(key(cid))?.length
  }

  async begin(options?: AbortOptions): Promise<BlockWriter> {
    options?.signal?.throwIfAborted()
    while (this.#collecting !== undefined) await this.#collecting.catch(() => {})
    const pending = new Map<string, Uint8Array>()
    const pins: Pin[] = []
    const unpins: CID[] = []
    const refs = new Map<string, CID | undefined>()
    let newBytes = 0
    let open = true
    this.#openWriters++
    const finish = () => {
      if (!open) throw new StoreError('ERR_STORE', 'Transaction already finished')
      open = false
      this.#openWriters--
    }
    return {
      put: async (cid, bytes) => {
        const k = key(cid)
        if (this.blocks.has(k) || pending.has(k)) return false
        pending.set(k, bytes.slice())
        newBytes += bytes.length
        return true
      },
      pin: (cid, label) => {
        pins.push({ cid, label, added: Date.now() })
      },
      unpin: (cid) => {
        unpins.push(cid)
      },
      setRef: (name, cid) => {
        checkRefName(name)
        refs.set(name, cid)
      },
      commit: async () => {
        finish()
        for (const [k, bytes] of pending) this.blocks.set(k, bytes)
        for (const cid of unpins) this.#pins.delete(cid.toString())
        for (const pin of pins) this.#pins.set(pin.cid.toString(), pin)
        for (const [name, cid] of refs) {
          if (cid === undefined) this.#refs.delete(name)
          else this.#refs.set(name, cid)
        }
      },
      abort: async () => {
        if (open) finish()
        pending.clear()
      },
      get newBytes() {
        return newBytes
      },
    }
  }

  async *pins(): AsyncIterable<Pin> {
    yield* this.#pins.values()
  }

  async ref(name: string): Promise<CID | undefined> {
    return this.#refs.get(name)
  }

  async *refs(options: RefsOptions = {}): AsyncIterable<Ref> {
    const prefix = options.prefix ?? ''
    const names = [...this.#refs.keys()].filter((name) => name.startsWith(prefix))
    names.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
    for (const name of names) yield { name, cid: this.#refs.get(name)! }
  }

  async collect(mark: (options: AbortOptions) => Promise<KeepBlock>, options: CollectOptions = {}): Promise<CollectResult> {
    options.signal?.throwIfAborted()
    if (this.#openWriters > 0 || this.#collecting !== undefined) {
      throw new StoreError('ERR_STORE_LOCKED', 'A transaction is open: garbage collection needs the store alone')
    }
    const run = (async (): Promise<CollectResult> => {
      const keep = await mark({ signal: options.signal })
      options.onPhase?.('marked')
      const bytesBefore = await this.storedBytes()
      const dead: string[] = []
      let keptBytes = 0
      let deletedBytes = 0
      for (const [k, bytes] of this.blocks) {
        if (keep(Buffer.from(k, 'base64'))) keptBytes += bytes.length
        else {
          dead.push(k)
          deletedBytes += bytes.length
        }
      }
      if (options.dryRun !== true) for (const k of dead) this.blocks.delete(k)
      options.onPhase?.('done')
      return {
        keptBlocks: this.blocks.size - (options.dryRun === true ? dead.length : 0),
        keptBytes,
        deletedBlocks: dead.length,
        deletedBytes,
        packsRewritten: 0,
        packsDeleted: 0,
        orphanPacks: 0,
        bytesBefore,
        bytesAfter: bytesBefore - deletedBytes,
      }
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
    for (const bytes of this.blocks.values()) total += bytes.length
    return total
  }

  async close(): Promise<void> {}
}

function checkRefName(name: string): void {
  const length = typeof name === 'string' ? Buffer.byteLength(name) : 0
  if (length < 1 || length > 1024) {
    throw new InvalidArgumentError(`Expected a reference name of 1 to 1024 UTF-8 bytes but received ${JSON.stringify(name)}`)
  }
}

function key(cid: CID): string {
  return Buffer.from(cid.multihash.bytes).toString('base64')
}
