import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { rawBlock } from '../../src/format/block.js'
import type { BlockStore } from '../../src/store/interface.js'
import { MemoryBlockStore } from '../../src/store/memory.js'
import { openPackStore } from '../../src/store/pack-store.js'

const a = rawBlock(new TextEncoder().encode('tile a'))
const b = rawBlock(new TextEncoder().encode('tile b, a little longer'))
const missing = rawBlock(new TextEncoder().encode('never stored'))

/** The contract every BlockStore backend must meet. */
function blockStoreSuite(name: string, setup: () => Promise<BlockStore>, teardown: (store: BlockStore) => Promise<void>) {
  describe(`${name} block store`, () => {
    let store: BlockStore
    beforeEach(async () => {
      store = await setup()
    })
    afterEach(async () => {
      await teardown(store)
    })

    it('stores blocks, visible only after commit', async () => {
      const writer = await store.begin()
      expect(await writer.put(a.cid, a.bytes)).toBe(true)
      expect(await store.has(a.cid)).toBe(false)
      await writer.commit()
      expect(await store.has(a.cid)).toBe(true)
      expect(await store.get(a.cid)).toEqual(a.bytes)
      expect(await store.size(a.cid)).toBe(a.bytes.length)
    })

    it('stores a block once, within and across transactions', async () => {
      const first = await store.begin()
      expect(await first.put(a.cid, a.bytes)).toBe(true)
      expect(await first.put(a.cid, a.bytes)).toBe(false)
      expect(first.newBytes).toBe(a.bytes.length)
      await first.commit()
      const before = await store.storedBytes()
      const second = await store.begin()
      expect(await second.put(a.cid, a.bytes)).toBe(false)
      expect(second.newBytes).toBe(0)
      await second.commit()
      expect(await store.storedBytes()).toBe(before)
    })

    it('leaves nothing behind on abort', async () => {
      const before = await store.storedBytes()
      const writer = await store.begin()
      await writer.put(b.cid, b.bytes)
      writer.pin(b.cid, 'b')
      await writer.abort()
      expect(await store.has(b.cid)).toBe(false)
      expect(await store.storedBytes()).toBe(before)
      const pins = []
      for await (const pin of store.pins()) pins.push(pin)
      expect(pins).toEqual([])
    })

    it('returns many blocks in order and fails with ERR_NOT_FOUND on a missing one', async () => {
      const writer = await store.begin()
      await writer.put(a.cid, a.bytes)
      await writer.put(b.cid, b.bytes)
      await writer.commit()
      expect(await store.getMany([b.cid, a.cid, b.cid])).toEqual([b.bytes, a.bytes, b.bytes])
      expect(await store.getManyUnsafe([b.cid, a.cid])).toEqual([b.bytes, a.bytes])
      await expect(store.getManyUnsafe([missing.cid])).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' })
      await expect(store.get(missing.cid)).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' })
      await expect(store.getMany([a.cid, missing.cid])).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' })
      expect(await store.size(missing.cid)).toBeUndefined()
    })

    it('records pins with the blocks', async () => {
      const writer = await store.begin()
      await writer.put(a.cid, a.bytes)
      writer.pin(a.cid, 'image a')
      await writer.commit()
      const pins = []
      for await (const pin of store.pins()) pins.push(pin)
      expect(pins.map((pin) => [pin.cid.toString(), pin.label])).toEqual([[a.cid.toString(), 'image a']])
    })

    it('honours an aborted signal', async () => {
      await expect(store.get(a.cid, { signal: AbortSignal.abort() })).rejects.toThrow()
    })
  })
}

blockStoreSuite(
  'memory',
  async () => new MemoryBlockStore(),
  async () => {},
)

const dirs = new Map<BlockStore, string>()
blockStoreSuite(
  'pack',
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tessera-store-'))
    const store = await openPackStore(dir)
    dirs.set(store, dir)
    return store
  },
  async (store) => {
    await store.close()
    await rm(dirs.get(store)!, { recursive: true, force: true })
  },
)

describe('pack store on disk', () => {
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tessera-store-'))
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('persists across reopen and removes empty packs', async () => {
    let store = await openPackStore(dir)
    const writer = await store.begin()
    await writer.put(a.cid, a.bytes)
    await writer.commit()
    const empty = await store.begin()
    await empty.put(a.cid, a.bytes)
    await empty.commit()
    expect(await readdir(join(dir, 'packs'))).toHaveLength(1)
    await store.close()
    store = await openPackStore(dir)
    expect(await store.get(a.cid)).toEqual(a.bytes)
    await store.close()
  })

  it('detects a corrupted pack byte by hash', async () => {
    const store = await openPackStore(dir)
    const writer = await store.begin()
    await writer.put(b.cid, b.bytes)
    await writer.commit()
    const [pack] = await readdir(join(dir, 'packs'))
    const path = join(dir, 'packs', pack!)
    const bytes = await readFile(path)
    bytes[bytes.length - 1]! ^= 1
    await writeFile(path, bytes)
    await expect(store.get(b.cid)).rejects.toMatchObject({ code: 'ERR_INTEGRITY' })
    await store.close()
  })

  it('frames packs as CARv1 sections (varint length, CID, bytes)', async () => {
    const store = await openPackStore(dir)
    const writer = await store.begin()
    await writer.put(a.cid, a.bytes)
    await writer.commit()
    await store.close()
    const [pack] = await readdir(join(dir, 'packs'))
    const bytes = new Uint8Array(await readFile(join(dir, 'packs', pack!)))
    const cidLength = a.cid.bytes.length
    expect(bytes[0]).toBe(cidLength + a.bytes.length)
    expect(bytes.subarray(1, 1 + cidLength)).toEqual(a.cid.bytes)
    expect(bytes.subarray(1 + cidLength)).toEqual(a.bytes)
  })

  it('reports ERR_STORE_LOCKED while another handle holds the store', async () => {
    const store = await openPackStore(dir)
    await expect(openPackStore(dir, { lockTimeout: 100 })).rejects.toMatchObject({ code: 'ERR_STORE_LOCKED' })
    await store.close()
  })

  it('refuses to open a missing store when asked not to create one', async () => {
    await expect(openPackStore(join(dir, 'nope'), { create: false })).rejects.toMatchObject({ code: 'ERR_STORE' })
  })
})
