/**
 * Seeded sampling (spec/sample.md): the plan is deterministic and reproduced by the spec's
 * Python reference; every sample equals a naive crop of its source; bad batches fail by code
 * before any tile is read.
 */
import { execFileSync } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { CID } from '../src/format/block.js'
import type { Region } from '../src/format/interface.js'
import { importImage } from '../src/image.js'
import {
  openSampleBatch,
  planSamples,
  type RegionDecoder,
  type Sample,
  type SampleOptions,
  sampleCrops,
  shardThreads,
  writeSamples,
} from '../src/sample.js'
import type { AbortOptions } from '../src/store/interface.js'
import { MemoryBlockStore } from '../src/store/memory.js'
import { makeImage, naiveCrop, naiveHalve, type TestImage, writePam } from './helpers/oracle.js'

/** Counts the tile reads (getMany) that reach the store. */
class CountingStore extends MemoryBlockStore {
  tileReads = 0
  override async getMany(cids: readonly CID[], options?: AbortOptions): Promise<Uint8Array[]> {
    this.tileReads += cids.length
    return super.getMany(cids, options)
  }
}

const TILE = 32
const sources: Record<string, TestImage> = {
  a: makeImage(150, 100, 3, 8, 1),
  b: makeImage(90, 120, 3, 8, 2),
  small: makeImage(40, 30, 3, 8, 3),
  gray: makeImage(100, 100, 1, 8, 4),
  deep: makeImage(130, 70, 4, 16, 5),
}
const cids: Record<string, CID> = {}
let store: CountingStore
let dir: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-sample-'))
  store = new CountingStore()
  for (const [name, image] of Object.entries(sources)) {
    const path = join(dir, `${name}.pam`)
    await writePam(path, image)
    cids[name] = (await importImage(store, path, { tileSize: TILE, pyramid: true, workers: 0 })).cid
  }
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

async function chunks(bytes: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = []
  for await (const chunk of bytes) out.push(chunk)
  return out
}

async function collect(samples: AsyncIterable<Sample>): Promise<Sample[]> {
  const out: Sample[] = []
  for await (const sample of samples) out.push(sample)
  return out
}

/** The source image of a sample's CID, at the sample's level. */
function sourceOf(sample: Sample): TestImage {
  const name = Object.keys(cids).find((key) => cids[key]!.equals(sample.cid))!
  let image = sources[name]!
  for (let level = 0; level < sample.level; level++) image = naiveHalve(image)
  return image
}

function expectExact(samples: readonly Sample[]): void {
  for (const sample of samples) {
    expect(Buffer.compare(sample.data, naiveCrop(sourceOf(sample), sample.region)), `sample ${sample.index}`).toBe(0)
  }
}

describe('planSamples', () => {
  const images = [
    { width: 150, height: 100, tileSize: TILE },
    { width: 90, height: 120, tileSize: TILE },
  ]

  it('is deterministic: the same seed gives the same regions, another seed others', () => {
    const plan = (seed: number | string) => [...planSamples(images, { size: 24, count: 50, seed })]
    expect(plan(7)).toEqual(plan(7))
    expect(plan('run 7')).toEqual(plan('run 7'))
    expect(plan(8)).not.toEqual(plan(7))
    expect(plan('7')).not.toEqual(plan(7))
    expect(plan(7).map((p) => p.index)).toEqual([...Array(50).keys()])
  })

  it('keeps every region inside its image and draws from every image', () => {
    const plan = [...planSamples(images, { width: 40, height: 24, count: 400, seed: 3 })]
    for (const { image, region } of plan) {
      const { width, height } = images[image]!
      expect(region.width).toBe(40)
      expect(region.height).toBe(24)
      expect(region.x).toBeGreaterThanOrEqual(0)
      expect(region.y).toBeGreaterThanOrEqual(0)
      expect(region.x + 40).toBeLessThanOrEqual(width)
      expect(region.y + 24).toBeLessThanOrEqual(height)
    }
    expect(new Set(plan.map((p) => p.image))).toEqual(new Set([0, 1]))
    // Both extreme origins are reachable: x = 0 and x = width - 40 in image 0 (111 choices, 400 draws).
    const xs = new Set(plan.filter((p) => p.image === 0).map((p) => p.region.x))
    expect(xs.size).toBeGreaterThan(50)
  })

  it('puts origins on the tile grid with align', () => {
    const plan = [...planSamples(images, { size: 24, count: 200, seed: 11, align: true })]
    for (const { image, region } of plan) {
      expect(region.x % TILE).toBe(0)
      expect(region.y % TILE).toBe(0)
      expect(region.x + 24).toBeLessThanOrEqual(images[image]!.width)
      expect(region.y + 24).toBeLessThanOrEqual(images[image]!.height)
    }
    // Image 0 (150 wide) has origins 0, 32, 64, 96 for 24-wide samples, 0..96 across its grid; all appear.
    expect(new Set(plan.filter((p) => p.image === 0).map((p) => p.region.x))).toEqual(new Set([0, 32, 64, 96]))
  })

  it('draws the first samples independently of count', () => {
    const long = [...planSamples(images, { size: 10, count: 30, seed: 5 })]
    expect([...planSamples(images, { size: 10, count: 12, seed: 5 })]).toEqual(long.slice(0, 12))
  })

  it("matches the Python reference of spec/sample.md, and the spec's test vectors", async () => {
    const spec = await readFile(new URL('../spec/sample.md', import.meta.url), 'utf8')
    const python = /```python\n([\s\S]*?)```/.exec(spec)![1]!
    const table = [
      {
        images: [
          { width: 29566, height: 14321, tileSize: 256 },
          { width: 1000, height: 800, tileSize: 256 },
        ],
        size: 224,
        seed: 0,
      },
      {
        images: [
          { width: 29566, height: 14321, tileSize: 256 },
          { width: 1000, height: 800, tileSize: 256 },
        ],
        size: 224,
        seed: 42,
      },
      {
        images: [
          { width: 29566, height: 14321, tileSize: 256 },
          { width: 1000, height: 800, tileSize: 256 },
        ],
        size: 224,
        seed: 'tessera',
        align: true,
      },
      { images: [{ width: 7, height: 5, tileSize: 16 }], size: 5, seed: 2 ** 32 - 1 },
      { images: images, size: 16, seed: 'ünïcödé ✓', align: true },
      { images: [...images, images[0]!, { width: 3000, height: 17, tileSize: 16 }], size: 17, seed: '' },
      { images: [{ width: 100_000, height: 100_000, tileSize: 512 }], size: 1, seed: 123_456_789 },
    ]
    const script = `${python}
import json, sys
for case in json.loads(sys.stdin.read()):
    images = [(i["width"], i["height"], i["tileSize"]) for i in case["images"]]
    print(json.dumps(list(plan_samples(images, case["size"], case["size"], 100, case["seed"], case.get("align", False)))))
`
    const out = execFileSync('/usr/bin/python3', ['-c', script], { input: JSON.stringify(table) })
      .toString()
      .trim()
      .split('\n')
    expect(out).toHaveLength(table.length)
    table.forEach((c, i) => {
      const ours = [...planSamples(c.images, { size: c.size, count: 100, seed: c.seed, align: c.align ?? false })]
      expect(
        ours.map((p) => [p.index, p.image, p.region.x, p.region.y]),
        JSON.stringify(c.seed),
      ).toEqual(JSON.parse(out[i]!))
    })
    const vectors = spec.match(/^\| `[^`]*` \| (?:yes|no) \| .*$/gm)!
    expect(vectors).toHaveLength(3)
    for (const [i, row] of vectors.entries()) {
      const ours = [...planSamples(table[i]!.images, { size: 224, count: 3, seed: table[i]!.seed, align: table[i]!.align ?? false })]
      expect(row).toContain(ours.map((p) => `(${p.index}, ${p.image}, ${p.region.x}, ${p.region.y})`).join(', '))
    }
  })

  const invalid: Array<[string, () => unknown]> = [
    ['no images', () => planSamples([], { size: 1, count: 1, seed: 1 })],
    ['size 0', () => planSamples(images, { size: 0, count: 1, seed: 1 })],
    ['no size', () => planSamples(images, { count: 1, seed: 1 })],
    ['a fractional width', () => planSamples(images, { width: 1.5, height: 2, count: 1, seed: 1 })],
    ['count 0', () => planSamples(images, { size: 1, count: 0, seed: 1 })],
    ['a negative seed', () => planSamples(images, { size: 1, count: 1, seed: -1 })],
    ['a seed of 2^32', () => planSamples(images, { size: 1, count: 1, seed: 2 ** 32 })],
    ['a fractional seed', () => planSamples(images, { size: 1, count: 1, seed: 0.5 })],
    ['an image smaller than the samples', () => planSamples(images, { width: 100, height: 10, count: 1, seed: 1 })],
    ['align without a tile size', () => planSamples([{ width: 10, height: 10 }], { size: 1, count: 1, seed: 1, align: true })],
  ]
  for (const [what, call] of invalid) {
    it(`rejects ${what} with ERR_INVALID_ARGUMENT at call time`, () => {
      expect(call).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }))
    })
  }
})

describe('sampleCrops', () => {
  const both = () => [cids.a!, cids.b!.toString()]

  it('yields samples in index order, each equal to a naive crop of its source', async () => {
    const samples = await collect(sampleCrops(store, both(), { size: 24, count: 40, seed: 1 }))
    expect(samples.map((s) => s.index)).toEqual([...Array(40).keys()])
    expect(new Set(samples.map((s) => s.cid.toString()))).toEqual(new Set([cids.a!.toString(), cids.b!.toString()]))
    for (const s of samples) {
      expect(s.level).toBe(0)
      expect(s.format).toEqual({ colorModel: 'rgb', channels: 3, bitsPerSample: 8 })
      expect(s.data.length).toBe(24 * 24 * 3)
    }
    expectExact(samples)
  })

  it('splits a batch into shards that together give the whole batch, exactly', async () => {
    const whole = await collect(sampleCrops(store, both(), { size: 24, count: 41, seed: 5 }))
    const shards = await Promise.all(
      [0, 1, 2].map((index) => collect(sampleCrops(store, both(), { size: 24, count: 41, seed: 5, shard: { index, count: 3 } }))),
    )
    expect(shards.map((shard) => shard.length)).toEqual([14, 14, 13])
    for (const [index, shard] of shards.entries()) {
      expect(shard.map((s) => s.index)).toEqual(whole.filter((s) => s.index % 3 === index).map((s) => s.index))
      for (const sample of shard) expect(Buffer.compare(sample.data, whole[sample.index]!.data)).toBe(0)
    }
    const batch = await openSampleBatch(store, both(), { size: 24, count: 41, seed: 5, shard: { index: 2, count: 3 } })
    expect(batch.count).toBe(13)
    expect(() => sampleCrops(store, both(), { size: 24, count: 4, seed: 5, shard: { index: 3, count: 3 } })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
    )
  })

  it('crops exactly the regions planSamples draws', async () => {
    const samples = await collect(sampleCrops(store, both(), { width: 33, height: 17, count: 20, seed: 'x' }))
    const plan = [
      ...planSamples(
        [sources.a!, sources.b!].map((s) => ({ ...s, tileSize: TILE })),
        { width: 33, height: 17, count: 20, seed: 'x' },
      ),
    ]
    expect(samples.map((s) => [s.cid.toString(), s.region])).toEqual(plan.map((p) => [both()[p.image]!.toString(), p.region]))
  })

  it('gives the same bytes for the same seed, whatever the concurrency, and different bytes for another seed', async () => {
    const run = async (options: Partial<SampleOptions>) =>
      Buffer.concat((await collect(sampleCrops(store, both(), { size: 40, count: 25, seed: 9, ...options }))).map((s) => s.data))
    const one = await run({ concurrency: 1 })
    expect(Buffer.compare(one, await run({}))).toBe(0)
    expect(Buffer.compare(one, await run({ concurrency: 7 }))).toBe(0)
    expect(Buffer.compare(one, await run({ seed: 10 }))).not.toBe(0)
  })

  it('samples on the tile grid with align, a whole tile per sample when the size is the tile size', async () => {
    const before = store.tileReads
    const samples = await collect(sampleCrops(store, both(), { size: TILE, count: 30, seed: 4, align: true }))
    for (const s of samples) {
      expect(s.region.x % TILE).toBe(0)
      expect(s.region.y % TILE).toBe(0)
    }
    expect(store.tileReads - before).toBe(30)
    expectExact(samples)
  })

  it('samples a pyramid level', async () => {
    const samples = await collect(sampleCrops(store, both(), { size: 20, count: 20, seed: 2, level: 1 }))
    for (const s of samples) expect(s.level).toBe(1)
    expectExact(samples)
  })

  it('samples 16-bit RGBA exactly (little-endian) and samples within one tile row or across two', async () => {
    const samples = await collect(sampleCrops(store, [cids.deep!], { width: 50, height: 40, count: 30, seed: 6 }))
    expect(samples[0]!.format).toEqual({ colorModel: 'rgba', channels: 4, bitsPerSample: 16 })
    expect(samples[0]!.data.length).toBe(50 * 40 * 8)
    expectExact(samples)
  })

  it('samples an image as large as the samples: always the whole image', async () => {
    const samples = await collect(sampleCrops(store, [cids.small!], { width: 40, height: 30, count: 3, seed: 1 }))
    for (const s of samples) expect(s.region).toEqual({ x: 0, y: 0, width: 40, height: 30 })
    expectExact(samples)
  })

  it('decodes through an injected decoder (such as a DecodePool), in index order, exactly', async () => {
    const calls: Region[] = []
    const decoder: RegionDecoder = {
      async read(reader, region, options) {
        calls.push(region)
        // Finish out of order: later samples first, so only the window keeps the index order.
        await new Promise((resolve) => setTimeout(resolve, 20 - (calls.length % 5) * 4))
        const parts: Uint8Array[] = []
        for await (const band of reader.bands(region, options)) parts.push(band.data)
        return new Uint8Array(Buffer.concat(parts))
      },
    }
    const samples = await collect(sampleCrops(store, both(), { size: 40, count: 12, seed: 8, level: 0, decoder, concurrency: 5 }))
    expect(calls).toHaveLength(12)
    expect(samples.map((s) => s.index)).toEqual([...Array(12).keys()])
    expect(samples.map((s) => s.region)).toEqual(calls)
    expectExact(samples)
  })

  it('stops cleanly when the consumer stops early', async () => {
    const got: number[] = []
    for await (const s of sampleCrops(store, both(), { size: 24, count: 1000, seed: 1, concurrency: 8 })) {
      got.push(s.index)
      if (got.length === 3) break
    }
    expect(got).toEqual([0, 1, 2])
  })

  it('is cancelled through its signal', async () => {
    const controller = new AbortController()
    const samples = sampleCrops(store, both(), { size: 24, count: 100, seed: 1, signal: controller.signal })
    const seen: number[] = []
    await expect(
      (async () => {
        for await (const s of samples) {
          seen.push(s.index)
          if (s.index === 1) controller.abort()
        }
      })(),
    ).rejects.toMatchObject({ name: 'AbortError' })
    expect(seen).toEqual([0, 1])
  })

  const failures: Array<[string, () => Array<CID | string>, Partial<SampleOptions>, string]> = [
    ['an image smaller than the samples', () => [cids.a!, cids.small!], { size: 35 }, 'ERR_INVALID_ARGUMENT'],
    ['an image smaller than the samples at the level', () => [cids.a!], { size: 60, level: 1 }, 'ERR_INVALID_ARGUMENT'],
    ['mixed pixel formats', () => [cids.a!, cids.gray!], { size: 8 }, 'ERR_INVALID_ARGUMENT'],
    ['mixed bit depths', () => [cids.deep!, cids.a!], { size: 8 }, 'ERR_INVALID_ARGUMENT'],
    ['a level an image lacks', () => [cids.a!], { size: 1, level: 9 }, 'ERR_INVALID_ARGUMENT'],
    ['a bad CID', () => ['bafy-nope'], { size: 1 }, 'ERR_INVALID_CID'],
    [
      'a tile CID instead of an image',
      () => ['bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'],
      { size: 1 },
      'ERR_INVALID_CID',
    ],
    ['an unknown image', () => ['bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'], { size: 1 }, 'ERR_NOT_FOUND'],
    ['a concurrency of 0', () => [cids.a!], { size: 1, concurrency: 0 }, 'ERR_INVALID_ARGUMENT'],
    ['a negative level', () => [cids.a!], { size: 1, level: -1 }, 'ERR_INVALID_ARGUMENT'],
  ]
  for (const [what, images, options, code] of failures) {
    it(`fails on ${what} with ${code} before reading any tile`, async () => {
      const before = store.tileReads
      await expect(collect(sampleCrops(store, images(), { count: 5, seed: 1, ...options } as SampleOptions))).rejects.toMatchObject({
        code,
      })
      expect(store.tileReads).toBe(before)
    })
  }

  it('rejects bad options at call time', () => {
    expect(() => sampleCrops(store, [], { size: 1, count: 1, seed: 1 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }))
    expect(() => sampleCrops(store, [cids.a!], { size: 1, count: 1.5, seed: 1 })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
    )
    expect(() => sampleCrops(store, [cids.a!], { size: -4, count: 1, seed: 1 })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
    )
  })
})

describe('shardThreads', () => {
  it('gives a shard process its share of the cores, and none when that is one core or less', () => {
    // Alone: one per core, at most 8.
    expect(shardThreads(1, 1)).toBe(1)
    expect(shardThreads(1, 2)).toBe(2)
    expect(shardThreads(1, 32)).toBe(8)
    expect(shardThreads(2, 8)).toBe(4)
    expect(shardThreads(3, 8)).toBe(2)
    expect(shardThreads(4, 8)).toBe(2)
    expect(shardThreads(5, 8)).toBe(0)
    expect(shardThreads(2, 2)).toBe(0)
    expect(shardThreads(16, 2)).toBe(0)
    expect(shardThreads(2, 64)).toBe(8)
  })

  it('rejects a count of processes that is not a positive integer', () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      expect(() => shardThreads(bad, 4)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }))
    }
  })
})

describe('writeSamples', () => {
  it('writes one npy array (count, height, width, channels) that numpy reads exactly', async () => {
    const batch = await openSampleBatch(store, [cids.deep!], { width: 20, height: 10, count: 7, seed: 3 })
    const file = Buffer.concat(await chunks(writeSamples(batch, 'npy')))
    const path = join(dir, 'batch.npy')
    await writeFile(path, file)
    const info = execFileSync('/usr/bin/python3', [
      '-c',
      'import numpy,sys; a=numpy.load(sys.argv[1]); print(a.shape, a.dtype.str, a.flags.c_contiguous); sys.stdout.buffer.write(a.tobytes())',
      path,
    ])
    const newline = info.indexOf(10)
    expect(info.subarray(0, newline).toString()).toBe('(7, 10, 20, 4) <u2 True')
    const expected = Buffer.concat([...batch.plan()].map((p) => naiveCrop(sources.deep!, p.region)))
    expect(Buffer.compare(info.subarray(newline + 1), expected)).toBe(0)
    // The samples start on a 64-byte boundary, as numpy's own writer aligns them.
    expect((file.length - expected.length) % 64).toBe(0)
  })

  it('writes raw as the samples concatenated', async () => {
    const batch = await openSampleBatch(store, [cids.a!, cids.b!], { size: 16, count: 9, seed: 'raw' })
    const file = Buffer.concat(await chunks(writeSamples(batch, 'raw')))
    const expected = Buffer.concat([...batch.plan()].map((p) => naiveCrop(p.image === 0 ? sources.a! : sources.b!, p.region)))
    expect(Buffer.compare(file, expected)).toBe(0)
  })
})
