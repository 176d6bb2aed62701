/**
 * Repair (spec/store.md §8) and the damage it answers, on disk and in memory: a lost root log
 * (log/ and checkpoints/ deleted), a deleted or damaged pack index, a flipped bit in a section
 * length, in a block, a pack cut short. Each time: reads of everything intact go on, `verifyAll`
 * names the damage, gc refuses what it cannot explain, and repair brings back every intact
 * block, pin and dataset (crops exact against the oracle), reports exactly what is lost, and a
 * second run changes nothing.
 */
import { createHash } from 'node:crypto'
import { cp, mkdir, mkdtemp, readdir, readFile, rm, truncate, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { varint } from 'multiformats'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { datasetHead, listDatasets, resolveImage } from '../../src/dataset/dataset.js'
import { importDataset } from '../../src/dataset/import.js'
import { collectGarbage, verifyAll } from '../../src/dataset/maintenance.js'
import { repair } from '../../src/dataset/repair.js'
import { walkBlocks } from '../../src/dataset/walk.js'
import { type CID, RAW } from '../../src/format/block.js'
import { cropImage, importImage, openImage } from '../../src/image.js'
import type { BlockStore } from '../../src/store/interface.js'
import { indexKey, type ObjectBlockStore, openObjectStore, packKey } from '../../src/store/object-store.js'
import { MemoryDriver } from '../../src/store/objects/memory.js'
import { openStoreAt } from '../../src/store/open.js'
import { entryCid, type IndexEntry, PackIndex } from '../../src/store/pack-index.js'
import { scanPack } from '../../src/store/repair.js'
import { tiledImage, writeTiled } from '../dataset/images.js'
import { naiveCrop, type TestImage } from '../helpers/oracle.js'

let dir: string
let template: string

/** The images of the fixture store: two pinned, three in dataset `d` (two versions). Every tile differs. */
const PINNED: Record<string, TestImage> = {
  'a.pam': tiledImage(16, [
    [1, 2],
    [3, 4],
  ]),
  'b.pam': tiledImage(16, [
    [5, 6],
    [7, 8],
  ]),
}
const DATASET: Record<string, TestImage> = {
  'x.pam': tiledImage(16, [
    [9, 10],
    [11, 12],
  ]),
  'y.pam': tiledImage(16, [
    [13, 14],
    [15, 16],
  ]),
  'z.pam': tiledImage(16, [
    [17, 18],
    [19, 20],
  ]),
}

/** Imports the fixture into `store`; the pinned images' CIDs by file name. */
async function populate(store: BlockStore): Promise<Map<string, CID>> {
  const pinned = new Map<string, CID>()
  for (const name of Object.keys(PINNED)) {
    pinned.set(name, (await importImage(store, join(dir, 'src', name), { tileSize: 16, workers: 0 })).cid)
  }
  await importDataset(store, 'd', [join(dir, 'src/d/x.pam'), join(dir, 'src/d/y.pam')], { tileSize: 16, workers: 0 })
  await importDataset(store, 'd', [join(dir, 'src/d/z.pam')], { tileSize: 16, workers: 0 })
  return pinned
}

let pinnedCids: Map<string, CID>

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-repair-'))
  await mkdir(join(dir, 'src/d'), { recursive: true })
  for (const [name, image] of Object.entries(PINNED)) await writeTiled(join(dir, 'src', name), image)
  for (const [name, image] of Object.entries(DATASET)) await writeTiled(join(dir, 'src/d', name), image)
  template = join(dir, 'template')
  const store = await openStoreAt(template)
  try {
    pinnedCids = await populate(store)
  } finally {
    await store.close()
  }
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

let copies = 0
/** A fresh copy of the fixture store on disk. */
async function diskCopy(): Promise<string> {
  const path = join(dir, `store-${++copies}`)
  await cp(template, path, { recursive: true })
  return path
}

async function open(path: string): Promise<ObjectBlockStore> {
  return openStoreAt(path, { create: false })
}

async function crop(store: BlockStore, cid: CID): Promise<Buffer> {
  const image = await openImage(store, cid)
  const chunks: Uint8Array[] = []
  for await (const chunk of await cropImage(
    image,
    { x: 0, y: 0, width: image.manifest.width, height: image.manifest.height },
    { format: 'raw' },
  )) {
    chunks.push(chunk)
  }
  return Buffer.concat(chunks)
}

function full(image: TestImage): Buffer {
  return Buffer.from(naiveCrop(image, { x: 0, y: 0, width: image.width, height: image.height }))
}

/** Every pinned image and every image of dataset `d` crops exactly as the oracle says. */
async function expectWhole(store: BlockStore): Promise<void> {
  const pins = new Map<string, string>()
  for await (const pin of store.pins()) pins.set(pin.cid.toString(), pin.label)
  for (const [name, cid] of pinnedCids) {
    expect(pins.has(cid.toString()), name).toBe(true)
    expect((await crop(store, cid)).equals(full(PINNED[name]!)), name).toBe(true)
  }
  // The dataset's images are reached through it, not pinned.
  expect(pins.size).toBe(pinnedCids.size)
  const head = await datasetHead(store, 'd')
  expect(head?.version.count).toBe(3)
  expect(head?.version.previous).toBeDefined()
  for (const [name, image] of Object.entries(DATASET)) {
    expect((await crop(store, await resolveImage(store, `d/${name}`))).equals(full(image)), name).toBe(true)
  }
}

/** The packs of a disk store, with their indexes. */
async function packs(path: string): Promise<Array<{ name: string; index: PackIndex }>> {
  const names = (await readdir(join(path, 'packs'))).filter((file) => file.endsWith('.pack')).map((file) => file.slice(0, -5))
  const out = []
  for (const name of names.sort()) out.push({ name, index: new PackIndex(await readFile(join(path, indexKey(name)))) })
  return out
}

/** The pack holding `cid` and its entry. */
async function locate(path: string, cid: CID): Promise<{ name: string; entry: IndexEntry; index: PackIndex }> {
  for (const { name, index } of await packs(path)) {
    const i = index.find(cid.multihash.digest)
    if (i >= 0) return { name, entry: index.entry(i), index }
  }
  throw new Error(`${cid} is in no pack`)
}

/** The raw blocks (tiles) image `cid` reaches. */
async function tilesOf(store: BlockStore, cid: CID): Promise<CID[]> {
  const out: CID[] = []
  for await (const block of walkBlocks(store, [cid])) if (block.cid.code === RAW) out.push(block.cid)
  return out
}

async function flip(path: string, offset: number, mask = 0x01): Promise<void> {
  const bytes = await readFile(path)
  bytes[offset] = bytes[offset]! ^ mask
  await writeFile(path, bytes)
}

async function packFiles(path: string): Promise<string[]> {
  return (await readdir(join(path, 'packs'))).filter((file) => file.endsWith('.pack')).sort()
}

describe('a lost root log', () => {
  it('on disk: verify reports it, gc refuses, repair re-pins every image and re-creates the dataset', async () => {
    const path = await diskCopy()
    const before = await packFiles(path)
    await rm(join(path, 'log'), { recursive: true })
    await rm(join(path, 'checkpoints'), { recursive: true, force: true })
    const store = await open(path)
    try {
      const pins = []
      for await (const pin of store.pins()) pins.push(pin)
      expect(pins).toEqual([])
      const verified = await verifyAll(store)
      expect(verified.problems).toEqual([expect.objectContaining({ cid: 'log/', code: 'ERR_INTEGRITY' })])
      expect(verified.problems[0]!.message).toMatch(/tessera repair/)
      await expect(collectGarbage(store)).rejects.toMatchObject({ code: 'ERR_INTEGRITY', message: expect.stringMatching(/tessera repair/) })
      await expect(collectGarbage(store, { dryRun: true })).rejects.toMatchObject({ code: 'ERR_INTEGRITY' })
      expect(await packFiles(path)).toEqual(before)

      // A reader of its own (another process's view) reads while the repair runs: the image is
      // not there, then it is, exactly; never anything else.
      const reader = await open(path)
      const a = pinnedCids.get('a.pam')!
      let reading = true
      const reads = (async () => {
        let n = 0
        while (reading || n === 0) {
          try {
            expect((await crop(reader, a)).equals(full(PINNED['a.pam']!))).toBe(true)
          } catch (error) {
            expect((error as { code?: string }).code).toBe('ERR_NOT_FOUND')
          }
          n++
          await new Promise((resolve) => setImmediate(resolve))
        }
        return n
      })()
      const report = await repair(store).finally(() => {
        reading = false
      })
      expect(await reads).toBeGreaterThan(0)
      await reader.refresh()
      await expectWhole(reader)
      await reader.close()
      expect(report).toMatchObject({ logLost: true, lost: [], incomplete: [], indexesWritten: [], generation: 1 })
      expect([...report.recovered].sort()).toEqual(before.map((file) => file.slice(0, -5)))
      expect(report.pins.map((pin) => pin.cid).sort()).toEqual([...pinnedCids.values()].map(String).sort())
      expect(report.pins.every((pin) => pin.label === 'recovered')).toBe(true)
      expect(Object.keys(report.refs)).toEqual(['dataset/d'])
      await expectWhole(store)
      expect((await verifyAll(store)).problems).toEqual([])

      // Idempotent: the second run reads everything and changes nothing.
      const again = await repair(store)
      expect(again).toMatchObject({
        recovered: [],
        indexesWritten: [],
        pins: [],
        refs: {},
        lost: [],
        incomplete: [],
        generation: undefined,
      })
    } finally {
      await store.close()
    }
    // Another process sees it all, and gc now keeps everything.
    const other = await open(path)
    try {
      await expectWhole(other)
      await collectGarbage(other)
      await expectWhole(other)
      expect((await verifyAll(other)).problems).toEqual([])
    } finally {
      await other.close()
    }
  })

  it('in memory, the same', async () => {
    const driver = new MemoryDriver()
    const first = await openObjectStore(driver)
    // The same images give the same CIDs.
    expect(await populate(first)).toEqual(pinnedCids)
    for (const key of [...driver.objects.keys()]) if (key.startsWith('log/') || key.startsWith('checkpoints/')) driver.objects.delete(key)
    const store = await openObjectStore(driver, { create: false })
    expect((await verifyAll(store)).problems.map((p) => p.cid)).toEqual(['log/'])
    await expect(collectGarbage(store)).rejects.toMatchObject({ code: 'ERR_INTEGRITY' })
    const report = await repair(store)
    expect(report).toMatchObject({ logLost: true, lost: [], incomplete: [] })
    await expectWhole(store)
    expect((await verifyAll(store)).problems).toEqual([])
    expect((await repair(store)).generation).toBeUndefined()
  })

  it('an import after the loss, and a gc before the repair: nothing of the old packs is deleted, and both come back', async () => {
    const path = await diskCopy()
    const before = await packFiles(path)
    await rm(join(path, 'log'), { recursive: true })
    await rm(join(path, 'checkpoints'), { recursive: true, force: true })
    const store = await open(path)
    try {
      await writeTiled(
        join(dir, 'src/late.pam'),
        tiledImage(16, [
          [1, 21],
          [22, 23],
        ]),
      )
      const late = await importImage(store, join(dir, 'src/late.pam'), { tileSize: 16, workers: 0, label: 'late' })
      // A new dataset under the lost one's name: the recovered one comes back beside it.
      await importDataset(store, 'd', [join(dir, 'src/late.pam')], { tileSize: 16, workers: 0 })
      // The log names a pack again, so gc runs: it must not take the unexplained packs for garbage.
      const problems = (await verifyAll(store)).problems
      expect(problems.map((p) => p.cid).sort()).toEqual(before.map((file) => `packs/${file}`))
      await collectGarbage(store)
      for (const file of before) expect(await packFiles(path)).toContain(file)
      const report = await repair(store)
      expect(report).toMatchObject({ logLost: false, lost: [], incomplete: [] })
      expect(report.recovered.length).toBe(before.length)
      expect(report.pins.map((pin) => pin.cid).sort()).toEqual([...pinnedCids.values()].map(String).sort())
      const labels = new Map<string, string>()
      for await (const pin of store.pins()) labels.set(pin.cid.toString(), pin.label)
      expect(labels.get(late.cid.toString())).toBe('late')
      expect(Object.keys(report.refs)).toEqual(['dataset/d.recovered'])
      expect((await datasetHead(store, 'd'))?.version.count).toBe(1)
      expect((await datasetHead(store, 'd.recovered'))?.version.count).toBe(3)
      pinnedCids.set('late', late.cid)
      try {
        for (const [name, cid] of pinnedCids) if (name !== 'late') expect((await crop(store, cid)).equals(full(PINNED[name]!))).toBe(true)
        expect((await verifyAll(store)).problems).toEqual([])
      } finally {
        pinnedCids.delete('late')
      }
    } finally {
      await store.close()
    }
  })
  it('a log that lost its tail (records after the newest checkpoint): the packs they added come back, with their images', async () => {
    const { rawBlock } = await import('../../src/format/block.js')
    const path = join(dir, `store-${++copies}`)
    const store = await openStoreAt(path)
    try {
      for (let i = 0; i < 64; i++) {
        const writer = await store.begin()
        const block = rawBlock(new TextEncoder().encode(`block ${i}`))
        await writer.put(block.cid, block.bytes)
        writer.setRef(`raw/${i}`, block.cid)
        await writer.commit()
      }
      expect(await readdir(join(path, 'checkpoints'))).toEqual(['000000000064.json'])
      const a = await importImage(store, join(dir, 'src/a.pam'), { tileSize: 16, workers: 0 })
      expect(a.cid).toEqual(pinnedCids.get('a.pam'))
      await rm(join(path, 'log'), { recursive: true })
    } finally {
      await store.close()
    }
    const reopened = await open(path)
    try {
      expect(reopened.state.gen).toBe(64)
      const problems = (await verifyAll(reopened)).problems
      expect(problems).toEqual([expect.objectContaining({ code: 'ERR_INTEGRITY', message: expect.stringMatching(/No record/) })])
      const report = await repair(reopened)
      expect(report).toMatchObject({ logLost: false, lost: [], incomplete: [], generation: 65 })
      expect(report.recovered).toHaveLength(1)
      expect(report.pins).toEqual([{ cid: pinnedCids.get('a.pam')!.toString(), label: 'recovered' }])
      expect((await crop(reopened, pinnedCids.get('a.pam')!)).equals(full(PINNED['a.pam']!))).toBe(true)
      expect((await verifyAll(reopened)).problems).toEqual([])
    } finally {
      await reopened.close()
    }
  })
})

describe('pack indexes', () => {
  it('a deleted index: the store opens, reads go on, verify names it, gc refuses, repair writes it again byte for byte', async () => {
    const path = await diskCopy()
    const a = pinnedCids.get('a.pam')!
    const { name } = await locate(path, a)
    const original = await readFile(join(path, indexKey(name)))
    await unlink(join(path, indexKey(name)))
    const store = await open(path)
    try {
      expect((await crop(store, a)).equals(full(PINNED['a.pam']!))).toBe(true)
      const problems = (await verifyAll(store)).problems
      expect(problems).toEqual([expect.objectContaining({ cid: `packs/${name}.idx`, code: 'ERR_INTEGRITY' })])
      expect(problems[0]!.message).toMatch(/tessera repair/)
      await expect(collectGarbage(store)).rejects.toMatchObject({ code: 'ERR_INTEGRITY', message: expect.stringMatching(/tessera repair/) })
      const report = await repair(store)
      expect(report).toMatchObject({ indexesWritten: [name], recovered: [], lost: [], incomplete: [] })
      expect(report.packs.find((pack) => pack.name === name)).toMatchObject({ index: 'missing', indexWritten: true })
      expect((await readFile(join(path, indexKey(name)))).equals(original)).toBe(true)
      expect((await verifyAll(store)).problems).toEqual([])
      expect((await repair(store)).indexesWritten).toEqual([])
      await expectWhole(store)
    } finally {
      await store.close()
    }
  })

  it('a damaged index (its checksum fails): the same', async () => {
    const path = await diskCopy()
    const { name } = await locate(path, pinnedCids.get('b.pam')!)
    const original = await readFile(join(path, indexKey(name)))
    await flip(join(path, indexKey(name)), 1100)
    const store = await open(path)
    try {
      await expectWhole(store)
      expect((await verifyAll(store)).problems.map((p) => [p.cid, p.code])).toEqual([[`packs/${name}.idx`, 'ERR_INTEGRITY']])
      const report = await repair(store)
      expect(report.packs.find((pack) => pack.name === name)).toMatchObject({ index: 'damaged', indexWritten: true })
      expect((await readFile(join(path, indexKey(name)))).equals(original)).toBe(true)
      expect((await verifyAll(store)).problems).toEqual([])
    } finally {
      await store.close()
    }
  })
})

describe('damaged packs', () => {
  it('a flipped bit in a section length: nothing is lost, with or without the index', async () => {
    const path = await diskCopy()
    const a = pinnedCids.get('a.pam')!
    const store0 = await open(path)
    const tile = (await tilesOf(store0, a))[1]!
    await store0.close()
    const { name, entry, index } = await locate(path, tile)
    const lengthAt = entry.offset - tile.bytes.length - varint.encodingLength(tile.bytes.length + entry.length)
    await flip(join(path, packKey(name)), lengthAt)
    // The framing is damaged; the index is not: reads are unaffected and nothing is lost.
    const scanner = await open(path)
    const scan = await scanPack(scanner.driver, name)
    await scanner.close()
    expect(scan.entries.length).toBe(index.count)
    expect(scan.damage).toEqual([
      { offset: lengthAt, length: tile.bytes.length + entry.length + varint.encodingLength(tile.bytes.length + entry.length) },
    ])
    let store = await open(path)
    try {
      await expectWhole(store)
      const report = await repair(store)
      expect(report).toMatchObject({ indexesWritten: [], lost: [], incomplete: [] })
      expect(report.packs.find((pack) => pack.name === name)?.damage).toEqual(scan.damage)
    } finally {
      await store.close()
    }
    // Without its index, the pack's every block, the damaged section's included, is still found.
    await unlink(join(path, indexKey(name)))
    store = await open(path)
    try {
      await expectWhole(store)
      const report = await repair(store)
      expect(report).toMatchObject({ indexesWritten: [name], lost: [], incomplete: [] })
      expect(new PackIndex(await readFile(join(path, indexKey(name)))).count).toBe(index.count)
      expect((await verifyAll(store)).problems).toEqual([])
    } finally {
      await store.close()
    }
  })

  it('a flipped bit in a block: other blocks read, verify names it, repair reports exactly it lost; a re-import heals', async () => {
    const path = await diskCopy()
    const a = pinnedCids.get('a.pam')!
    let store = await open(path)
    const tiles = await tilesOf(store, a)
    await store.close()
    const bad = tiles[2]!
    const { name, entry } = await locate(path, bad)
    await flip(join(path, packKey(name)), entry.offset + Math.floor(entry.length / 2), 0x10)
    store = await open(path)
    try {
      await expect(store.get(bad)).rejects.toMatchObject({ code: 'ERR_INTEGRITY' })
      for (const other of tiles) if (!other.equals(bad)) await store.get(other)
      const problems = (await verifyAll(store)).problems
      expect(problems.map((p) => [p.cid, p.code])).toEqual([[bad.toString(), 'ERR_INTEGRITY']])
      const report = await repair(store)
      expect(report.lost).toEqual([bad.toString()])
      expect(report.incomplete).toEqual([{ cid: a.toString(), source: expect.stringMatching(/^pin /), missing: 1 }])
      expect(report.packs.find((pack) => pack.name === name)).toMatchObject({ index: 'wrong', indexWritten: true, lost: [bad.toString()] })
      // Now simply missing (not a wrong answer), and the second run changes nothing.
      await expect(store.get(bad)).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' })
      const again = await repair(store)
      expect(again).toMatchObject({ indexesWritten: [], recovered: [], lost: [bad.toString()] })
      // The tile is no longer taken for stored: importing the image again writes it.
      await importImage(store, join(dir, 'src/a.pam'), { tileSize: 16, workers: 0 })
      expect((await verifyAll(store)).problems).toEqual([])
      await expectWhole(store)
    } finally {
      await store.close()
    }
  })

  it('a pack cut short mid-section: the blocks before the cut read, repair reports exactly the ones after it', async () => {
    const path = await diskCopy()
    const { name, index } = await locate(path, pinnedCids.get('b.pam')!)
    const entries = [...index.entries()].sort((x, y) => x.offset - y.offset)
    const middle = entries[Math.floor(entries.length / 2)]!
    const cut = middle.offset + Math.floor(middle.length / 2)
    await truncate(join(path, packKey(name)), cut)
    const expected = entries.filter((e) => e.offset + e.length > cut).map((e) => entryCid(e).toString())
    const store = await open(path)
    try {
      for (const e of entries) {
        if (e.offset + e.length <= cut) await store.get(entryCid(e))
        else await expect(store.get(entryCid(e))).rejects.toMatchObject({ code: 'ERR_INTEGRITY' })
      }
      const problems = (await verifyAll(store)).problems
      expect(problems.length).toBeGreaterThan(0)
      const report = await repair(store)
      expect([...report.lost].sort()).toEqual(expected.sort())
      expect(report.incomplete.map((root) => root.cid)).toEqual([pinnedCids.get('b.pam')!.toString()])
      expect(report.packs.find((pack) => pack.name === name)).toMatchObject({ index: 'wrong', indexWritten: true })
      const after = new PackIndex(await readFile(join(path, indexKey(name))))
      expect(after.count).toBe(entries.length - expected.length)
      // The rest of the store is whole.
      expect((await crop(store, pinnedCids.get('a.pam')!)).equals(full(PINNED['a.pam']!))).toBe(true)
      expect((await repair(store)).indexesWritten).toEqual([])
    } finally {
      await store.close()
    }
  })

  it('a flipped bit in a block of a pack without its index: the damaged section names what is lost', async () => {
    const path = await diskCopy()
    const a = pinnedCids.get('a.pam')!
    let store = await open(path)
    const tiles = await tilesOf(store, a)
    await store.close()
    const bad = tiles[0]!
    const { name, entry, index } = await locate(path, bad)
    await flip(join(path, packKey(name)), entry.offset + 3, 0x80)
    await unlink(join(path, indexKey(name)))
    store = await open(path)
    try {
      // Every other block of the pack is found by reading it.
      for (const other of index.entries()) if (entry.offset !== other.offset) await store.get(entryCid(other))
      await expect(store.get(bad)).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' })
      const report = await repair(store)
      expect(report.lost).toEqual([bad.toString()])
      expect(report.packs.find((pack) => pack.name === name)).toMatchObject({
        index: 'missing',
        blocks: index.count - 1,
        lost: [bad.toString()],
      })
      expect(report.incomplete.map((root) => root.cid)).toEqual([a.toString()])
    } finally {
      await store.close()
    }
  })

  it('junk in packs/ and a killed first import are not a lost log: verify is clean, gc deletes the orphan', async () => {
    const path = join(dir, `store-${++copies}`)
    const store = await openStoreAt(path)
    try {
      // The pack of a first import killed before it committed: one intact section, its lease lapsed.
      const block = new TextEncoder().encode('half an import')
      const { rawBlock } = await import('../../src/format/block.js')
      const { cid } = rawBlock(block)
      const txn = '0000000000042-deadbeef'
      for (const sub of ['packs', 'txns']) await mkdir(join(path, sub), { recursive: true })
      const header = varint.encodeTo(cid.bytes.length + block.length, new Uint8Array(1))
      await writeFile(join(path, 'packs', `${txn}-1.pack`), Buffer.concat([header, cid.bytes, block]))
      await writeFile(join(path, 'txns', `${txn}.json`), JSON.stringify({ txn, base: 0, time: 42 }))
      await writeFile(join(path, 'packs', 'junk.pack'), Buffer.alloc(100, 7))
      expect((await verifyAll(store)).problems).toEqual([])
      const report = await repair(store)
      expect(report).toMatchObject({ logLost: false, recovered: [], lost: [], generation: undefined })
      expect(report.packs).toEqual([expect.objectContaining({ name: 'junk', status: 'empty', blocks: 0 })])
      expect(await collectGarbage(store)).toMatchObject({ orphanPacks: 1 })
      expect(await packFiles(path)).toEqual(['junk.pack'])
    } finally {
      await store.close()
    }
  })

  it('a dry run reports and changes nothing', async () => {
    const path = await diskCopy()
    const { name } = await locate(path, pinnedCids.get('a.pam')!)
    await unlink(join(path, indexKey(name)))
    await rm(join(path, 'log'), { recursive: true })
    await rm(join(path, 'checkpoints'), { recursive: true, force: true })
    const listing = async () => (await readdir(path, { recursive: true })).sort()
    const before = await listing()
    const store = await open(path)
    try {
      const report = await repair(store, { dryRun: true })
      expect(report).toMatchObject({ dryRun: true, logLost: true, indexesWritten: [name], lost: [], incomplete: [], generation: undefined })
      expect(report.pins.length).toBe(pinnedCids.size)
      expect(Object.keys(report.refs)).toEqual(['dataset/d'])
      expect(await listing()).toEqual(before)
      const names = []
      for await (const head of listDatasets(store)) names.push(head.name)
      expect(names).toEqual([])
    } finally {
      await store.close()
    }
  })
})

describe('scanPack, fuzzed', () => {
  /** A seeded xorshift generator. */
  function random(seed: number): () => number {
    let x = seed >>> 0 || 1
    return () => {
      x ^= x << 13
      x >>>= 0
      x ^= x >>> 17
      x ^= x << 5
      x >>>= 0
      return x / 2 ** 32
    }
  }

  it('200 seeded packs with flipped bytes and cut ends: every untouched section, and every one with only its length damaged, is recovered; nothing wrong ever is', async () => {
    const { rawBlock, cborBlock } = await import('../../src/format/block.js')
    for (let seed = 1; seed <= 200; seed++) {
      const next = random(seed)
      const sections: Array<{ start: number; cidAt: number; blockAt: number; end: number; digest: string }> = []
      const parts: Uint8Array[] = []
      let size = 0
      for (let i = 0; i < 20; i++) {
        const length = 3 + Math.floor(next() ** 3 * 3000)
        const bytes = new Uint8Array(length)
        for (let j = 0; j < length; j++) bytes[j] = Math.floor(next() * 256)
        // Distinct blocks: equal bytes would be one block at two places.
        bytes.set([i, seed & 0xff, seed >> 8], 0)
        const block = next() < 0.2 ? cborBlock({ seed, i, pad: bytes.subarray(0, 100) }) : rawBlock(bytes)
        const header = varint.encodeTo(block.cid.bytes.length + block.bytes.length, new Uint8Array(10))
        const head = header.subarray(0, varint.encodingLength(block.cid.bytes.length + block.bytes.length))
        sections.push({
          start: size,
          cidAt: size + head.length,
          blockAt: size + head.length + block.cid.bytes.length,
          end: size + head.length + block.cid.bytes.length + block.bytes.length,
          digest: Buffer.from(block.cid.multihash.digest).toString('hex'),
        })
        parts.push(head, block.cid.bytes, block.bytes)
        size = sections.at(-1)!.end
      }
      const pack = Buffer.concat(parts)
      const touched = new Set<number>()
      const damage = 1 + Math.floor(next() * 4)
      for (let d = 0; d < damage; d++) {
        // Half the flips hit a section length (the hard case), the rest anywhere.
        const s = sections[Math.floor(next() * sections.length)]!
        const at = next() < 0.5 ? s.start + Math.floor(next() * (s.cidAt - s.start)) : Math.floor(next() * pack.length)
        pack[at] = pack[at]! ^ (1 << Math.floor(next() * 8))
        touched.add(at)
      }
      const cut = next() < 0.2 ? Math.floor(pack.length * (0.5 + next() / 2)) : pack.length
      const driver = new MemoryDriver()
      await driver.put(packKey('P-1'), pack.subarray(0, cut))
      const scan = await scanPack(driver, 'P-1')
      const found = new Map(scan.entries.map((entry) => [Buffer.from(entry.digest).toString('hex'), entry]))
      const hit = (from: number, to: number) => to > cut || [...touched].some((t) => t >= from && t < to)
      for (const [i, s] of sections.entries()) {
        const entry = found.get(s.digest)
        if (entry !== undefined) expect(entry.offset, `seed ${seed} section ${i}`).toBe(s.blockAt)
        const nextSection = sections[i + 1]
        const bodyIntact = !hit(s.cidAt, s.end)
        const followed =
          nextSection === undefined ? s.end === cut : nextSection.cidAt + 36 <= cut && !hit(nextSection.start, nextSection.cidAt + 36)
        if (bodyIntact && (!hit(s.start, s.cidAt) || followed)) expect(entry, `seed ${seed} section ${i}`).toBeDefined()
      }
      for (const entry of scan.entries) {
        const bytes = pack.subarray(entry.offset, entry.offset + entry.length)
        expect(createHash('sha256').update(bytes).digest().equals(Buffer.from(entry.digest))).toBe(true)
      }
      for (const cid of scan.damagedCids) expect(found.has(Buffer.from(cid.multihash.digest).toString('hex'))).toBe(false)
    }
  })
})
