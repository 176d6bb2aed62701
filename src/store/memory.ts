/** An in-memory BlockStore, for tests and for the compliance suite. */
import type { CID } from 'multiformats/cid'
import { NotFoundError } from '../errors.js'
import { verifyBlock } from '../format/block.js'
import type { AbortOptions, BlockStore, BlockWriter, Pin } from './interface.js'

/** Keeps blocks in a Map keyed by the CID's multihash. */
export class MemoryBlockStore implements BlockStore {
  readonly blocks = new Map<string, Uint8Array>()
  readonly #pins = new Map<string, Pin>()

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

  async begin(): Promise<BlockWriter> {
    const pending = new Map<string, Uint8Array>()
    const pins: Pin[] = []
    let newBytes = 0
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
      commit: async () => {
        for (const [k, bytes] of pending) this.blocks.set(k, bytes)
        for (const pin of pins) this.#pins.set(pin.cid.toString(), pin)
      },
      abort: async () => {
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

  async storedBytes(): Promise<number> {
    let total = 0
    for (const bytes of this.blocks.values()) total += bytes.length
    return total
  }

  async close(): Promise<void> {}
}

function key(cid: CID): string {
  return Buffer.from(cid.multihash.bytes).toString('base64')
}
