/** A store in memory: the object layout over a Map, for tests and throw-away stores. */
import { indexKey, ObjectBlockStore } from './object-store.js'
import { MemoryDriver } from './objects/memory.js'
import { encodePackIndex, type IndexEntry, PackIndex } from './pack-index.js'
import { emptyState } from './root-log.js'

/** An empty store whose objects live in a Map (synchronous to create: an empty store needs no reads). */
export class MemoryBlockStore extends ObjectBlockStore {
  /** The stored blocks by base64 multihash, as views of their bytes in the packs (tests corrupt them through it). */
  readonly blocks: BlockView

  constructor() {
    const driver = new MemoryDriver()
    driver.objects.set('VERSION', { bytes: new TextEncoder().encode('tessera-store 2\n'), modified: Date.now() })
    // Nothing but this object writes to its Map: there is never a newer view to read.
    super(driver, emptyState(), { refreshMs: Number.POSITIVE_INFINITY })
    this.blocks = new BlockView(this, driver)
  }
}

/** A Map-like view of a memory store's blocks. */
class BlockView {
  readonly #store: ObjectBlockStore
  readonly #driver: MemoryDriver

  constructor(store: ObjectBlockStore, driver: MemoryDriver) {
    this.#store = store
    this.#driver = driver
  }

  get size(): number {
    return [...this.keys()].length
  }

  *keys(): Generator<string> {
    const seen = new Set<string>()
    for (const name of this.#store.state.packs.keys()) {
      for (const entry of this.#index(name)) {
        const key = toKey(entry.digest)
        if (!seen.has(key)) yield key
        seen.add(key)
      }
    }
  }

  get(key: string): Uint8Array | undefined {
    const found = this.#store.findLive(fromKey(key))
    return found === undefined ? undefined : this.#driver.getRangeSync(`packs/${found.pack}.pack`, found.offset, found.length)
  }

  /** Removes the block from its pack's index, as if it had been lost. */
  delete(key: string): boolean {
    const digest = fromKey(key)
    const found = this.#store.findLive(digest)
    if (found === undefined) return false
    const entries = [...this.#index(found.pack)].filter((entry) => toKey(entry.digest) !== key)
    this.#driver.objects.set(indexKey(found.pack), { bytes: encodePackIndex(entries), modified: Date.now() })
    void this.#store.reloadIndexes()
    return true
  }

  #index(name: string): IndexEntry[] {
    return [...new PackIndex(this.#driver.objects.get(indexKey(name))!.bytes).entries()]
  }
}

function toKey(digest: Uint8Array): string {
  return Buffer.concat([Uint8Array.of(0x12, 0x20), digest]).toString('base64')
}

function fromKey(key: string): Uint8Array {
  return new Uint8Array(Buffer.from(key, 'base64').subarray(2))
}
