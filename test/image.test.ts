/**
 * End to end through the facade: import synthetic images of every pixel format, crop a table
 * of regions at every level, and compare each pixel with the naive oracle.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Region } from '../src/format/interface.js'
import {
  cropImage,
  cropOutput,
  emptyStats,
  imageInfo,
  importImage,
  manifestJson,
  openImage,
  storedTile,
  verifyImage,
} from '../src/image.js'
import { MemoryBlockStore } from '../src/store/memory.js'
import { makeImage, naiveCrop, naiveHalve, type TestImage, writePam } from './helpers/oracle.js'

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-image-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

async function collect(bands: AsyncIterable<{ data: Uint8Array }>): Promise<Uint8Array> {
  const parts: Uint8Array[] = []
  for await (const band of bands) parts.push(band.data)
  return new Uint8Array(Buffer.concat(parts))
}

/** Regions of a level: origin, interior, straddling tile edges, bottom-right partial tile, 1x1, full. */
function regionTable(width: number, height: number, tileSize: number): Array<[string, Region]> {
  const table: Array<[string, Region]> = [
    ['origin', { x: 0, y: 0, width: Math.min(5, width), height: Math.min(3, height) }],
    ['1x1 in the last pixel', { x: width - 1, y: height - 1, width: 1, height: 1 }],
    ['full level', { x: 0, y: 0, width, height }],
  ]
  if (width > tileSize + 4 && height > tileSize + 4) {
    table.push(['straddling tile edges', { x: tileSize - 3, y: tileSize - 2, width: 7, height: 5 }])
    table.push(['interior of one tile', { x: tileSize + 1, y: 1, width: 3, height: 4 }])
    const right = width - (width % tileSize || tileSize)
    const bottom = height - (height % tileSize || tileSize)
    table.push(['bottom-right partial tile', { x: right, y: bottom, width: width - right, height: height - bottom }])
    table.push(['tile-aligned', { x: tileSize, y: tileSize, width: width - tileSize, height: Math.min(tileSize, height - tileSize) }])
  }
  return table
}

const formats = [
  { channels: 1, bits: 8 },
  { channels: 2, bits: 8 },
  { channels: 3, bits: 8 },
  { channels: 4, bits: 8 },
  { channels: 1, bits: 16 },
  { channels: 2, bits: 16 },
  { channels: 3, bits: 16 },
  { channels: 4, bits: 16 },
] as const

describe.each(formats)('$channels channel(s), $bits-bit', ({ channels, bits }) => {
  const source = makeImage(101, 67, channels, bits, channels * bits)
  const tileSize = 32
  let store: MemoryBlockStore
  let cid: string

  beforeAll(async () => {
    store = new MemoryBlockStore()
    const path = join(dir, `image-${channels}-${bits}.pam`)
    await writePam(path, source)
    const result = await importImage(store, path, { tileSize, pyramid: true, workers: 0 })
    cid = result.cid.toString()
  })

  it('records the pixel format and pyramid', async () => {
    const image = await openImage(store, cid)
    expect(image.manifest).toMatchObject({ width: 101, height: 67, channels, bitsPerSample: bits, tileSize })
    expect(image.manifest.levels.map((l) => [l.width, l.height])).toEqual([
      [101, 67],
      [51, 34],
      [26, 17],
    ])
  })

  it('crops every region of every level exactly', async () => {
    const image = await openImage(store, cid)
    let level: TestImage = source
    for (let index = 0; index < image.manifest.levels.length; index++) {
      for (const [what, region] of regionTable(level.width, level.height, tileSize)) {
        const got = await collect(image.reader.bands(region, { level: index }))
        expect(Buffer.compare(got, naiveCrop(level, region)), `level ${index}, ${what}`).toBe(0)
      }
      level = naiveHalve(level)
    }
  })

  it('verifies every reachable block', async () => {
    const result = await verifyImage(store, cid)
    expect(result.problems).toEqual([])
    // root + 3 levels' index rows (3 + 2 + 1) + tiles (4x3 + 2x2 + 1x1)
    expect(result.blocks).toBe(1 + 6 + 17)
  })
})

describe('crop engine reads', () => {
  it('reads only the tiles and index blocks a region needs', async () => {
    const store = new MemoryBlockStore()
    const path = join(dir, 'stats.pam')
    await writePam(path, makeImage(200, 150, 3, 8))
    const { cid } = await importImage(store, path, { tileSize: 16, workers: 0 })
    const image = await openImage(store, cid)
    const stats = emptyStats()
    await collect(image.reader.bands({ x: 20, y: 33, width: 20, height: 3 }, { stats }))
    expect(stats).toMatchObject({ tilesRead: 2, indexBlocksRead: 1 })
    const aligned = emptyStats()
    await collect(image.reader.bands({ x: 32, y: 48, width: 16, height: 16 }, { stats: aligned }))
    expect(aligned).toMatchObject({ tilesRead: 1, indexBlocksRead: 1 })
  })

  it('fails on a corrupted tile with ERR_INTEGRITY', async () => {
    const store = new MemoryBlockStore()
    const path = join(dir, 'corrupt.pam')
    await writePam(path, makeImage(40, 40, 1, 8))
    const { cid } = await importImage(store, path, { tileSize: 16, workers: 0 })
    const image = await openImage(store, cid)
    const index = await image.reader.tileRow(0, 0)
    const key = Buffer.from(index.tiles[1]!.multihash.bytes).toString('base64')
    store.blocks.get(key)![3]! ^= 0x40
    await expect(collect(image.reader.bands({ x: 0, y: 0, width: 40, height: 5 }))).rejects.toMatchObject({ code: 'ERR_INTEGRITY' })
    expect((await verifyImage(store, cid)).problems.map((p) => p.code)).toEqual(['ERR_INTEGRITY'])
  })
})

describe('cropOutput, storedTile, manifestJson', () => {
  let store: MemoryBlockStore
  let cid: string
  beforeAll(async () => {
    store = new MemoryBlockStore()
    const path = join(dir, 'outputs.pam')
    await writePam(path, makeImage(70, 50, 4, 16, 9))
    cid = (await importImage(store, path, { tileSize: 16, workers: 0 })).cid.toString()
  })

  async function bytesOf(chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
    const parts: Uint8Array[] = []
    for await (const chunk of chunks) parts.push(chunk)
    return Buffer.concat(parts)
  }

  it.each([
    ['copied tiff', { x: 16, y: 32, width: 40, height: 18 }, { format: 'tiff' }, true],
    ['re-cut tiff', { x: 17, y: 32, width: 40, height: 18 }, { format: 'tiff' }, false],
    ['uncompressed tiff', { x: 16, y: 32, width: 40, height: 18 }, { format: 'tiff', compression: 'none' }, true],
    ['npy', { x: 3, y: 5, width: 7, height: 11 }, { format: 'npy' }, true],
    ['png', { x: 3, y: 5, width: 7, height: 11 }, { format: 'png' }, false],
    ['webp', { x: 3, y: 5, width: 7, height: 11 }, { format: 'webp' }, false],
  ] as const)('%s: its length is known up front exactly when promised, and its segments are its bytes', async (_, region, options, known) => {
    const image = await openImage(store, cid)
    const output = await cropOutput(image, region, options)
    const bytes = await bytesOf(output.bytes())
    expect(bytes.equals(await bytesOf(await cropImage(image, region, options)))).toBe(true)
    expect(output.length).toBe(known ? bytes.length : undefined)
    expect(output.format.name).toBe(options.format)
    if (output.segments !== undefined) {
      const parts = await Promise.all(output.segments.map((segment) => segment.read()))
      expect(Buffer.concat(parts).equals(bytes)).toBe(true)
      expect(parts.map((p) => p.length)).toEqual(output.segments.map((segment) => segment.length))
    }
  })

  it('validates before returning: format, compression, region, what the format holds', async () => {
    const image = await openImage(store, cid)
    const region = { x: 0, y: 0, width: 4, height: 4 }
    await expect(cropOutput(image, region, { format: 'gif' as 'png' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
    await expect(cropOutput(image, region, { format: 'png', compression: 'zstd' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
    await expect(cropOutput(image, region, { format: 'ppm' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
    await expect(cropOutput(image, { ...region, x: 69 }, {})).rejects.toMatchObject({ code: 'ERR_INVALID_REGION' })
    const clipped = await cropOutput(image, { ...region, x: 68 }, { clip: true, format: 'raw' })
    expect([clipped.region, clipped.length]).toEqual([{ x: 68, y: 0, width: 2, height: 4 }, 2 * 4 * 8])
    const whole = await cropOutput(image, undefined, { level: 0, format: 'raw' })
    expect(whole.region).toEqual({ x: 0, y: 0, width: 70, height: 50 })
  })

  it('gives a stored tile, its valid pixels and its payload; NotFoundError outside the grid', async () => {
    const image = await openImage(store, cid)
    const tile = await storedTile(image, { level: 0, column: 4, row: 3 })
    expect(tile.region).toEqual({ x: 64, y: 48, width: 6, height: 2 })
    const payload = await tile.read()
    expect(payload.length).toBe(tile.length)
    expect(Buffer.from(payload).equals(Buffer.from(await store.get(tile.cid)))).toBe(true)
    await expect(storedTile(image, { level: 0, column: 5, row: 0 })).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' })
    await expect(storedTile(image, { level: 1, column: 0, row: 0 })).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' })
  })

  it('gives the manifest in dag-json form, and refuses a dag-cbor block that is not an image root', async () => {
    const image = await openImage(store, cid)
    const json = (await manifestJson(image)) as { width: number; levels: Array<{ rows: unknown[] }> }
    expect(json.width).toBe(70)
    expect(json.levels[0]!.rows[0]).toEqual({ '/': image.manifest.levels[0]!.rows[0]!.toString() })
    await expect(openImage(store, image.manifest.levels[0]!.rows[0]!)).rejects.toMatchObject({ code: 'ERR_INVALID_CID' })
  })
})

describe('import', () => {
  it('gives identical pixels identical CIDs and adds no bytes the second time', async () => {
    const store = new MemoryBlockStore()
    const path = join(dir, 'twice.pam')
    await writePam(path, makeImage(70, 50, 3, 8))
    const first = await importImage(store, path, { tileSize: 16, workers: 0 })
    const bytes = await store.storedBytes()
    const second = await importImage(store, path, { tileSize: 16, workers: 2 })
    expect(second.cid.equals(first.cid)).toBe(true)
    expect(second.newBytes).toBe(0)
    expect(await store.storedBytes()).toBe(bytes)
  })

  it('stores identical tiles once', async () => {
    const store = new MemoryBlockStore()
    const path = join(dir, 'flat.pam')
    const flat = makeImage(64, 64, 1, 8)
    flat.data.fill(7)
    await writePam(path, flat)
    const { cid } = await importImage(store, path, { tileSize: 16, workers: 0 })
    const info = await imageInfo(await openImage(store, cid))
    expect(info.levels[0]!.tiles).toBe(16)
    expect(info.blocks).toBe(1 + 1 + 1) // root, one index block shared by the 4 identical rows, one tile
  })

  it('rejects bad parameters before touching the store', async () => {
    const store = new MemoryBlockStore()
    const path = join(dir, 'params.pam')
    await writePam(path, makeImage(10, 10, 1, 8))
    await expect(importImage(store, path, { tileSize: 100 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
    await expect(importImage(store, path, { maxPixels: 99 })).rejects.toMatchObject({ code: 'ERR_LIMIT' })
    expect(store.blocks.size).toBe(0)
  })
})

describe('openImage', () => {
  it('rejects malformed CIDs, raw CIDs and unknown images with their codes', async () => {
    const store = new MemoryBlockStore()
    await expect(openImage(store, 'not-a-cid')).rejects.toMatchObject({ code: 'ERR_INVALID_CID' })
    await expect(openImage(store, 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku')).rejects.toMatchObject({
      code: 'ERR_INVALID_CID',
    })
    await expect(openImage(store, 'bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku')).rejects.toMatchObject({
      code: 'ERR_NOT_FOUND',
    })
  })
})

describe('import limits', () => {
  it('refuses tile sizes whose payloads could exceed the 1 MiB block limit, and bad codec settings', async () => {
    const store = new MemoryBlockStore()
    const path = join(dir, 'limits.pam')
    await writePam(path, makeImage(20, 20, 4, 16))
    await expect(importImage(store, path, { tileSize: 512 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
    await expect(importImage(store, path, { zstdLevel: 0 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
    await expect(importImage(store, path, { zstdLevel: 23 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
    expect(store.blocks.size).toBe(0)
    const ok = await importImage(store, path, { tileSize: 352, workers: 0 })
    expect(ok.manifest.tileSize).toBe(352)
  })

  it('refuses an image too wide for one index block before compressing anything', async () => {
    const store = new MemoryBlockStore()
    const path = join(dir, 'wide.pam')
    await writePam(path, makeImage(400_000, 1, 1, 8))
    await expect(importImage(store, path, { tileSize: 16, workers: 0 })).rejects.toMatchObject({ code: 'ERR_LIMIT' })
    expect(store.blocks.size).toBe(0)
  })

  it('refuses a bad worker count', async () => {
    const store = new MemoryBlockStore()
    const path = join(dir, 'limits.pam')
    await expect(importImage(store, path, { workers: -1 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
    await expect(verifyImage(store, 'bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku')).rejects.toMatchObject({
      code: 'ERR_NOT_FOUND',
    })
  })
})
