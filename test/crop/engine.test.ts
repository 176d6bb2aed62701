import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { TileCache } from '../../src/crop/tile-cache.js'
import type { Region } from '../../src/format/interface.js'
import { emptyStats, importImage, openImage, openStore, type TesseraImage } from '../../src/image.js'
import { makeImage, naiveCrop, type TestImage, writePam } from '../helpers/oracle.js'

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-engine-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** The region's bands, concatenated, and the bands yielded before any error. */
async function crop(image: TesseraImage, region: Region): Promise<{ bytes: Uint8Array; bands: Uint8Array[]; error?: unknown }> {
  const bands: Uint8Array[] = []
  try {
    for await (const band of image.reader.bands(region)) bands.push(band.data)
  } catch (error) {
    return { bytes: Buffer.concat(bands), bands, error }
  }
  return { bytes: Buffer.concat(bands), bands }
}

type PackStore = Awaited<ReturnType<typeof openStore>>

/** `source` imported into a new pack store `name` (32-pixel tiles), given to `use`; closed after. */
async function withStoredImage(
  name: string,
  source: TestImage,
  use: (store: PackStore, image: TesseraImage, storeDir: string) => Promise<void>,
): Promise<void> {
  const storeDir = join(dir, name)
  const store = await openStore(storeDir)
  try {
    const path = join(dir, `${name}.pam`)
    await writePam(path, source)
    const { cid } = await importImage(store, path, { tileSize: 32, workers: 0 })
    await use(store, await openImage(store, cid), storeDir)
  } finally {
    await store.close()
  }
}

/** The store's one pack file, its bytes, and where in it `payload` lies (once). */
async function packHolding(storeDir: string, payload: Uint8Array): Promise<{ packPath: string; bytes: Buffer; at: number }> {
  const [pack] = (await readdir(join(storeDir, 'packs'))).filter((name) => name.endsWith('.pack'))
  const packPath = join(storeDir, 'packs', pack!)
  const bytes = await readFile(packPath)
  const at = bytes.indexOf(Buffer.from(payload))
  expect(at).toBeGreaterThan(0)
  expect(bytes.indexOf(Buffer.from(payload), at + 1)).toBe(-1)
  return { packPath, bytes, at }
}

/** Whether each of the store's reads into a scratch buffer succeeded, from now on. */
function scratchReads(store: PackStore): boolean[] {
  const getManyInto = store.getManyInto!.bind(store)
  const answers: boolean[] = []
  store.getManyInto = (cids, scratch) => {
    const blocks = getManyInto(cids, scratch)
    answers.push(blocks !== undefined)
    return blocks
  }
  return answers
}

describe('ImageReader on the pack store (a tile row in one read)', () => {
  it.each([
    [3, 8],
    [1, 16],
    [4, 8],
  ] as const)('crops %i-channel %i-bit images exactly', async (channels, bits) => {
    const storeDir = join(dir, `exact-${channels}-${bits}`)
    const store = await openStore(storeDir)
    try {
      const source = makeImage(150, 110, channels, bits, channels * bits)
      const path = join(dir, `exact-${channels}-${bits}.pam`)
      await writePam(path, source)
      const { cid } = await importImage(store, path, { tileSize: 32, workers: 0 })
      const image = await openImage(store, cid)
      for (const region of [
        { x: 0, y: 0, width: 150, height: 110 },
        { x: 31, y: 31, width: 66, height: 66 },
        { x: 5, y: 40, width: 140, height: 9 },
        { x: 149, y: 109, width: 1, height: 1 },
        { x: 96, y: 0, width: 54, height: 110 },
      ]) {
        const stats = emptyStats()
        const bands: Uint8Array[] = []
        for await (const band of image.reader.bands(region, { stats })) bands.push(band.data)
        expect(Buffer.compare(Buffer.concat(bands), naiveCrop(source, region))).toBe(0)
        const columns = Math.floor((region.x + region.width - 1) / 32) - Math.floor(region.x / 32) + 1
        expect(stats.tilesRead).toBe(columns * bands.length)
        // The same into one buffer, counted the same.
        const into = new Uint8Array(region.width * region.height * channels * (bits / 8))
        const intoStats = emptyStats()
        await image.reader.readInto(region, into, { stats: intoStats })
        expect(Buffer.compare(into, naiveCrop(source, region))).toBe(0)
        // (Its index blocks are cached by now.)
        expect({ ...intoStats, indexBlocksRead: 0 }).toEqual({ ...stats, indexBlocksRead: 0 })
      }
      await expect(image.reader.readInto({ x: 0, y: 0, width: 2, height: 2 }, new Uint8Array(3))).rejects.toMatchObject({
        code: 'ERR_INVALID_ARGUMENT',
      })
    } finally {
      await store.close()
    }
  })

  it('keeps concurrent crops apart (they share one read scratch)', async () => {
    const storeDir = join(dir, 'concurrent')
    const store = await openStore(storeDir)
    try {
      const source = makeImage(700, 90, 3, 8, 3)
      const path = join(dir, 'concurrent.pam')
      await writePam(path, source)
      // 16-pixel tiles of noise: a 700-pixel band is 44 tiles, some 30 KB of payloads.
      const { cid } = await importImage(store, path, { tileSize: 16, workers: 0 })
      const image = await openImage(store, cid)
      const regions = Array.from({ length: 24 }, (_, i) => ({ x: (i * 37) % 500, y: (i * 11) % 60, width: 30 + i * 7, height: 25 }))
      regions.push({ x: 0, y: 0, width: 700, height: 90 })
      const crops = await Promise.all(regions.map((region) => crop(image, region)))
      for (const [i, result] of crops.entries()) {
        expect(result.error).toBeUndefined()
        expect(Buffer.compare(result.bytes, naiveCrop(source, regions[i]!))).toBe(0)
      }
      // readInto, through the same scratch, beside bands.
      const intos = await Promise.all(
        regions.map(async (region, i) => {
          if (i % 2 === 0) return (await crop(image, region)).bytes
          const out = new Uint8Array(region.width * region.height * 3)
          await image.reader.readInto(region, out)
          return out
        }),
      )
      for (const [i, bytes] of intos.entries()) expect(Buffer.compare(bytes, naiveCrop(source, regions[i]!))).toBe(0)
      // A scratch too small for the band: the store says so (the reader then reads it another way).
      const index = await image.reader.tileRow(0, 0)
      const cids = index.tiles.slice(0, 10)
      expect(store.getManyInto!(cids, new Uint8Array(100))).toBeUndefined()
      const views = store.getManyInto!(cids, new Uint8Array(1 << 20))!
      expect(views.map((view) => Buffer.from(view).toString('hex'))).toEqual(
        (await store.getMany(cids)).map((b) => Buffer.from(b).toString('hex')),
      )
    } finally {
      await store.close()
    }
  })

  it('reads a band whose payloads outgrow the read scratch into buffers of its own', async () => {
    const storeDir = join(dir, 'wide')
    const store = await openStore(storeDir)
    try {
      // 32 tiles of 256x256 noisy RGB: about 2.2 MB of payloads in one band (the scratch is 2 MiB).
      const source = makeImage(8192, 256, 3, 8, 7)
      const path = join(dir, 'wide.pam')
      await writePam(path, source)
      const { cid } = await importImage(store, path, { workers: 0 })
      const image = await openImage(store, cid)
      const answers = scratchReads(store)
      const whole = { x: 0, y: 0, width: 8192, height: 256 }
      const part = { x: 300, y: 10, width: 512, height: 200 }
      expect(Buffer.compare((await crop(image, whole)).bytes, naiveCrop(source, whole))).toBe(0)
      expect(Buffer.compare((await crop(image, part)).bytes, naiveCrop(source, part))).toBe(0)
      expect(answers).toEqual([false, true])
    } finally {
      await store.close()
    }
  })

  it('decodes through a tile cache from the read scratch: exact, counted, and a corrupted tile fails, never cached', async () => {
    const source: TestImage = makeImage(160, 96, 3, 8, 6)
    await withStoredImage('cached', source, async (store, image, storeDir) => {
      const cache = new TileCache({ maxBytes: 1 << 20 })
      image.reader.tileCache = cache
      const answers = scratchReads(store)
      const regions = [
        { x: 0, y: 0, width: 160, height: 96 },
        { x: 17, y: 9, width: 100, height: 70 },
        { x: 159, y: 95, width: 1, height: 1 },
      ]
      for (const region of regions) {
        const stats = emptyStats()
        const bands: Uint8Array[] = []
        for await (const band of image.reader.bands(region, { stats })) bands.push(band.data)
        expect(Buffer.compare(Buffer.concat(bands), naiveCrop(source, region))).toBe(0)
        // The first crop reads every tile; the others find theirs decoded.
        expect(stats.tilesRead).toBe(region === regions[0] ? 15 : 0)
      }
      expect(cache.stats).toMatchObject({ decoded: 15, tiles: 15 })
      // One read per tile row of the first crop, each into the scratch.
      expect(answers).toEqual([true, true, true])
      // A corrupted payload in the pack, with the cache emptied: ERR_INTEGRITY, and nothing cached for it.
      const payload = await store.get((await image.reader.tileRow(0, 1)).tiles[2]!)
      const { packPath, bytes, at } = await packHolding(storeDir, payload)
      const corrupt = Buffer.from(bytes)
      corrupt[at + Math.floor(payload.length / 2)]! ^= 0x10
      await writeFile(packPath, corrupt)
      cache.clear()
      const region = { x: 64, y: 32, width: 40, height: 40 }
      await expect(crop(image, region)).resolves.toMatchObject({ error: expect.objectContaining({ code: 'ERR_INTEGRITY' }) })
      expect(cache.stats.tiles).toBe(0)
      await writeFile(packPath, bytes)
      expect(Buffer.compare((await crop(image, region)).bytes, naiveCrop(source, region))).toBe(0)
    })
  })

  it('fails a crop with ERR_INTEGRITY on a corrupted tile in the middle of a row, never yielding its pixels', async () => {
    const source: TestImage = makeImage(128, 96, 3, 8, 5)
    await withStoredImage('corrupt', source, async (store, image, storeDir) => {
      // Tile (column 2, row 1): the middle of the second band of the region below.
      const payload = await store.get((await image.reader.tileRow(0, 1)).tiles[2]!)
      const { packPath, bytes, at } = await packHolding(storeDir, payload)
      const region = { x: 20, y: 10, width: 100, height: 80 }
      const good = await crop(image, region)
      expect(good.error).toBeUndefined()
      expect(Buffer.compare(good.bytes, naiveCrop(source, region))).toBe(0)
      // A flipped byte in the compressed data (still a valid zstd frame, or not), then one at
      // the end of the payload (checksum-less frames decode it to other pixels).
      for (const offset of [Math.floor(payload.length / 2), payload.length - 1]) {
        const corrupt = Buffer.from(bytes)
        corrupt[at + offset]! ^= 0x10
        await writeFile(packPath, corrupt)
        const result = await crop(image, region)
        expect(result.error).toMatchObject({ code: 'ERR_INTEGRITY' })
        // Only the first band (tile row 0) came out, and it is right.
        expect(result.bands).toHaveLength(1)
        expect(Buffer.compare(result.bytes, naiveCrop(source, { ...region, height: 22 }))).toBe(0)
        await expect(image.reader.readInto(region, new Uint8Array(region.width * region.height * 3))).rejects.toMatchObject({
          code: 'ERR_INTEGRITY',
        })
        // A region that does not touch the tile still crops.
        const other = { x: 0, y: 64, width: 128, height: 32 }
        expect(Buffer.compare((await crop(image, other)).bytes, naiveCrop(source, other))).toBe(0)
      }
      await writeFile(packPath, bytes)
      expect(Buffer.compare((await crop(image, region)).bytes, naiveCrop(source, region))).toBe(0)
    })
  })
})
