/**
 * Delta tiles end to end (spec/format.md §6.1): series of frames that differ by small
 * patches, imported in order with one DeltaContext, then every crop of every frame at every
 * level checked against the naive oracle, through each decode path (in-thread bands, the
 * tile cache, the DecodePool inline and on threads), plus verify, tile-aligned TIFF and the
 * manifest's version.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { exportCar } from '../../src/car/export.js'
import { DecodePool } from '../../src/crop/decode-pool.js'
import { TileCache } from '../../src/crop/tile-cache.js'
import type { CID } from '../../src/format/block.js'
import type { Region } from '../../src/format/interface.js'
import { DELTA_FORMAT_VERSION, decodeTileRow, FORMAT_VERSION } from '../../src/format/manifest.js'
import { type BlockStore, cropImage, importImage, openImage, openStore, verifyImage } from '../../src/image.js'
import { DeltaContext } from '../../src/import/delta.js'
import { cropStream } from '../../src/stream/index.js'
import { frameOf } from '../helpers/frames.js'
import { makeImage, naiveCrop, naiveHalve, type TestImage, writePam } from '../helpers/oracle.js'

let dir: string
let store: BlockStore
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-delta-'))
  store = await openStore(join(dir, 'store'))
})
afterAll(async () => {
  await store.close()
  await rm(dir, { recursive: true, force: true })
})

function levelsOf(image: TestImage, count: number): TestImage[] {
  const levels = [image]
  while (levels.length < count) levels.push(naiveHalve(levels[levels.length - 1]!))
  return levels
}

function regionsOf(width: number, height: number, tileSize: number): Region[] {
  const regions: Region[] = [
    { x: 0, y: 0, width, height },
    { x: 0, y: 0, width: 1, height: 1 },
    { x: width - 1, y: height - 1, width: 1, height: 1 },
  ]
  if (width > tileSize + 8 && height > tileSize + 8) {
    regions.push({ x: tileSize - 5, y: tileSize - 3, width: 11, height: 9 })
    regions.push({ x: 3, y: tileSize, width: width - 4, height: height - tileSize })
  }
  return regions
}

async function bytesOf(chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = []
  for await (const chunk of chunks) parts.push(chunk)
  return Buffer.concat(parts)
}

async function readBands(store: BlockStore, cid: CID, region: Region, level: number, cache?: TileCache): Promise<Buffer> {
  const image = await openImage(store, cid)
  const parts: Uint8Array[] = []
  for await (const band of image.reader.bands(region, { level, ...(cache === undefined ? {} : { tileCache: cache }) }))
    parts.push(band.data)
  return Buffer.concat(parts)
}

/** Every tile row index of an image, with its refs. */
async function indexes(store: BlockStore, cid: CID) {
  const image = await openImage(store, cid)
  const rows = []
  for (let level = 0; level < image.manifest.levels.length; level++) {
    const { entry, columns } = image.reader.level(level)
    for (const row of entry.rows) rows.push(decodeTileRow(await store.get(row), columns, image.manifest.tessera))
  }
  return rows
}

// Above compress.ts's PROBE_LEVEL, deltas are chosen at one level and written at another.
const FORMATS = [
  { channels: 1, bits: 8 as const, width: 70, height: 45, level: 3 },
  { channels: 3, bits: 8 as const, width: 100, height: 67, level: 3 },
  { channels: 3, bits: 8 as const, width: 100, height: 67, level: 9 },
  { channels: 4, bits: 16 as const, width: 49, height: 80, level: 3 },
  { channels: 2, bits: 8 as const, width: 64, height: 64, level: 3 },
]

describe.each(FORMATS)('$channels x $bits-bit frames, $width x $height, zstd level $level', ({
  channels,
  bits,
  width,
  height,
  level: zstdLevel,
}) => {
  const tileSize = 32
  const FRAMES = 4
  const base = makeImage(width, height, channels, bits, channels)
  const frames = Array.from({ length: FRAMES }, (_, k) => frameOf(base, k))
  const cids: CID[] = []
  const plainCids: CID[] = []

  beforeAll(async () => {
    const context = new DeltaContext()
    for (const [k, frame] of frames.entries()) {
      const path = join(dir, `frame-${channels}-${bits}-${zstdLevel}-${k}.pam`)
      await writePam(path, frame)
      const ticket = context.ticket()
      try {
        cids.push((await importImage(store, path, { tileSize, zstdLevel, pyramid: true, workers: k % 2, delta: ticket })).cid)
      } finally {
        ticket.end()
      }
      plainCids.push((await importImage(store, path, { tileSize, zstdLevel, pyramid: true, workers: 0 })).cid)
    }
  })

  it('stores later frames with delta tiles (version 2), and imports without a context plain (version 1)', async () => {
    for (const cid of cids.slice(1)) {
      expect((await openImage(store, cid)).manifest.tessera).toBe(DELTA_FORMAT_VERSION)
      let deltas = 0
      for (const row of await indexes(store, cid)) deltas += (row.refs ?? []).filter((ref) => ref !== null).length
      expect(deltas).toBeGreaterThan(0)
    }
    for (const cid of plainCids) {
      expect((await openImage(store, cid)).manifest.tessera).toBe(FORMAT_VERSION)
      for (const row of await indexes(store, cid)) expect(row.refs).toBeUndefined()
    }
  })

  it('crops every frame exactly at every level, in every decode path', async () => {
    const cache = new TileCache()
    const inline = new DecodePool(0)
    const threads = new DecodePool(1)
    const cachedPool = new DecodePool(1, { tileCache: new TileCache() })
    try {
      for (const [k, frame] of frames.entries()) {
        const image = await openImage(store, cids[k]!)
        const levels = levelsOf(frame, image.manifest.levels.length)
        for (const [level, truth] of levels.entries()) {
          for (const region of regionsOf(truth.width, truth.height, tileSize)) {
            const expected = Buffer.from(naiveCrop(truth, region))
            const what = `frame ${k} level ${level} ${JSON.stringify(region)}`
            expect(await readBands(store, cids[k]!, region, level), what).toEqual(expected)
            expect(await readBands(store, cids[k]!, region, level, cache), what).toEqual(expected)
            expect(Buffer.from(await inline.read(image.reader, region, { level })), what).toEqual(expected)
            expect(Buffer.from(await threads.read(image.reader, region, { level })), what).toEqual(expected)
            expect(Buffer.from(await cachedPool.read(image.reader, region, { level })), what).toEqual(expected)
          }
        }
      }
    } finally {
      await Promise.all([inline.close(), threads.close(), cachedPool.close()])
    }
  })

  it('verifies, and writes tile-aligned TIFF crops identical to those of the plain import', async () => {
    for (const [k, cid] of cids.entries()) {
      const result = await verifyImage(store, cid)
      expect(result.problems).toEqual([])
      const delta = await openImage(store, cid)
      const plain = await openImage(store, plainCids[k]!)
      const region = { x: 0, y: 0, width, height }
      const options = { format: 'tiff' as const }
      expect(await bytesOf(await cropImage(delta, region, options))).toEqual(await bytesOf(await cropImage(plain, region, options)))
    }
  })

  it('crops a delta frame exported as a CAR, streamed from a file and from a pipe', async () => {
    const k = FRAMES - 1
    const chunks: Uint8Array[] = []
    for await (const chunk of exportCar(store, cids[k]!)) chunks.push(chunk)
    const car = Buffer.concat(chunks)
    const path = join(dir, `frame-${channels}-${bits}.car`)
    await writeFile(path, car)
    const regions = regionsOf(width, height, tileSize)
    async function* pipe() {
      for (let at = 0; at < car.length; at += 333) yield car.subarray(at, at + 333)
    }
    for (const input of [path, pipe()]) {
      const crop = await cropStream(input, regions, { format: 'raw' })
      const outputs = await Promise.all(crop.outputs.map((output) => bytesOf(output.bytes())))
      for (const [i, region] of regions.entries()) {
        expect(outputs[i], JSON.stringify(region)).toEqual(Buffer.from(naiveCrop(frames[k]!, region)))
      }
    }
  })
})

describe('frames that switch back (earlier references)', () => {
  const tileSize = 32
  const a = makeImage(96, 64, 3, 8, 1)
  // Every sample inverted: nothing a delta against `a` could use, so `b` is stored plain.
  const b = { ...a, data: a.data.map((v) => 255 - v) }
  // A, B, then A changed a little, B again, A again: the third and fifth are close to the
  // first, whose tiles are no longer their positions' references.
  const frames = [a, b, frameOf(a, 2), b, a]
  const cids: CID[] = []

  beforeAll(async () => {
    const context = new DeltaContext()
    for (const [k, frame] of frames.entries()) {
      const path = join(dir, `switch-${k}.pam`)
      await writePam(path, frame)
      const ticket = context.ticket()
      try {
        cids.push((await importImage(store, path, { tileSize, workers: 1, delta: ticket })).cid)
      } finally {
        ticket.end()
      }
    }
  })

  it('stores a frame that switches back as deltas against, or as, the earlier tiles, and crops it exactly', async () => {
    // `b` replaced every reference: the third frame can only use `a`'s as earlier references.
    for (const row of await indexes(store, cids[1]!)) expect(row.refs).toBeUndefined()
    const first = new Set((await indexes(store, cids[0]!)).flatMap((row) => row.tiles.map(String)))
    const third = await indexes(store, cids[2]!)
    // Every tile of the third frame is one of the first frame's, or a delta against one.
    for (const row of third) {
      for (const [i, tile] of row.tiles.entries()) {
        const ref = row.refs?.[i] ?? null
        expect(first.has(ref === null ? tile.toString() : ref.toString())).toBe(true)
      }
    }
    expect(third.some((row) => (row.refs ?? []).some((ref) => ref !== null))).toBe(true)
    // The fourth and fifth are the second and first again: the same tiles (their roots differ
    // only by the file name they record).
    const tiles = async (k: number) => (await indexes(store, cids[k]!)).flatMap((row) => row.tiles.map(String))
    expect(await tiles(3)).toEqual(await tiles(1))
    expect(await tiles(4)).toEqual(await tiles(0))
    for (const [k, frame] of frames.entries()) {
      const region = { x: 0, y: 0, width: 96, height: 64 }
      expect(await readBands(store, cids[k]!, region, 0), `frame ${k}`).toEqual(Buffer.from(naiveCrop(frame, region)))
    }
  })
})
