/**
 * Dataset versions and names: commits, history (checkpoints replaced, not followed), removal,
 * pruning, name resolution (CID, NAME, NAME/path, VERSION-CID/path) and the validation of
 * dataset blocks (one case per rejection rule).
 */
import * as dagCbor from '@ipld/dag-cbor'
import { describe, expect, it } from 'vitest'
import { decodeNode, decodeVersion, encodeNode, encodeVersion } from '../../src/dataset/codec.js'
import {
  commitChanges,
  datasetHead,
  history,
  listDatasets,
  listDirectory,
  pruneHistory,
  removeDataset,
  removeEntries,
  resolveImage,
  resolveSpecifier,
  stageVersion,
} from '../../src/dataset/dataset.js'
import type { DatasetEntry } from '../../src/dataset/interface.js'
import { assertDatasetName, assertEntryName, parseSpecifier } from '../../src/dataset/names.js'
import { cidOf, DAG_CBOR, RAW } from '../../src/format/block.js'
import { MemoryBlockStore } from '../../src/store/memory.js'

const imageA = cidOf(DAG_CBOR, new TextEncoder().encode('image a'))
const imageB = cidOf(DAG_CBOR, new TextEncoder().encode('image b'))

function entry(name: string, image = imageA): DatasetEntry {
  return { name, image, size: 10, mtime: 1_000, sha256: new Uint8Array(32) }
}

const put = (...entries: DatasetEntry[]) =>
  entries.map((e) => ({ name: e.name, entry: e })).sort((a, b) => (Buffer.from(a.name) < Buffer.from(b.name) ? -1 : 1))

async function commit(store: MemoryBlockStore, name: string, changes: ReturnType<typeof put>, note = 'test') {
  return commitChanges(store, name, async () => changes, { note })
}

describe('dataset versions', () => {
  it('commits versions linked by previous; log lists them newest first', async () => {
    const store = new MemoryBlockStore()
    expect(await datasetHead(store, 'shots')).toBeUndefined()
    const one = await commit(store, 'shots', put(entry('a.png'), entry('dir/b.png')), 'first')
    const two = await commit(store, 'shots', put(entry('c.png', imageB)), 'second')
    const head = (await datasetHead(store, 'shots'))!
    expect(head.cid.equals(two.after!.cid)).toBe(true)
    expect(head.version).toMatchObject({ name: 'shots', count: 3, note: 'second', previous: one.after!.cid })
    const log = []
    for await (const { version } of history(store, head.cid)) log.push([version.note, version.count])
    expect(log).toEqual([
      ['second', 3],
      ['first', 2],
    ])
    // No change, no version.
    expect((await commitChanges(store, 'shots', async () => [], { note: 'nothing' })).after).toBeUndefined()
    const names = []
    for await (const d of listDatasets(store)) names.push(d.name)
    expect(names).toEqual(['shots'])
  })

  it('replaces a checkpoint with the next version instead of following it', async () => {
    const store = new MemoryBlockStore()
    const base = await commit(store, 'd', put(entry('a.png')), 'base')
    for (const name of ['b.png', 'c.png']) {
      const writer = await store.begin()
      const current = await datasetHead(store, 'd')
      await stageVersion(store, writer, 'd', current, put(entry(name)), { note: `checkpoint ${name}`, checkpoint: true })
      await writer.commit()
    }
    const checkpoint = (await datasetHead(store, 'd'))!
    expect(checkpoint.version).toMatchObject({ checkpoint: true, previous: base.after!.cid, count: 3 })
    await commit(store, 'd', put(entry('d.png')), 'done')
    const notes = []
    for await (const { version } of history(store, (await datasetHead(store, 'd'))!.cid)) notes.push(version.note)
    expect(notes).toEqual(['done', 'base'])
  })

  it('removes entries, directories (recursively) and whole datasets; prunes history', async () => {
    const store = new MemoryBlockStore()
    await commit(store, 'd', put(entry('a.png'), entry('x/1.png'), entry('x/2.png'), entry('x/y/3.png'), entry('xz.png')))
    await expect(removeEntries(store, 'd', ['x'])).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' })
    await expect(removeEntries(store, 'd', ['a.png', 'nope.png'])).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' })
    expect((await datasetHead(store, 'd'))!.version.count).toBe(5)
    expect(await removeEntries(store, 'd', ['x'], { recursive: true })).toEqual(['x/1.png', 'x/2.png', 'x/y/3.png'])
    expect(await removeEntries(store, 'd', ['a.png'])).toEqual(['a.png'])
    const head = (await datasetHead(store, 'd'))!
    expect(head.version).toMatchObject({ count: 1, note: 'rm a.png' })
    let versions = 0
    for await (const _ of history(store, head.cid)) versions++
    expect(versions).toBe(3)
    const pruned = await pruneHistory(store, 'd', 2)
    expect(pruned.dropped).toBe(1)
    const kept = []
    for await (const { version } of history(store, pruned.head)) kept.push([version.note, version.count, version.previous === undefined])
    expect(kept).toEqual([
      ['rm a.png', 1, false],
      ['rm x', 2, true],
    ])
    expect((await pruneHistory(store, 'd', 5)).dropped).toBe(0)
    await removeDataset(store, 'd')
    expect(await datasetHead(store, 'd')).toBeUndefined()
    await expect(removeDataset(store, 'd')).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' })
  })

  it('lists a directory: its entries and subdirectories with their counts, in name order', async () => {
    const store = new MemoryBlockStore()
    await commit(
      store,
      'd',
      put(entry('a-b/1.png'), entry('a.png'), entry('a/1.png'), entry('a/2/x.png'), entry('a/2/y.png'), entry('b.png')),
    )
    const head = (await datasetHead(store, 'd'))!
    const list = async (path?: string) => {
      const out = []
      for await (const item of listDirectory(store, head.version, path))
        out.push(item.kind === 'entry' ? item.entry.name : `${item.name}/ ${item.count}`)
      return out
    }
    expect(await list()).toEqual(['a-b/ 1', 'a.png', 'a/ 3', 'b.png'])
    expect(await list('a')).toEqual(['a/1.png', 'a/2/ 2'])
    expect(await list('zzz')).toEqual([])
  })
})

describe('name resolution', () => {
  it('resolves CIDs, NAME/path, VERSION-CID/path; refuses datasets and directories where an image is needed', async () => {
    const store = new MemoryBlockStore()
    const first = await commit(store, 'shots', put(entry('day1/a.png', imageA)))
    await commit(store, 'shots', put(entry('day1/a.png', imageB)))
    expect((await resolveImage(store, imageA.toString())).equals(imageA)).toBe(true)
    expect((await resolveImage(store, 'shots/day1/a.png')).equals(imageB)).toBe(true)
    // An older version, by its CID, still names the older image.
    expect((await resolveImage(store, `${first.after!.cid}/day1/a.png`)).equals(imageA)).toBe(true)
    expect((await resolveImage(store, 'shots/day1/a.png/')).equals(imageB)).toBe(true)
    const cases: Array<[string, string]> = [
      ['shots', 'ERR_INVALID_ARGUMENT'], // a dataset, not an image
      ['shots/day1', 'ERR_INVALID_ARGUMENT'], // a directory
      ['shots/day2/a.png', 'ERR_NOT_FOUND'],
      ['nosuch/a.png', 'ERR_NOT_FOUND'],
      ['nosuch', 'ERR_INVALID_CID'], // neither a CID nor a dataset
      ['bafy-nope', 'ERR_INVALID_CID'],
      ['shots/../a.png', 'ERR_INVALID_ARGUMENT'],
      ['sh@ts/a.png', 'ERR_INVALID_ARGUMENT'],
      [`${cidOf(RAW, new Uint8Array(1))}/a.png`, 'ERR_INVALID_CID'], // not a dataset version
    ]
    for (const [text, code] of cases) await expect(resolveImage(store, text), text).rejects.toMatchObject({ code })
    const resolved = await resolveSpecifier(store, 'shots/day1')
    expect(resolved).toMatchObject({ kind: 'dataset', name: 'shots', path: 'day1', entry: undefined })
  })

  it('parses specifiers and validates names', () => {
    expect(parseSpecifier(imageA.toString())).toMatchObject({ kind: 'cid' })
    expect(parseSpecifier('a.b_c-1')).toEqual({ kind: 'dataset', name: 'a.b_c-1' })
    expect(parseSpecifier('d/x/y.png')).toEqual({ kind: 'dataset', name: 'd', path: 'x/y.png' })
    expect(parseSpecifier('d/')).toEqual({ kind: 'dataset', name: 'd' })
    for (const bad of ['', '.hidden', '-x', 'a b', 'x'.repeat(101), 'a/b', imageA.toString()]) {
      expect(() => assertDatasetName(bad), bad).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }))
    }
    for (const bad of ['', '/a', 'a/', 'a//b', './a', 'a/../b', 'a\nb', 'x'.repeat(4097), '\ud800']) {
      expect(() => assertEntryName(bad), JSON.stringify(bad)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }))
    }
    expect(() => assertEntryName('2025/06/02 08:30 écran.png')).not.toThrow()
  })
})

describe('dataset blocks', () => {
  const version = { tesseraDataset: 1, name: 'd', count: 1, entries: imageA, time: 5, note: 'n' }
  const leaf = { level: 0, entries: [{ name: 'a.png', image: imageA, size: 1, mtime: 2, sha256: new Uint8Array(32) }] }

  it('round-trip through encode and decode', () => {
    expect(decodeVersion(encodeVersion({ ...version, previous: imageB, checkpoint: true }).bytes)).toEqual({
      ...version,
      previous: imageB,
      checkpoint: true,
    })
    expect(decodeNode(encodeNode(leaf as never).bytes)).toEqual(leaf)
  })

  // One case per rejection rule (spec/dataset.md §4-§5).
  const versions: Array<[string, unknown]> = [
    ['another format version', { ...version, tesseraDataset: 2 }],
    ['a name that is not a string', { ...version, name: 1 }],
    ['a negative count', { ...version, count: -1 }],
    ['entries absent with a count', { ...version, entries: undefined }],
    ['entries present with count 0', { ...version, count: 0 }],
    ['a raw link', { ...version, entries: cidOf(RAW, new Uint8Array(1)) }],
    ['checkpoint false', { ...version, checkpoint: false }],
    ['not a map', [1, 2]],
  ]
  for (const [what, value] of versions) {
    it(`rejects a version with ${what}`, () => {
      expect(() => decodeVersion(dagCbor.encode(stripUndefined(value)))).toThrow(expect.objectContaining({ code: 'ERR_INTEGRITY' }))
    })
  }
  const nodes: Array<[string, unknown]> = [
    ['no entries', { level: 0, entries: [] }],
    ['entries out of order', { level: 0, entries: [leaf.entries[0], leaf.entries[0]] }],
    ['an invalid entry name', { level: 0, entries: [{ ...leaf.entries[0], name: '../x' }] }],
    ['a short sha256', { level: 0, entries: [{ ...leaf.entries[0], sha256: new Uint8Array(31) }] }],
    ['a level above 32', { level: 33, children: [{ first: 'a', count: 1, node: imageA }] }],
    [
      'children out of order',
      {
        level: 1,
        children: [
          { first: 'b', count: 1, node: imageA },
          { first: 'a', count: 1, node: imageA },
        ],
      },
    ],
    ['a zero count', { level: 1, children: [{ first: 'a', count: 0, node: imageA }] }],
    ['entries and children', { level: 0, entries: leaf.entries, children: [] }],
  ]
  for (const [what, value] of nodes) {
    it(`rejects a node with ${what}`, () => {
      expect(() => decodeNode(dagCbor.encode(value))).toThrow(expect.objectContaining({ code: 'ERR_INTEGRITY' }))
    })
  }
})

function stripUndefined(value: unknown): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined))
}
