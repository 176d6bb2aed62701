import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DecodePool } from '../../src/crop/decode-pool.js'
import { emptyStats, importImage, openImage } from '../../src/image.js'
import { MemoryBlockStore } from '../../src/store/memory.js'
import { makeImage, naiveCrop, naiveHalve, writePam } from '../helpers/oracle.js'

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-decode-pool-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

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
      const path = join(dir, `pool-pack-${threads}.pam`)
      await writePam(path, source)
      const { cid } = await importImage(store, path, { tileSize: 32, workers: 0 })
      const image = await openImage(store, cid)
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
