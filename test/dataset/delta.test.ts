/**
 * Delta tiles in datasets (spec/format.md §6.1, spec/dataset.md §6): a directory of frames
 * imported with the dataset defaults stores deltas, reports what it chose, keeps every frame
 * exact after its references' own entries are removed and collected, travels by CAR, is
 * accounted by `du`, and gives the same CIDs whatever the number of files at once.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { exportCar } from '../../src/car/export.js'
import { importCar } from '../../src/car/import.js'
import { datasetUsage } from '../../src/dataset/accounting.js'
import { datasetHead, pruneHistory, removeEntries } from '../../src/dataset/dataset.js'
import { importDataset } from '../../src/dataset/import.js'
import { collectGarbage, verifyAll } from '../../src/dataset/maintenance.js'
import { iterateEntries, NodeCache } from '../../src/dataset/tree.js'
import { CID } from '../../src/format/block.js'
import { DELTA_FORMAT_VERSION, decodeTileRow } from '../../src/format/manifest.js'
import { type BlockStore, cropImage, openImage, openStore } from '../../src/image.js'
import { DATASET_DEFAULTS } from '../../src/import/options.js'
import { frameOf } from '../helpers/frames.js'
import { makeImage, naiveCrop, naiveHalve, type TestImage, writePam } from '../helpers/oracle.js'

const FRAMES = 6
const base = makeImage(300, 200, 3, 8, 5)
const frames = Array.from({ length: FRAMES }, (_, k) => frameOf(base, k))
const name = (k: number) => `frame-${k}.pam`

let dir: string
let src: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-dsdelta-'))
  src = join(dir, 'src')
  await mkdir(src)
  for (const [k, frame] of frames.entries()) await writePam(join(src, name(k)), frame)
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

async function entries(store: BlockStore, dataset: string): Promise<Map<string, CID>> {
  const head = await datasetHead(store, dataset)
  const out = new Map<string, CID>()
  for await (const entry of iterateEntries(new NodeCache(store), head?.version.entries)) out.set(entry.name, entry.image)
  return out
}

async function raw(store: BlockStore, cid: CID, region = { x: 0, y: 0, width: 300, height: 200 }, level = 0): Promise<Buffer> {
  const image = await openImage(store, cid)
  const chunks: Uint8Array[] = []
  for await (const chunk of await cropImage(image, region, { format: 'raw', level })) chunks.push(chunk)
  return Buffer.concat(chunks)
}

async function expectExact(store: BlockStore, images: Map<string, CID>, only?: number[]): Promise<void> {
  for (const k of only ?? frames.map((_, i) => i)) {
    const truth: TestImage = frames[k]!
    const region = { x: 0, y: 0, width: truth.width, height: truth.height }
    expect(await raw(store, images.get(name(k))!), name(k)).toEqual(Buffer.from(naiveCrop(truth, region)))
  }
}

describe('dataset import with delta tiles', () => {
  it('uses the dataset defaults, says so, stores deltas and crops every frame exactly', async () => {
    const store = await openStore(join(dir, 'defaults'))
    try {
      const result = await importDataset(store, 'shots', [src])
      expect(result.settings).toEqual({
        tileSize: DATASET_DEFAULTS.tileSize,
        deltas: true,
        codec: { name: 'zstd', level: 'auto', predictor: 'auto' },
        defaulted: ['tileSize', 'deltas', 'zstdLevel', 'predictor'],
      })
      const images = await entries(store, 'shots')
      const manifest = (await openImage(store, images.get(name(FRAMES - 1))!)).manifest
      expect(manifest.tileSize).toBe(DATASET_DEFAULTS.tileSize)
      expect(manifest.tessera).toBe(DELTA_FORMAT_VERSION)
      await expectExact(store, images)
    } finally {
      await store.close()
    }
  })

  it('gives the same CIDs with one file or several at once, and stores no delta when asked not to', async () => {
    const cids: string[][] = []
    for (const jobs of [1, 3]) {
      const store = await openStore(join(dir, `jobs-${jobs}`))
      try {
        await importDataset(store, 'shots', [src], { tileSize: 32, pyramid: true, jobs, workers: jobs - 1 })
        cids.push([...(await entries(store, 'shots')).values()].map(String))
      } finally {
        await store.close()
      }
    }
    expect(cids[1]).toEqual(cids[0])
    const store = await openStore(join(dir, 'no-deltas'))
    try {
      const result = await importDataset(store, 'shots', [src], { tileSize: 32, deltas: false })
      expect(result.settings).toEqual({
        tileSize: 32,
        deltas: false,
        codec: { name: 'zstd', level: 'auto', predictor: 'auto' },
        defaulted: ['zstdLevel', 'predictor'],
      })
      for (const cid of (await entries(store, 'shots')).values()) expect((await openImage(store, cid)).manifest.tessera).toBe(1)
    } finally {
      await store.close()
    }
  })

  it('keeps references through removal, pruning and gc; verify, du and CAR see them', async () => {
    const store = await openStore(join(dir, 'gc'))
    const target = await openStore(join(dir, 'car-target'))
    try {
      await importDataset(store, 'shots', [src], { tileSize: 32, pyramid: true })
      const images = await entries(store, 'shots')
      // Every reference of the last frame's deltas, found in its index blocks.
      const last = images.get(name(FRAMES - 1))!
      const image = await openImage(store, last)
      const refs = new Set<string>()
      for (let level = 0; level < image.manifest.levels.length; level++) {
        const { entry, columns } = image.reader.level(level)
        for (const row of entry.rows) {
          for (const ref of decodeTileRow(await store.get(row), columns, image.manifest.tessera).refs ?? []) {
            if (ref !== null) refs.add(ref.toString())
          }
        }
      }
      expect(refs.size).toBeGreaterThan(0)

      const usage = await datasetUsage(store, (await datasetHead(store, 'shots'))!)
      expect(usage.deltaTiles).toBeGreaterThan(0)
      expect(usage.plainTiles + usage.deltaTiles).toBe(usage.uniqueTiles)
      expect(usage.deltaSavedBytes).toBeGreaterThan(0)

      // The first frames (where the references come from) leave the dataset and its history.
      await removeEntries(store, 'shots', [name(0), name(1), name(2)])
      await pruneHistory(store, 'shots', 1)
      const collected = await collectGarbage(store)
      // Something went (the removed frames' own tiles), the references stayed.
      expect(collected.deletedBlocks).toBeGreaterThan(0)
      for (const ref of refs) expect(await store.has(CID.parse(ref))).toBe(true)
      expect((await verifyAll(store)).problems).toEqual([])
      await expectExact(store, images, [3, 4, 5])
      const level2 = naiveHalve(naiveHalve(frames[FRAMES - 1]!))
      const region = { x: 0, y: 0, width: level2.width, height: level2.height }
      expect(await raw(store, last, region, 2)).toEqual(Buffer.from(naiveCrop(level2, region)))

      // One frame alone by CAR into an empty store: its references come along.
      const chunks: Uint8Array[] = []
      for await (const chunk of exportCar(store, last)) chunks.push(chunk)
      async function* car() {
        yield Buffer.concat(chunks)
      }
      await importCar(target, car())
      expect(await raw(target, last)).toEqual(await raw(store, last))
      expect((await verifyAll(target)).problems).toEqual([])
    } finally {
      await Promise.all([store.close(), target.close()])
    }
  })
})
