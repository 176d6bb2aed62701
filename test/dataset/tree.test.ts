/**
 * The entry tree: one canonical shape per entry set whatever edits made it; look-ups,
 * prefix iteration, structural sharing between versions, the 1 MiB node limit.
 */
import { describe, expect, it } from 'vitest'
import type { DatasetEntry } from '../../src/dataset/interface.js'
import { compareNames } from '../../src/dataset/names.js'
import {
  buildTree,
  getEntry,
  iterateEntries,
  NodeCache,
  rank,
  type TreeChange,
  type TreeResult,
  treeNodes,
  updateTree,
} from '../../src/dataset/tree.js'
import { type Block, cidOf, DAG_CBOR, MAX_BLOCK_BYTES } from '../../src/format/block.js'
import { MemoryBlockStore } from '../../src/store/memory.js'
import { random } from '../helpers/random.js'

const image = cidOf(DAG_CBOR, new TextEncoder().encode('an image root'))

function entry(name: string, size = 1): DatasetEntry {
  return { name, image, size, mtime: 1_700_000_000_000 + size, sha256: new Uint8Array(32).fill(size & 0xff) }
}

function nameOf(i: number, pad = 0): string {
  return `dir${i % 7}/${'x'.repeat(pad)}file-${i.toString(36)}.png`
}

/** Writes every block put into the store, one transaction per build. */
async function withWriter(store: MemoryBlockStore, build: (put: (block: Block) => Promise<void>) => Promise<TreeResult>) {
  const writer = await store.begin()
  const written: Block[] = []
  const result = await build(async (block) => {
    written.push(block)
    await writer.put(block.cid, block.bytes)
  })
  await writer.commit()
  return { ...result, written }
}

function sorted(entries: Iterable<DatasetEntry>): DatasetEntry[] {
  return [...entries].sort((a, b) => compareNames(a.name, b.name))
}

describe('entry tree', () => {
  it('orders names by UTF-8 bytes, not UTF-16 code units', () => {
    // U+FF61 (3 UTF-8 bytes, EF BD A1) sorts before U+1F600 (F0 9F 98 80); code units say otherwise.
    expect(compareNames('\uff61', '\u{1f600}')).toBeLessThan(0)
    expect('\uff61' < '\u{1f600}').toBe(false)
    expect(compareNames('a', 'a/b')).toBeLessThan(0)
    expect(compareNames('a/b', 'a/b')).toBe(0)
  })

  // The format's 7 rank bits (128 items a node: 2 levels here) and 2 bits (4 a node: ~6 levels,
  // so whole subtrees are reused at every level).
  for (const bits of [7, 2]) {
    it(`has one shape per entry set, however the edits came (canonical), with look-ups and prefix listing (${bits} rank bits)`, async () => {
      const store = new MemoryBlockStore()
      const cache = new NodeCache(store)
      const next = random(5 + bits)
      const live = new Map<string, DatasetEntry>()
      let root: TreeResult = { root: undefined, count: 0 }
      // Rounds of random inserts, replacements and deletions, in batches of various sizes.
      for (let round = 0; round < 8; round++) {
        const batch = new Map<string, TreeChange>()
        const n = round === 0 ? 4000 : Math.floor(next() * 600) + 1
        for (let i = 0; i < n; i++) {
          const name = nameOf(Math.floor(next() * 9000))
          if (live.has(name) && next() < 0.4) batch.set(name, { name, entry: undefined })
          else batch.set(name, { name, entry: entry(name, Math.floor(next() * 1000)) })
        }
        const changes = [...batch.values()].sort((a, b) => compareNames(a.name, b.name))
        root = await withWriter(store, (put) => updateTree(cache, root.root, changes, put, { bits }))
        for (const change of changes) {
          if (change.entry === undefined) live.delete(change.name)
          else live.set(change.name, change.entry)
        }
        expect(root.count).toBe(live.size)
      }
      const fresh = await withWriter(new MemoryBlockStore(), (put) => buildTree(sorted(live.values()), put, { bits }))
      expect(root.root!.toString()).toBe(fresh.root!.toString())
      expect(root.count).toBe(fresh.count)

      const rootNode = await cache.load(root.root!)
      expect(rootNode.level).toBeGreaterThanOrEqual(bits === 7 ? 1 : 4)

      for (const [name, value] of [...live].slice(0, 500)) expect(await getEntry(cache, root.root, name)).toEqual(value)
      expect(await getEntry(cache, root.root, 'dir0/nope.png')).toBeUndefined()
      expect(await getEntry(cache, root.root, '')).toBeUndefined()
      expect(await getEntry(cache, root.root, '\u{10ffff}')).toBeUndefined()

      const all = sorted(live.values())
      const listed: DatasetEntry[] = []
      for await (const e of iterateEntries(cache, root.root)) listed.push(e)
      expect(listed.map((e) => e.name)).toEqual(all.map((e) => e.name))
      for (const prefix of ['dir3/', 'dir3/file-1', 'dir6/file-zz', 'dir9/', 'a']) {
        const names: string[] = []
        for await (const e of iterateEntries(cache, root.root, { prefix })) names.push(e.name)
        expect(names).toEqual(all.filter((e) => e.name.startsWith(prefix)).map((e) => e.name))
      }
    })
  }

  it('rewrites only the path of an edit: versions share the other nodes', async () => {
    const store = new MemoryBlockStore()
    const cache = new NodeCache(store)
    const entries = sorted(Array.from({ length: 20_000 }, (_, i) => entry(nameOf(i), i)))
    const base = await withWriter(store, (put) => buildTree(entries, put))
    const nodes = new Set<string>()
    for await (const cid of treeNodes(cache, base.root)) nodes.add(cid.toString())
    expect(nodes.size).toBeGreaterThan(100)
    const middle = entries[10_000]!.name
    const edited = await withWriter(store, (put) => updateTree(cache, base.root, [{ name: middle, entry: entry(middle, 77_777) }], put))
    // The changed leaf, its ancestors and the right edge, which is always re-chunked.
    const depth = (await cache.load(base.root!)).level + 1
    expect(edited.written.length).toBeLessThanOrEqual(2 * depth + 1)
    const fresh = await withWriter(new MemoryBlockStore(), (put) =>
      buildTree(
        entries.map((e) => (e.name === middle ? entry(middle, 77_777) : e)),
        put,
      ),
    )
    expect(edited.root!.toString()).toBe(fresh.root!.toString())
  })

  it('keeps every node under 1 MiB with long names (size splits), still canonical', async () => {
    const store = new MemoryBlockStore()
    const cache = new NodeCache(store)
    const next = random(9)
    // ~4 KiB names: about 250 fit in a node, against 128 on average by rank, so size splits happen.
    const names = Array.from({ length: 1500 }, (_, i) => nameOf(i, 3900))
    const all = sorted(names.map((name) => entry(name, 3)))
    const full = await withWriter(store, (put) => buildTree(all, put))
    for (const block of full.written) expect(block.bytes.length).toBeLessThanOrEqual(MAX_BLOCK_BYTES)
    expect(full.written.some((block) => block.bytes.length > 900_000)).toBe(true)
    // Delete a random third, in three batches; the result equals a fresh build.
    let root = full
    const kept = new Set(names)
    for (let batch = 0; batch < 3; batch++) {
      const gone = names.filter((name) => kept.has(name) && next() < 0.15)
      for (const name of gone) kept.delete(name)
      const changes = gone.sort(compareNames).map((name) => ({ name, entry: undefined }))
      root = await withWriter(store, (put) => updateTree(cache, root.root, changes, put))
    }
    const fresh = await withWriter(new MemoryBlockStore(), (put) => buildTree(sorted([...kept].map((name) => entry(name, 3))), put))
    expect(root.root!.toString()).toBe(fresh.root!.toString())
  })

  it('empties and refills', async () => {
    const store = new MemoryBlockStore()
    const cache = new NodeCache(store)
    const one = await withWriter(store, (put) => buildTree([entry('a.png')], put))
    expect(one.count).toBe(1)
    const none = await withWriter(store, (put) => updateTree(cache, one.root, [{ name: 'a.png', entry: undefined }], put))
    expect(none).toMatchObject({ root: undefined, count: 0 })
    const again = await withWriter(store, (put) => updateTree(cache, none.root, [{ name: 'a.png', entry: entry('a.png') }], put))
    expect(again.root!.toString()).toBe(one.root!.toString())
  })

  it('ranks names by leading zero bits of their sha2-256, 7 bits a level', () => {
    const counts = [0, 0, 0]
    for (let i = 0; i < 50_000; i++) counts[Math.min(2, rank(nameOf(i)))]!++
    // P(rank >= 1) = 1/128: about 390 of 50,000.
    expect(counts[1]! + counts[2]!).toBeGreaterThan(250)
    expect(counts[1]! + counts[2]!).toBeLessThan(550)
  })
})
