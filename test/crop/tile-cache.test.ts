import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DecodePool } from '../../src/crop/decode-pool.js'
import type { ImageReader } from '../../src/crop/engine.js'
import { tileRange } from '../../src/crop/plan.js'
import { TileCache } from '../../src/crop/tile-cache.js'
import type { Region } from '../../src/format/interface.js'
import { emptyStats, importImage, openImage, type TesseraImage } from '../../src/image.js'
import { MemoryBlockStore } from '../../src/store/memory.js'
import { makeImage, naiveCrop, type TestImage, writePam } from '../helpers/oracle.js'

/** A promise with its resolve and reject, to hold a decode in flight. */
function deferred<T>() {
  let resolve!: (value: T) => void
  let reject!: (error: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

const tile = (n: number, value = n) => new Uint8Array(n).fill(value)

describe('TileCache', () => {
  it('decodes a tile asked for by concurrent callers once, and counts exactly', async () => {
    const cache = new TileCache({ maxBytes: 1000 })
    const gate = deferred<void>()
    const calls: number[][] = []
    const decode = async (missing: number[]) => {
      calls.push(missing)
      await gate.promise
      return missing.map(() => tile(10))
    }
    const first = cache.getMany(['a', 'b'], decode)
    const second = cache.getMany(['b', 'c', 'c'], decode)
    gate.resolve()
    const [x, y] = await Promise.all([first, second])
    expect(calls).toEqual([[0, 1], [1]]) // b joined the first call's decode; the second c joined the first c
    expect(y[0]).toBe(x[1]) // the same decoded tile
    expect(y[1]).toBe(y[2])
    expect(cache.stats).toEqual({ requested: 5, decoded: 3, hits: 2, evictions: 0, bytes: 30, tiles: 3 })
    await cache.getMany(['a', 'c'], decode)
    expect(calls).toHaveLength(2)
    expect(cache.stats).toMatchObject({ requested: 7, decoded: 3, hits: 4 })
  })

  it('holds at most maxBytes, evicting the least recently used', async () => {
    const cache = new TileCache({ maxBytes: 35 })
    const decode = async (missing: number[]) => missing.map(() => tile(10))
    await cache.getMany(['a', 'b', 'c'], decode)
    await cache.getMany(['a'], decode) // a is now the most recent: b goes first
    await cache.getMany(['d'], decode)
    expect(cache.stats).toMatchObject({ bytes: 30, tiles: 3, evictions: 1 })
    let decoded = cache.stats.decoded
    await cache.getMany(['a', 'c', 'd'], decode)
    expect(cache.stats.decoded).toBe(decoded)
    await cache.getMany(['b'], decode)
    expect(cache.stats.decoded).toBe(++decoded)
    // A tile larger than the whole cache is served but never kept.
    const [big] = await cache.getMany(['huge'], async () => [tile(100)])
    expect(big).toHaveLength(100)
    expect(cache.stats.bytes).toBeLessThanOrEqual(35)
    expect(cache.stats).toMatchObject({ requested: 10, decoded: 6, hits: 4 })
  })

  it('with maxBytes 0 keeps nothing but still decodes once per flight', async () => {
    const cache = new TileCache({ maxBytes: 0 })
    const gate = deferred<void>()
    let calls = 0
    const decode = async (missing: number[]) => {
      calls++
      await gate.promise
      return missing.map(() => tile(4))
    }
    const both = Promise.all([cache.getMany(['a'], decode), cache.getMany(['a'], decode)])
    gate.resolve()
    await both
    await cache.getMany(['a'], decode)
    expect(calls).toBe(2)
    expect(cache.stats).toEqual({ requested: 3, decoded: 2, hits: 1, evictions: 0, bytes: 0, tiles: 0 })
  })

  it('gives a failed decode to every waiter and caches nothing of it', async () => {
    const cache = new TileCache()
    const gate = deferred<void>()
    const failing = async () => {
      await gate.promise
      throw Object.assign(new Error('corrupt'), { code: 'ERR_INTEGRITY' })
    }
    const first = cache.getMany(['a'], failing)
    const second = cache.getMany(['a'], failing)
    gate.resolve()
    await expect(first).rejects.toMatchObject({ code: 'ERR_INTEGRITY' })
    await expect(second).rejects.toMatchObject({ code: 'ERR_INTEGRITY' })
    const [again] = await cache.getMany(['a'], async () => [tile(3, 7)])
    expect([...again!]).toEqual([7, 7, 7])
    expect(cache.stats).toMatchObject({ requested: 3, decoded: 1, hits: 1, tiles: 1 })
  })

  it('decodes into the buffers it evicts (those it allocated and got back), and nothing else', async () => {
    const cache = new TileCache({ maxBytes: 20 })
    const first = cache.allocate(10)
    cache.release(await cache.getMany(['a'], async () => [first]))
    const foreign = new Uint8Array(10)
    cache.release(await cache.getMany(['b'], async () => [foreign]))
    // A third tile evicts 'a' (allocated here: kept for reuse), a fourth 'b' (not: dropped).
    cache.release(await cache.getMany(['c'], async () => [cache.allocate(10)]))
    cache.release(await cache.getMany(['d'], async () => [new Uint8Array(10)]))
    expect(cache.allocate(10)).toBe(first)
    expect(cache.allocate(10)).not.toBe(foreign)
    expect(cache.allocate(12).byteLength).toBe(12)
  })

  it('never reuses a tile a caller holds', async () => {
    const cache = new TileCache({ maxBytes: 10 })
    const mine = await cache.getMany(['a'], async () => [cache.allocate(10)])
    // Evicted by 'b' while held: not reusable until handed back.
    cache.release(await cache.getMany(['b'], async () => [cache.allocate(10)]))
    expect(cache.stats.evictions).toBe(1)
    expect(cache.allocate(10)).not.toBe(mine[0])
    cache.release(mine)
    expect(cache.allocate(10)).toBe(mine[0])
    // Held twice (the same key twice in one call): free after both are handed back.
    const twice = await cache.getMany(['c', 'c'], async (missing) => missing.map(() => cache.allocate(10)))
    expect(twice[0]).toBe(twice[1])
    cache.release(await cache.getMany(['d'], async () => [cache.allocate(10)]))
    cache.release([twice[0]!])
    expect(cache.allocate(10)).not.toBe(twice[0])
    cache.release([twice[1]!])
    expect(cache.allocate(10)).toBe(twice[0])
  })

  it('rejects a bad maxBytes', () => {
    expect(() => new TileCache({ maxBytes: -1 })).toThrow(RangeError)
  })
})

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-tile-cache-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

async function stored(source: TestImage, name: string, tileSize: number): Promise<TesseraImage> {
  const store = new MemoryBlockStore()
  const path = join(dir, `${name}.pam`)
  await writePam(path, source)
  const { cid } = await importImage(store, path, { tileSize, workers: 0 })
  return openImage(store, cid)
}

/** The distinct tile payloads a region touches (what a cache must decode at most once). */
async function distinctTiles(reader: ImageReader, regions: readonly Region[]): Promise<number> {
  const cids = new Set<string>()
  for (const region of regions) {
    const { firstColumn, lastColumn, firstRow, lastRow } = tileRange(region, reader.manifest.tileSize)
    for (let row = firstRow; row <= lastRow; row++) {
      const index = await reader.tileRow(0, row)
      for (let column = firstColumn; column <= lastColumn; column++) cids.add(index.tiles[column]!.toString())
    }
  }
  return cids.size
}

async function readBands(reader: ImageReader, region: Region, cache?: TileCache): Promise<Uint8Array> {
  const parts: Uint8Array[] = []
  for await (const band of reader.bands(region, cache === undefined ? {} : { tileCache: cache })) parts.push(band.data)
  return new Uint8Array(Buffer.concat(parts))
}

const REGIONS: Region[] = [
  { x: 0, y: 0, width: 77, height: 53 },
  { x: 15, y: 15, width: 2, height: 2 },
  { x: 30, y: 7, width: 40, height: 33 },
  { x: 76, y: 52, width: 1, height: 1 },
  { x: 16, y: 32, width: 16, height: 16 },
]

describe('ImageReader with a TileCache', () => {
  it.each([
    [3, 8],
    [1, 16],
    [4, 8],
    [2, 16],
  ] as const)('reads exactly what it reads without one (%i channels, %i bits)', async (channels, bits) => {
    const source = makeImage(77, 53, channels, bits, channels + bits)
    const image = await stored(source, `reader-${channels}-${bits}`, 16)
    const cache = new TileCache({ maxBytes: 1 << 20 })
    for (const region of REGIONS) {
      const want = naiveCrop(source, region)
      expect(Buffer.compare(await readBands(image.reader, region), want)).toBe(0)
      expect(Buffer.compare(await readBands(image.reader, region, cache), want)).toBe(0)
      expect(Buffer.compare(await readBands(image.reader, region, cache), want)).toBe(0) // from the cache
    }
    const { requested, decoded, hits } = cache.stats
    expect(requested).toBe(decoded + hits)
    expect(decoded).toBe(await distinctTiles(image.reader, REGIONS))
  })

  it('decodes a tile two concurrent crops need once (the reader property and stats)', async () => {
    const source = makeImage(64, 64, 3, 8, 5)
    const image = await stored(source, 'concurrent', 32)
    const cache = new TileCache()
    image.reader.tileCache = cache
    try {
      const region = { x: 3, y: 4, width: 20, height: 20 } // inside tile (0, 0)
      const stats = [emptyStats(), emptyStats()]
      const read = async (i: number) => {
        const parts: Uint8Array[] = []
        for await (const band of image.reader.bands(region, { stats: stats[i] })) parts.push(band.data)
        return Buffer.concat(parts)
      }
      const [a, b] = await Promise.all([read(0), read(1)])
      expect(a.equals(naiveCrop(source, region))).toBe(true)
      expect(b.equals(a)).toBe(true)
      expect(cache.stats).toMatchObject({ requested: 2, decoded: 1, hits: 1 })
      expect(stats[0]!.tilesRead + stats[1]!.tilesRead).toBe(1) // read from the store once
    } finally {
      image.reader.tileCache = undefined
    }
  })

  it('stays exact when concurrent crops churn a small cache (evicted buffers reused)', async () => {
    const source = makeImage(200, 150, 3, 8, 12)
    const image = await stored(source, 'churn', 16)
    const cache = new TileCache({ maxBytes: 6 * 16 * 16 * 3 })
    const regions = Array.from({ length: 60 }, (_, i) => ({
      x: (i * 41) % 170,
      y: (i * 29) % 120,
      width: 1 + ((i * 13) % 30),
      height: 1 + ((i * 17) % 30),
    }))
    const results = await Promise.all(regions.map((region) => readBands(image.reader, region, cache)))
    for (const [i, region] of regions.entries()) expect(Buffer.compare(results[i]!, naiveCrop(source, region))).toBe(0)
    expect(cache.stats.evictions).toBeGreaterThan(50)
  })

  it('keeps its byte bound across many crops, with results unchanged', async () => {
    const source = makeImage(128, 128, 3, 8, 11)
    const image = await stored(source, 'bound', 16)
    const tileBytes = 16 * 16 * 3
    const cache = new TileCache({ maxBytes: 10 * tileBytes + 100 })
    for (let i = 0; i < 40; i++) {
      const region = { x: (i * 37) % 100, y: (i * 53) % 100, width: 1 + ((i * 7) % 28), height: 1 + ((i * 11) % 28) }
      expect(Buffer.compare(await readBands(image.reader, region, cache), naiveCrop(source, region))).toBe(0)
      expect(cache.stats.bytes).toBeLessThanOrEqual(cache.maxBytes)
    }
    const stats = cache.stats
    expect(stats.evictions).toBeGreaterThan(0)
    expect(stats.tiles).toBe(10)
    expect(stats.bytes).toBe(10 * tileBytes)
    expect(stats.requested).toBe(stats.decoded + stats.hits)
  })
})

describe.each([0, 2])('DecodePool with a TileCache, %i threads', (threads) => {
  it('reads exactly, decodes each tile of concurrent overlapping reads once, and shares the cache with ImageReader', async () => {
    const source = makeImage(77, 53, 3, 16, 21)
    const image = await stored(source, `pool-${threads}`, 16)
    const cache = new TileCache()
    const pool = new DecodePool(threads, { tileCache: cache })
    try {
      const crops = await Promise.all([...REGIONS, ...REGIONS].map((region) => pool.read(image.reader, region)))
      for (const [i, crop] of crops.entries()) expect(Buffer.compare(crop, naiveCrop(source, REGIONS[i % REGIONS.length]!))).toBe(0)
      const distinct = await distinctTiles(image.reader, REGIONS)
      expect(cache.stats.decoded).toBe(distinct)
      expect(cache.stats.requested).toBe(cache.stats.decoded + cache.stats.hits)
      // ImageReader.bands with the same cache decodes nothing more.
      for (const region of REGIONS) expect(Buffer.compare(await readBands(image.reader, region, cache), naiveCrop(source, region))).toBe(0)
      expect(cache.stats.decoded).toBe(distinct)
    } finally {
      await pool.close()
    }
  })

  it('rejects a corrupted tile with ERR_INTEGRITY and caches nothing of it', async () => {
    const source = makeImage(40, 40, 3, 8)
    const image = await stored(source, `pool-corrupt-${threads}`, 16)
    const cache = new TileCache()
    const pool = new DecodePool(threads, { tileCache: cache })
    try {
      const store = image.reader.store as MemoryBlockStore
      const index = await image.reader.tileRow(0, 0)
      const block = store.blocks.get(Buffer.from(index.tiles[0]!.multihash.bytes).toString('base64'))!
      block[7]! ^= 1
      await expect(pool.read(image.reader, { x: 0, y: 0, width: 10, height: 10 })).rejects.toMatchObject({ code: 'ERR_INTEGRITY' })
      expect(cache.stats.tiles).toBe(0)
      block[7]! ^= 1
      const region = { x: 0, y: 0, width: 10, height: 10 }
      expect(Buffer.compare(await pool.read(image.reader, region), naiveCrop(source, region))).toBe(0)
    } finally {
      await pool.close()
    }
  })
})
