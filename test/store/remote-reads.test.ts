/**
 * Reads from a remote backend (one without synchronous reads, as S3): the reads asked for in
 * one turn of the event loop go out together, merged per run of neighbouring blocks, and a
 * crop reads its index blocks, then its tiles, in two waves however many tile rows it spans
 * (src/store/object-store.ts, src/crop/prefetch.ts). The S3 suites run the same code against
 * the real server; here a counting wrapper over the memory backend shows the waves.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { rawBlock } from '../../src/format/block.js'
import type { Region } from '../../src/format/interface.js'
import { importImage, openImage } from '../../src/image.js'
import type { AbortOptions } from '../../src/store/interface.js'
import { type ObjectBlockStore, openObjectStore } from '../../src/store/object-store.js'
import type { ListOptions, ObjectDriver, ObjectInfo, ObjectSink, PutOptions } from '../../src/store/objects/interface.js'
import { MemoryDriver } from '../../src/store/objects/memory.js'

/**
 * The memory backend as a remote one: no getRangeSync, every read answered a turn later, and
 * counted. A wave is a group of reads issued in one turn of the event loop.
 */
class RemoteDriver implements ObjectDriver {
  readonly location = 'remote:'
  ranges: Array<{ key: string; offset: number; length: number; wave: number }> = []
  waves = 0
  #turnOpen = false
  constructor(readonly inner: MemoryDriver) {}

  reset(): void {
    this.ranges = []
    this.waves = 0
  }

  async get(key: string, options?: AbortOptions): Promise<Uint8Array | undefined> {
    await new Promise(setImmediate)
    return this.inner.get(key, options)
  }

  async getRange(key: string, offset: number, length: number, options?: AbortOptions): Promise<Uint8Array> {
    if (!this.#turnOpen) {
      this.#turnOpen = true
      this.waves++
      setImmediate(() => {
        this.#turnOpen = false
      })
    }
    this.ranges.push({ key, offset, length, wave: this.waves })
    await new Promise(setImmediate)
    return this.inner.getRange(key, offset, length, options)
  }

  put(key: string, bytes: Uint8Array, options?: PutOptions): Promise<boolean> {
    return this.inner.put(key, bytes, options)
  }
  create(key: string, options?: AbortOptions): Promise<ObjectSink> {
    return this.inner.create(key, options)
  }
  stat(key: string, options?: AbortOptions): Promise<ObjectInfo | undefined> {
    return this.inner.stat(key, options)
  }
  list(prefix: string, options?: ListOptions): AsyncIterable<ObjectInfo> {
    return this.inner.list(prefix, options)
  }
  delete(key: string, options?: AbortOptions): Promise<void> {
    return this.inner.delete(key, options)
  }
  async close(): Promise<void> {}
}

const blocks = Array.from({ length: 6 }, (_, i) => rawBlock(new TextEncoder().encode(`block ${i} `.repeat(i + 1))))

describe('remote reads', () => {
  let memory: MemoryDriver
  let remote: RemoteDriver
  let store: ObjectBlockStore
  beforeAll(async () => {
    memory = new MemoryDriver()
    const writer = await (await openObjectStore(memory)).begin()
    for (const block of blocks.slice(0, 3)) await writer.put(block.cid, block.bytes)
    await writer.commit()
    // A second pack, from a second transaction.
    const second = await (await openObjectStore(memory)).begin()
    for (const block of blocks.slice(3)) await second.put(block.cid, block.bytes)
    await second.commit()
    remote = new RemoteDriver(memory)
    store = await openObjectStore(remote, { create: false })
  })
  afterAll(async () => {
    await store.close()
  })

  it('is remote, and a local backend is not', async () => {
    expect(store.remote).toBe(true)
    expect((await openObjectStore(memory, { create: false })).remote).toBe(false)
  })

  it('sends the reads of one turn together, one request per pack', async () => {
    remote.reset()
    const [first, second, third] = await Promise.all([
      store.getMany([blocks[0]!.cid, blocks[4]!.cid]),
      store.getMany([blocks[1]!.cid]),
      store.get(blocks[5]!.cid),
    ])
    expect(first).toEqual([blocks[0]!.bytes, blocks[4]!.bytes])
    expect(second).toEqual([blocks[1]!.bytes])
    expect(third).toEqual(blocks[5]!.bytes)
    expect(remote.waves).toBe(1)
    // Neighbouring blocks of one pack are one request: two packs, two requests.
    expect(remote.ranges).toHaveLength(2)
    expect(new Set(remote.ranges.map((range) => range.key)).size).toBe(2)
  })

  it('fails only the reads whose pack is gone', async () => {
    const pack = [...store.state.packs.keys()].find((name) => store.packOf(blocks[3]!.cid.multihash.digest)?.pack === name)!
    const bytes = (await memory.get(`packs/${pack}.pack`))!
    await memory.delete(`packs/${pack}.pack`)
    try {
      const [lost, kept] = await Promise.allSettled([store.get(blocks[3]!.cid), store.get(blocks[0]!.cid)])
      expect(lost).toMatchObject({ status: 'rejected', reason: { code: 'ERR_NOT_FOUND' } })
      expect(kept).toEqual({ status: 'fulfilled', value: blocks[0]!.bytes })
    } finally {
      await memory.put(`packs/${pack}.pack`, bytes)
    }
  })
})

describe('a crop from a remote store', () => {
  const memory = new MemoryDriver()
  const remote = new RemoteDriver(memory)
  let root: string
  beforeAll(async () => {
    const local = await openObjectStore(memory)
    root = (await importImage(local, 'testdata/dragonfly.png', { tileSize: 64, workers: 0 })).cid.toString()
  })

  const collect = async (bands: AsyncIterable<{ data: Uint8Array }>) => {
    const parts: Uint8Array[] = []
    for await (const band of bands) parts.push(band.data)
    return Buffer.concat(parts)
  }

  it.each<[string, Region]>([
    ['three tile rows', { x: 100, y: 30, width: 150, height: 170 }],
    ['one tile', { x: 70, y: 70, width: 20, height: 20 }],
    ['the bottom-right edge', { x: 800, y: 600, width: 45, height: 34 }],
  ])('reads %s in two waves, pixels as a local read gives them', async (_, region) => {
    const local = await openImage(await openObjectStore(memory, { create: false }), root)
    const expected = await collect(local.reader.bands(region))
    const store = await openObjectStore(remote, { create: false })
    const image = await openImage(store, root)
    remote.reset()
    expect(await collect(image.reader.bands(region))).toEqual(expected)
    // The index blocks, then the tiles: one request per run of neighbouring blocks.
    expect(remote.waves).toBe(2)
    const rows = Math.floor((region.y + region.height - 1) / 64) - Math.floor(region.y / 64) + 1
    expect(remote.ranges.filter((range) => range.wave === 2).length).toBeLessThanOrEqual(rows)
    // Read again: the index blocks are kept, the tiles are one wave.
    remote.reset()
    expect(await collect(image.reader.bands(region))).toEqual(expected)
    expect(remote.waves).toBe(1)
  })
})
