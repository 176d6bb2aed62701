import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bandsAhead, DecodePool } from '../../src/crop/decode-pool.js'
import { emptyStats, importImage, openImage, type TesseraImage } from '../../src/image.js'
import type { BlockStore } from '../../src/store/interface.js'
import { MemoryBlockStore } from '../../src/store/memory.js'
import { openStoreAt } from '../../src/store/open.js'
import { makeImage, naiveCrop, naiveHalve, type TestImage, writePam } from '../helpers/oracle.js'
import { deleteS3Prefix, missingS3, s3RunUrl } from '../helpers/s3.js'

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-decode-pool-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** `source` written as `name`.pam and imported into `store` (no pyramid), opened. */
async function stored(store: BlockStore, name: string, source: TestImage, tileSize: number): Promise<TesseraImage> {
  const path = join(dir, `${name}.pam`)
  await writePam(path, source)
  const { cid } = await importImage(store, path, { tileSize, workers: 0 })
  return openImage(store, cid)
}

describe.each([0, 2])('DecodePool with %i threads', (threads) => {
  it('decodes regions exactly, in every pixel format, at every level', async () => {
    const pool = new DecodePool(threads)
    try {
      for (const [channels, bits] of [
        [3, 8],
        [1, 16],
        [4, 8],
        [2, 16],
      ] as const) {
        const store = new MemoryBlockStore()
        const source = makeImage(77, 53, channels, bits, channels + bits)
        const path = join(dir, `pool-${threads}-${channels}-${bits}.pam`)
        await writePam(path, source)
        const { cid } = await importImage(store, path, { tileSize: 16, pyramid: true, workers: 0 })
        const image = await openImage(store, cid)
        const regions = [
          { x: 0, y: 0, width: 77, height: 53 },
          { x: 15, y: 15, width: 2, height: 2 },
          { x: 30, y: 7, width: 40, height: 33 },
          { x: 76, y: 52, width: 1, height: 1 },
        ]
        const crops = await Promise.all(regions.map((region) => pool.read(image.reader, region)))
        for (const [i, crop] of crops.entries()) expect(Buffer.compare(crop, naiveCrop(source, regions[i]!))).toBe(0)
        const half = naiveHalve(source)
        const stats = emptyStats()
        const level1 = await pool.read(image.reader, { x: 3, y: 4, width: 30, height: 20 }, { level: 1, stats })
        expect(Buffer.compare(level1, naiveCrop(half, { x: 3, y: 4, width: 30, height: 20 }))).toBe(0)
        expect(stats.tilesRead).toBe(3 * 2)
      }
    } finally {
      await pool.close()
    }
  })

  it('rejects a corrupted tile with ERR_INTEGRITY and a bad region with ERR_INVALID_REGION', async () => {
    const pool = new DecodePool(threads)
    try {
      const store = new MemoryBlockStore()
      const path = join(dir, `pool-corrupt-${threads}.pam`)
      await writePam(path, makeImage(40, 40, 3, 8))
      const { cid } = await importImage(store, path, { tileSize: 16, workers: 0 })
      const image = await openImage(store, cid)
      await expect(pool.read(image.reader, { x: 30, y: 30, width: 20, height: 5 })).rejects.toMatchObject({ code: 'ERR_INVALID_REGION' })
      const index = await image.reader.tileRow(0, 0)
      store.blocks.get(Buffer.from(index.tiles[0]!.multihash.bytes).toString('base64'))![7]! ^= 1
      await expect(pool.read(image.reader, { x: 0, y: 0, width: 10, height: 10 })).rejects.toMatchObject({ code: 'ERR_INTEGRITY' })
    } finally {
      await pool.close()
    }
  })
})

describe('DecodePool on the pack store (workers read the packs themselves; inline, into the read scratch)', () => {
  it.each([2, 0])('decodes exactly and detects a corrupted pack byte by hash, with %i threads', async (threads) => {
    const { openStore } = await import('../../src/image.js')
    const { readdir, readFile, writeFile } = await import('node:fs/promises')
    const storeDir = join(dir, `pack-store-${threads}`)
    const store = await openStore(storeDir)
    const pool = new DecodePool(threads)
    try {
      const source = makeImage(90, 70, 3, 8, 9)
      const image = await stored(store, `pool-pack-${threads}`, source, 32)
      const region = { x: 5, y: 6, width: 80, height: 60 }
      expect(Buffer.compare(await pool.read(image.reader, region), naiveCrop(source, region))).toBe(0)
      const [pack] = (await readdir(join(storeDir, 'packs'))).filter((name) => name.endsWith('.pack'))
      const bytes = await readFile(join(storeDir, 'packs', pack!))
      bytes[200]! ^= 1 // inside the first tile's payload
      await writeFile(join(storeDir, 'packs', pack!), bytes)
      await expect(pool.read(image.reader, { x: 0, y: 0, width: 10, height: 10 })).rejects.toMatchObject({ code: 'ERR_INTEGRITY' })
    } finally {
      await pool.close()
      await store.close()
    }
  })
})

describe('DecodePool.bands (tile rows decoded ahead of the caller, in order)', () => {
  /** The region's bands from `pool`, concatenated, with their positions. */
  async function collect(bands: AsyncIterable<{ y: number; height: number; data: Uint8Array }>) {
    const all: Uint8Array[] = []
    const at: Array<[number, number]> = []
    for await (const band of bands) {
      all.push(band.data)
      at.push([band.y, band.height])
    }
    return { bytes: Buffer.concat(all), at }
  }

  it.each([2, 0])('yields the bands ImageReader.bands yields, exactly, with %i threads (workers reading the packs)', async (threads) => {
    const { openStore } = await import('../../src/image.js')
    const store = await openStore(join(dir, `bands-${threads}`))
    const pool = new DecodePool(threads)
    try {
      const source = makeImage(150, 130, 3, 8, 11)
      const image = await stored(store, `bands-${threads}`, source, 32)
      // The first read of each tile row's index block counts, on whichever thread it is read.
      const first = emptyStats()
      await collect(pool.bands(image.reader, { x: 0, y: 0, width: 150, height: 130 }, { stats: first }))
      expect(first).toMatchObject({ tilesRead: 5 * 5, indexBlocksRead: 5 })
      for (const region of [
        { x: 0, y: 0, width: 150, height: 130 },
        { x: 31, y: 33, width: 90, height: 64 },
        { x: 149, y: 0, width: 1, height: 130 },
        { x: 0, y: 129, width: 150, height: 1 },
      ]) {
        for (const ahead of [undefined, 1, 5]) {
          const stats = emptyStats()
          const ours = await collect(pool.bands(image.reader, region, { stats, ...(ahead && { ahead }) }))
          const theirs = await collect(image.reader.bands(region))
          expect(Buffer.compare(ours.bytes, naiveCrop(source, region))).toBe(0)
          expect(ours.at).toEqual(theirs.at)
          const tiles = (Math.floor((region.x + region.width - 1) / 32) - Math.floor(region.x / 32) + 1) * theirs.at.length
          expect(stats.tilesRead).toBe(tiles)
        }
      }
      await expect(collect(pool.bands(image.reader, { x: 100, y: 0, width: 51, height: 10 }))).rejects.toMatchObject({
        code: 'ERR_INVALID_REGION',
      })
    } finally {
      await pool.close()
      await store.close()
    }
  })

  it('keeps a band in flight per thread while they fit in 96 MiB, and at least one', () => {
    // The benchmark image's 22.7 MB bands, a 100k-pixel 16-bit RGBA band (205 MB), a tiny one.
    expect([2, 4, 8].map((threads) => bandsAhead(threads, 29566 * 256 * 3))).toEqual([2, 4, 4])
    expect(bandsAhead(8, 100_000 * 256 * 8)).toBe(1)
    expect(bandsAhead(0, 100)).toBe(1)
    expect(bandsAhead(3, 100)).toBe(3)
  })

  it('stops with the caller, and fails on a corrupted tile after yielding the rows before it', async () => {
    const store = new MemoryBlockStore()
    const pool = new DecodePool(2)
    try {
      const source = makeImage(64, 160, 1, 16, 12)
      const image = await stored(store, 'bands-memory', source, 16)
      const region = { x: 3, y: 5, width: 60, height: 150 }
      expect(Buffer.compare((await collect(pool.bands(image.reader, region))).bytes, naiveCrop(source, region))).toBe(0)
      // A caller that stops after the first band: the rows in flight finish, nothing is left failing.
      for await (const band of pool.bands(image.reader, region, { ahead: 4 })) {
        expect(band.y).toBe(0)
        break
      }
      const index = await image.reader.tileRow(0, 6)
      store.blocks.get(Buffer.from(index.tiles[1]!.multihash.bytes).toString('base64'))![9]! ^= 1
      const yielded: Uint8Array[] = []
      const failed = (async () => {
        for await (const band of pool.bands(image.reader, region, { ahead: 8 })) yielded.push(band.data)
      })()
      await expect(failed).rejects.toMatchObject({ code: 'ERR_INTEGRITY' })
      // Rows 5-95 (tile rows 0-5) came out before it, right.
      expect(Buffer.compare(Buffer.concat(yielded), naiveCrop(source, { ...region, height: 91 }))).toBe(0)
    } finally {
      await pool.close()
    }
  })
})

const s3Url = s3RunUrl('decode-pool')
if (s3Url === undefined) {
  missingS3('DecodePool.bands test')
} else {
  describe('DecodePool.bands on S3 (workers open the bucket themselves)', () => {
    afterAll(async () => {
      await deleteS3Prefix(s3Url)
    })

    it('yields every band exactly, and counts what the workers read', async () => {
      const store = await openStoreAt(s3Url)
      const pool = new DecodePool(2)
      try {
        const source = makeImage(150, 130, 3, 8, 13)
        const image = await stored(store, 'bands-s3', source, 32)
        for (const [region, tiles] of [
          [{ x: 0, y: 0, width: 150, height: 130 }, 5 * 5],
          [{ x: 17, y: 40, width: 100, height: 61 }, 4 * 3],
        ] as const) {
          const stats = emptyStats()
          const bands: Uint8Array[] = []
          for await (const band of pool.bands(image.reader, region, { stats })) bands.push(band.data)
          expect(Buffer.compare(Buffer.concat(bands), naiveCrop(source, region))).toBe(0)
          expect(stats.tilesRead).toBe(tiles)
        }
      } finally {
        await pool.close()
        await store.close()
      }
    })
  })
}
