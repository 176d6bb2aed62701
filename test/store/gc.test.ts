/**
 * Garbage collection: exactly the unreachable blocks go (pins, dataset heads with their
 * history, other references are roots; image provenance links are weak), the space comes
 * back (partially dead packs rewritten, dead and orphan packs deleted), and a missing or
 * damaged block stops a collection with the store consistent.
 */
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { history, pruneHistory, removeDataset, removeEntries } from '../../src/dataset/dataset.js'
import { importDataset } from '../../src/dataset/import.js'
import { collectGarbage, verifyAll } from '../../src/dataset/maintenance.js'
import { iterateEntries, NodeCache, treeNodes } from '../../src/dataset/tree.js'
import { type CID, rawBlock } from '../../src/format/block.js'
import { decodeManifest, decodeTileRow } from '../../src/format/manifest.js'
import { cropImage, importImage, openImage } from '../../src/image.js'
import type { BlockStore } from '../../src/store/interface.js'
import { MemoryBlockStore } from '../../src/store/memory.js'
import type { ObjectBlockStore as PackStore } from '../../src/store/object-store.js'
import { openStoreAt as openPackStore } from '../../src/store/open.js'
import { entryCid } from '../../src/store/pack-index.js'
import { tiledImage, writeTiled } from '../dataset/images.js'

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-gc-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** Every block of an image, from its manifest (independently of the collector's walk). */
async function imageBlocks(store: BlockStore, image: CID, into: Set<string>): Promise<void> {
  into.add(image.toString())
  const manifest = decodeManifest(await store.get(image))
  if (manifest.metadata.icc) into.add(manifest.metadata.icc.toString())
  for (const level of manifest.levels) {
    for (const row of level.rows) {
      into.add(row.toString())
      for (const tile of decodeTileRow(await store.get(row), Math.ceil(level.width / manifest.tileSize)).tiles) into.add(tile.toString())
    }
  }
}

/** Every block of a dataset: each version, its tree nodes and its images. */
async function datasetBlocks(store: BlockStore, head: CID, into: Set<string>): Promise<void> {
  const cache = new NodeCache(store)
  for await (const { cid, version } of history(store, head)) {
    into.add(cid.toString())
    for await (const node of treeNodes(cache, version.entries)) into.add(node.toString())
    for await (const entry of iterateEntries(cache, version.entries)) await imageBlocks(store, entry.image, into)
  }
}

/** The CIDs of every block the live packs' indexes name. */
async function storedBlocks(store: PackStore): Promise<Set<string>> {
  const all = new Set<string>()
  for (const name of store.state.packs.keys()) {
    for (const entry of (await store.readIndex(name)).entries()) all.add(entryCid(entry).toString())
  }
  return all
}

/** The pack files in the store's directory. */
async function packFiles(store: PackStore): Promise<string[]> {
  return (await readdir(join(store.location, 'packs'))).filter((name) => name.endsWith('.pack')).sort()
}

async function pam(name: string, seeds: number[][]): Promise<string> {
  const path = join(dir, 'src', name)
  await writeTiled(path, tiledImage(16, seeds))
  return path
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

describe('garbage collection', () => {
  it('deletes exactly what no root reaches: pins, dataset heads with history, references; weak provenance links', async () => {
    await import('node:fs/promises').then((fs) => fs.mkdir(join(dir, 'src', 'd'), { recursive: true }))
    const store = await openPackStore(join(dir, 'store'))
    try {
      // A pinned image, with a provenance link to another pinned image.
      const base = await importImage(store, await pam('base.pam', [[1, 2, 3]]), { tileSize: 16, workers: 0 })
      const pinned = await importImage(store, await pam('pinned.pam', [[1, 4, 5]]), { tileSize: 16, workers: 0, derivedFrom: base.cid })
      // A dataset of three images (shared tiles), then one removed: still in its history.
      await writeTiled(
        join(dir, 'src/d/a.pam'),
        tiledImage(16, [
          [1, 6],
          [7, 8],
        ]),
      )
      await writeTiled(
        join(dir, 'src/d/b.pam'),
        tiledImage(16, [
          [6, 9],
          [10, 11],
        ]),
      )
      await writeTiled(
        join(dir, 'src/d/c.pam'),
        tiledImage(16, [
          [12, 13],
          [14, 15],
        ]),
      )
      await importDataset(store, 'keep', [join(dir, 'src/d')], { tileSize: 16 })
      await removeEntries(store, 'keep', ['c.pam'])
      // A second dataset, dropped: its own images are garbage, shared tiles are not.
      await writeTiled(
        join(dir, 'src/e.pam'),
        tiledImage(16, [
          [1, 16],
          [17, 18],
        ]),
      )
      await importDataset(store, 'gone', [join(dir, 'src/e.pam')], { tileSize: 16 })
      await removeDataset(store, 'gone')
      // A reference to a raw block; an unreferenced raw block; the base image unpinned (kept only weakly).
      const raw = rawBlock(new TextEncoder().encode('kept by a reference'))
      const loose = rawBlock(new TextEncoder().encode('kept by nothing'))
      const writer = await store.begin()
      await writer.put(raw.cid, raw.bytes)
      await writer.put(loose.cid, loose.bytes)
      writer.setRef('other/raw', raw.cid)
      writer.unpin(base.cid)
      await writer.commit()

      const before = await storedBlocks(store)
      const expected = new Set<string>([raw.cid.toString()])
      await imageBlocks(store, pinned.cid, expected)
      // derivedFrom is weak but present: kept (spec/dataset.md §8).
      await imageBlocks(store, base.cid, expected)
      await datasetBlocks(store, (await store.ref('dataset/keep'))!, expected)
      expect(before.size).toBeGreaterThan(expected.size)
      for (const cid of expected) expect(before.has(cid)).toBe(true)

      const result = await collectGarbage(store)
      const after = await storedBlocks(store)
      expect([...after].sort()).toEqual([...expected].sort())
      expect(result).toMatchObject({ roots: 3, keptBlocks: expected.size, deletedBlocks: before.size - expected.size })
      expect((await verifyAll(store)).problems).toEqual([])

      // Pruning the history turns c.pam's own blocks into garbage.
      const keepHead = (await store.ref('dataset/keep'))!
      const { head } = await pruneHistory(store, 'keep', 1)
      expect(head.equals(keepHead)).toBe(false)
      const pruned = new Set<string>([raw.cid.toString()])
      await imageBlocks(store, pinned.cid, pruned)
      await imageBlocks(store, base.cid, pruned)
      await datasetBlocks(store, head, pruned)
      await collectGarbage(store)
      expect([...(await storedBlocks(store))].sort()).toEqual([...pruned].sort())
      expect((await verifyAll(store)).problems).toEqual([])
    } finally {
      await store.close()
    }
  })

  it('gives the space back: rewrites partially dead packs, deletes dead and orphan packs; crops unchanged', async () => {
    await import('node:fs/promises').then((fs) => fs.mkdir(join(dir, 'src'), { recursive: true }))
    const store = await openPackStore(join(dir, 'store'))
    try {
      // Three images, one pack each; the first shares tiles 1 and 2 with the others.
      const a = await importImage(
        store,
        await pam('a.pam', [
          [1, 2, 3, 4],
          [5, 6, 7, 8],
        ]),
        { tileSize: 16, workers: 0 },
      )
      const b = await importImage(store, await pam('b.pam', [[1, 9, 10, 11]]), { tileSize: 16, workers: 0 })
      const c = await importImage(store, await pam('c.pam', [[2, 12, 13, 14]]), { tileSize: 16, workers: 0 })
      const cropsBefore = [await crop(store, b.cid), await crop(store, c.cid)]
      // An orphan pack (as a killed import leaves: its lease lapsed long ago) and an unpinned image.
      const dead = '0000000000042-deadbeef'
      await writeFile(join(store.location, 'packs', `${dead}-1.pack`), Buffer.alloc(5000, 7))
      await writeFile(join(store.location, 'txns', `${dead}.json`), JSON.stringify({ txn: dead, base: 0, time: 42 }))
      // A pack no record or lease explains is never deleted (a lost log must not cost the data).
      await writeFile(join(store.location, 'packs', 'unexplained.pack'), Buffer.alloc(100, 7))
      const writer = await store.begin()
      writer.unpin(a.cid)
      await writer.commit()
      const packsBefore = await packFiles(store)
      expect(packsBefore).toHaveLength(5)
      const [packA] = [...store.state.packs.keys()].sort()
      const bytesBefore = await store.storedBytes()

      const dry = await collectGarbage(store, { dryRun: true })
      expect(await store.storedBytes()).toBe(bytesBefore)
      expect(await packFiles(store)).toEqual(packsBefore)

      const result = await collectGarbage(store)
      expect(result).toMatchObject({ packsRewritten: 1, packsDeleted: 1, orphanPacks: 1 })
      expect(result.deletedBlocks).toBe(dry.deletedBlocks)
      // a's pack: rewritten with only tiles 1 and 2 into a new pack.
      const packsAfter = await packFiles(store)
      expect(packsAfter).toHaveLength(4)
      expect(packsAfter).not.toContain(`${packA}.pack`)
      expect(packsAfter).not.toContain(`${dead}-1.pack`)
      expect(packsAfter).toContain('unexplained.pack')
      expect(result.bytesAfter).toBe(await store.storedBytes())
      expect(result.bytesBefore - result.bytesAfter).toBeGreaterThanOrEqual(result.deletedBytes + 5000)
      expect(dry.bytesAfter).toBe(result.bytesAfter)
      expect(await store.has(a.cid)).toBe(false)
      expect([await crop(store, b.cid), await crop(store, c.cid)]).toEqual(cropsBefore)
      expect((await verifyAll(store)).problems).toEqual([])
      // Reopened, nothing refers to the old pack.
      await store.close()
      const again = await openPackStore(join(dir, 'store'))
      expect([await crop(again, b.cid), await crop(again, c.cid)]).toEqual(cropsBefore)
      await again.close()
    } finally {
      await store.close().catch(() => {})
    }
  })

  it('stops before deleting anything when a reachable block is missing', async () => {
    const store = new MemoryBlockStore()
    await import('node:fs/promises').then((fs) => fs.mkdir(join(dir, 'src'), { recursive: true }))
    const kept = await importImage(store, await pam('k.pam', [[1, 2]]), { tileSize: 16, workers: 0 })
    const loose = rawBlock(new TextEncoder().encode('garbage'))
    const writer = await store.begin()
    await writer.put(loose.cid, loose.bytes)
    await writer.commit()
    const manifest = decodeManifest(await store.get(kept.cid))
    store.blocks.delete(Buffer.from(manifest.levels[0]!.rows[0]!.multihash.bytes).toString('base64'))
    await expect(collectGarbage(store)).rejects.toMatchObject({ code: 'ERR_INTEGRITY' })
    expect(await store.has(loose.cid)).toBe(true)
  })

  it('stops on a damaged block in a pack it rewrites, leaving the store consistent', async () => {
    await import('node:fs/promises').then((fs) => fs.mkdir(join(dir, 'src'), { recursive: true }))
    const store = await openPackStore(join(dir, 'store'))
    try {
      const a = await importImage(store, await pam('a.pam', [[1, 2, 3]]), { tileSize: 16, workers: 0 })
      const b = await importImage(store, await pam('b.pam', [[1, 4, 5]]), { tileSize: 16, workers: 0 })
      const writer = await store.begin()
      writer.unpin(a.cid)
      await writer.commit()
      // Damage tile 1 (live: b uses it) in a's pack, which the collection must rewrite.
      const [packA] = [...store.state.packs.keys()].sort()
      const path = join(store.location, 'packs', `${packA}.pack`)
      const bytes = await readFile(path)
      const first = [...(await store.readIndex(packA!)).entries()].sort((x, y) => x.offset - y.offset)[0]!
      bytes[first.offset + 3]! ^= 0xff
      await writeFile(path, bytes)
      const packs = await packFiles(store)
      await expect(collectGarbage(store)).rejects.toMatchObject({ code: 'ERR_INTEGRITY' })
      expect(await packFiles(store)).toEqual(packs)
      const problems = (await verifyAll(store)).problems
      expect(problems.map((p) => [p.cid, p.code])).toEqual([[entryCid(first).toString(), 'ERR_INTEGRITY']])
      expect(await store.has(a.cid)).toBe(true)
      expect((await stat(path)).size).toBe(bytes.length)
      void b
    } finally {
      await store.close()
    }
  })
})
