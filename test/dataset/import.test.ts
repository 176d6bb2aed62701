/**
 * Directory import into a dataset: what is found (recursion, extensions, dot files), what is
 * skipped (unchanged files, content already in the dataset), checkpoints and resuming after
 * an interruption, files that fail while the others go in, and dedup accounting exactness on
 * images with known duplicate tiles.
 */
import { cp, mkdir, mkdtemp, rm, symlink, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { datasetUsage } from '../../src/dataset/accounting.js'
import { datasetHead, history } from '../../src/dataset/dataset.js'
import { importDataset } from '../../src/dataset/import.js'
import { iterateEntries, NodeCache, treeNodes } from '../../src/dataset/tree.js'
import { cropImage, importImage, openImage } from '../../src/image.js'
import type { BlockStore } from '../../src/store/interface.js'
import { MemoryBlockStore } from '../../src/store/memory.js'
import { naiveCrop } from '../helpers/oracle.js'
import { tiledImage, writeJunk, writeTiled } from './images.js'

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-dsimport-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

async function names(store: BlockStore, name: string): Promise<string[]> {
  const head = await datasetHead(store, name)
  const out: string[] = []
  for await (const entry of iterateEntries(new NodeCache(store), head?.version.entries)) out.push(entry.name)
  return out
}

async function rawCrop(store: BlockStore, spec: string): Promise<Buffer> {
  const { resolveImage } = await import('../../src/dataset/dataset.js')
  const image = await openImage(store, await resolveImage(store, spec))
  const chunks: Uint8Array[] = []
  const { width, height } = image.manifest
  for await (const chunk of await cropImage(image, { x: 0, y: 0, width, height }, { format: 'raw' })) chunks.push(chunk)
  return Buffer.concat(chunks)
}

describe('dataset import', () => {
  it('imports a tree recursively by extension, names entries by relative path, and crops each exactly', async () => {
    const src = join(dir, 'src')
    await mkdir(join(src, 'day1', 'deep'), { recursive: true })
    await mkdir(join(src, '.cache'), { recursive: true })
    const images = {
      'a.pam': tiledImage(16, [[1, 2]]),
      'day1/b.PAM': tiledImage(16, [[3], [4]]),
      'day1/deep/c.pam': tiledImage(16, [[1, 5]]),
    }
    for (const [name, image] of Object.entries(images)) await writeTiled(join(src, name), image)
    await writeFile(join(src, 'notes.txt'), 'not an image')
    await writeTiled(join(src, '.cache', 'hidden.pam'), tiledImage(16, [[9]]))
    const store = new MemoryBlockStore()
    const progress: number[] = []
    const result = await importDataset(store, 'shots', [src], { tileSize: 16, onProgress: (p) => progress.push(p.done) })
    expect(result).toMatchObject({ total: 3, imported: 3, reused: 0, unchanged: 0, failed: 0, changed: true, checkpoints: 0 })
    expect(progress).toEqual([1, 2, 3])
    expect(await names(store, 'shots')).toEqual(['a.pam', 'day1/b.PAM', 'day1/deep/c.pam'])
    for (const [name, image] of Object.entries(images)) {
      expect(
        Buffer.compare(await rawCrop(store, `shots/${name}`), naiveCrop(image, { x: 0, y: 0, width: image.width, height: image.height })),
      ).toBe(0)
    }
    // Entries are not pins: the dataset keeps them.
    const pins = []
    for await (const pin of store.pins()) pins.push(pin)
    expect(pins).toEqual([])
    // A file given directly is named by its base name; --prefix puts entries in a directory.
    await importDataset(store, 'shots', [join(src, 'a.pam')], { tileSize: 16, prefix: 'extra/2025' })
    expect(await names(store, 'shots')).toContain('extra/2025/a.pam')
  })

  it('skips unchanged files without reading them, reuses content already in the dataset, re-imports changed files', async () => {
    const src = join(dir, 'src')
    await mkdir(src)
    await writeTiled(join(src, 'a.pam'), tiledImage(16, [[1, 2]]))
    await writeTiled(join(src, 'b.pam'), tiledImage(16, [[3, 4]]))
    const store = new MemoryBlockStore()
    await importDataset(store, 'd', [src], { tileSize: 16 })
    const first = (await datasetHead(store, 'd'))!
    // Nothing changed: no new version.
    const again = await importDataset(store, 'd', [src], { tileSize: 16 })
    expect(again).toMatchObject({ unchanged: 2, imported: 0, changed: false })
    expect((await datasetHead(store, 'd'))!.cid.equals(first.cid)).toBe(true)
    // A copy of a.pam under another name, a touched b.pam, a modified a.pam.
    await cp(join(src, 'a.pam'), join(src, 'copy-of-a.pam'))
    await utimes(join(src, 'b.pam'), new Date(2020, 1, 1), new Date(2020, 1, 1))
    const before = await store.storedBytes()
    const third = await importDataset(store, 'd', [src], { tileSize: 16 })
    expect(third).toMatchObject({ imported: 0, reused: 1, unchanged: 2, newBytes: 0 })
    expect(await store.storedBytes()).toBeGreaterThan(before) // the new dataset blocks only
    const head = (await datasetHead(store, 'd'))!
    const cache = new NodeCache(store)
    const entries = new Map<string, { image: string; mtime: number }>()
    for await (const e of iterateEntries(cache, head.version.entries)) entries.set(e.name, { image: e.image.toString(), mtime: e.mtime })
    expect(entries.get('copy-of-a.pam')!.image).toBe(entries.get('a.pam')!.image)
    expect(entries.get('b.pam')!.mtime).toBe(new Date(2020, 1, 1).getTime())
    await writeTiled(join(src, 'a.pam'), tiledImage(16, [[1, 7]]))
    const fourth = await importDataset(store, 'd', [src], { tileSize: 16 })
    expect(fourth).toMatchObject({ imported: 1, unchanged: 2 })
    // Another tile size is another image: the content is imported again.
    const fifth = await importDataset(store, 'd', [src], { tileSize: 32, prefix: 't32' })
    expect(fifth).toMatchObject({ imported: 3, reused: 0 })
  })

  it('commits checkpoints and resumes an interrupted import; the log shows one version per import', async () => {
    const src = join(dir, 'src')
    await mkdir(src)
    for (let i = 0; i < 7; i++) await writeTiled(join(src, `f${i}.pam`), tiledImage(16, [[i, 100 + i]]))
    const store = new MemoryBlockStore()
    // Interrupted after the 5th file: checkpoints after files 2 and 4 are committed.
    const controller = new AbortController()
    const interrupted = importDataset(store, 'd', [src], {
      tileSize: 16,
      jobs: 1,
      checkpointFiles: 2,
      onProgress: (p) => {
        if (p.done === 5) controller.abort()
      },
      signal: controller.signal,
    })
    await expect(interrupted).rejects.toThrow()
    const partial = (await datasetHead(store, 'd'))!
    expect(partial.version).toMatchObject({ checkpoint: true, count: 4 })
    const resumed = await importDataset(store, 'd', [src], { tileSize: 16, checkpointFiles: 2 })
    expect(resumed).toMatchObject({ unchanged: 4, imported: 3, checkpoints: 1 })
    const head = (await datasetHead(store, 'd'))!
    expect(head.version.checkpoint).toBeUndefined()
    expect(head.version.count).toBe(7)
    const log = []
    for await (const { version } of history(store, head.cid)) log.push(version.note)
    expect(log).toHaveLength(1)
    expect(log[0]).toMatch(/^import 7 files: 3 imported, 0 reused, 4 unchanged, 0 failed/)
  })

  it('imports the other files when some fail, and reports each failure', async () => {
    const src = join(dir, 'src')
    await mkdir(src)
    await writeTiled(join(src, 'good.pam'), tiledImage(16, [[1]]))
    await writeJunk(join(src, 'junk.png'))
    const truncated = join(src, 'truncated.pam')
    await writeTiled(truncated, tiledImage(16, [[2, 3]]))
    const { truncate } = await import('node:fs/promises')
    await truncate(truncated, 100)
    const store = new MemoryBlockStore()
    const failures: string[] = []
    const result = await importDataset(store, 'd', [src], { tileSize: 16, onFailure: (f) => failures.push(`${f.name} ${f.error.code}`) })
    expect(result).toMatchObject({ imported: 1, failed: 2 })
    expect(failures.sort()).toEqual(['junk.png ERR_UNSUPPORTED_FORMAT', 'truncated.pam ERR_CORRUPT_INPUT'])
    expect(await names(store, 'd')).toEqual(['good.pam'])
  })

  it('re-imports unchanged files when asked for other settings (a new --tile-size is not ignored)', async () => {
    const src = join(dir, 'src')
    await mkdir(src)
    const image = tiledImage(16, [
      [1, 2],
      [3, 4],
    ])
    await writeTiled(join(src, 'a.pam'), image)
    const store = new MemoryBlockStore()
    await importDataset(store, 'd', [src], { tileSize: 16 })
    const again = await importDataset(store, 'd', [src], { tileSize: 32 })
    expect(again).toMatchObject({ total: 1, imported: 1, unchanged: 0 })
    const { resolveImage } = await import('../../src/dataset/dataset.js')
    const reopened = await openImage(store, await resolveImage(store, 'd/a.pam'))
    expect(reopened.manifest.tileSize).toBe(32)
    expect(new Uint8Array(await rawCrop(store, 'd/a.pam'))).toEqual(naiveCrop(image, { x: 0, y: 0, width: 32, height: 32 }))
    // The same settings again: unchanged, nothing read.
    expect(await importDataset(store, 'd', [src], { tileSize: 32 })).toMatchObject({ total: 1, unchanged: 1, imported: 0 })
  })

  it('reports dangling links and names that are not UTF-8, and its counts add up', async () => {
    const src = join(dir, 'src')
    await mkdir(src)
    await writeTiled(join(src, 'good.pam'), tiledImage(16, [[1]]))
    await symlink(join(src, 'gone.pam'), join(src, 'dangling.pam'))
    // f<0xff>.pam: a byte that is not UTF-8 (Linux file names are bytes).
    const raw = Buffer.concat([Buffer.from(`${src}/f`), Buffer.from([0xff]), Buffer.from('.pam')])
    await writeFile(raw, 'P7\n')
    const store = new MemoryBlockStore()
    const failures: string[] = []
    const result = await importDataset(store, 'd', [src], {
      tileSize: 16,
      onFailure: (f) => failures.push(`${f.path.slice(src.length + 1)} ${f.error.code}`),
    })
    expect(failures.sort()).toEqual(['dangling.pam ERR_NOT_FOUND', 'f\\xff.pam ERR_INVALID_ARGUMENT'])
    expect(result).toMatchObject({ total: 3, done: 3, imported: 1, failed: 2 })
    expect(result.imported + result.reused + result.unchanged + result.failed).toBe(result.total)
    expect(await names(store, 'd')).toEqual(['good.pam'])
  })

  it('names entries in NFC: a decomposed file name is one entry, and its two spellings collide', async () => {
    const src = join(dir, 'src')
    await mkdir(src)
    const nfd = 'e\u0301te\u0301.pam'
    await writeTiled(join(src, nfd), tiledImage(16, [[1]]))
    const store = new MemoryBlockStore()
    await importDataset(store, 'd', [src], { tileSize: 16 })
    expect(await names(store, 'd')).toEqual(['\u00e9t\u00e9.pam'])
    await writeTiled(join(src, '\u00e9t\u00e9.pam'), tiledImage(16, [[2]]))
    await expect(importDataset(store, 'd', [src], { tileSize: 16 })).rejects.toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
      message: expect.stringContaining('would both be entry'),
    })
  })

  it('refuses two files that map to one entry, a bad name or tile size, before importing anything', async () => {
    await mkdir(join(dir, 'x'))
    await mkdir(join(dir, 'y'))
    await writeTiled(join(dir, 'x', 'a.pam'), tiledImage(16, [[1]]))
    await writeTiled(join(dir, 'y', 'a.pam'), tiledImage(16, [[2]]))
    const store = new MemoryBlockStore()
    await expect(importDataset(store, 'd', [join(dir, 'x'), join(dir, 'y')])).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
    await expect(importDataset(store, '-bad', [join(dir, 'x')])).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
    await expect(importDataset(store, 'd', [join(dir, 'x')], { tileSize: 20 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
    await expect(importDataset(store, 'd', [join(dir, 'nope')])).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' })
    expect(await store.storedBytes()).toBe(0)
  })
})

describe('dedup accounting', () => {
  it('counts images, pixels, per-image and unique bytes, tiles and the ratio exactly on known duplicates', async () => {
    const src = join(dir, 'src')
    await mkdir(src)
    // Tile seeds: 1 and 2 appear in several images, 3 twice within one image; e.pam = a.pam.
    const layouts: Record<string, number[][]> = {
      'a.pam': [
        [1, 2],
        [3, 3],
      ],
      'b.pam': [
        [1, 2],
        [4, 5],
      ],
      'c.pam': [[1, 6, 2]],
      'e.pam': [
        [1, 2],
        [3, 3],
      ],
    }
    for (const [name, seeds] of Object.entries(layouts)) await writeTiled(join(src, name), tiledImage(16, seeds))
    const store = new MemoryBlockStore()
    await importDataset(store, 'd', [src], { tileSize: 16 })
    const head = (await datasetHead(store, 'd'))!
    const usage = await datasetUsage(store, head)

    // Independent figures: each distinct image imported alone into its own empty store.
    const apart: Record<string, number> = {}
    for (const name of ['a.pam', 'b.pam', 'c.pam']) {
      const alone = new MemoryBlockStore()
      await importImage(alone, join(src, name), { tileSize: 16, workers: 0, label: name })
      apart[name] = blockBytes(alone)
    }
    let datasetBlocks = 0
    for await (const node of treeNodes(new NodeCache(store), head.version.entries)) datasetBlocks += (await store.size(node))!
    datasetBlocks += (await store.size(head.cid))!

    expect(usage.entries).toBe(4)
    expect(usage.images).toBe(3) // e.pam has a.pam's content: the same image
    expect(usage.pixelBytes).toBe(3 * (32 * 32 * 3) + 48 * 16 * 3)
    expect(usage.tiles).toBe(4 + 4 + 3 + 4)
    expect(usage.uniqueTiles).toBe(6) // seeds 1..6
    expect(usage.perImageBytes).toBe(apart['a.pam']! * 2 + apart['b.pam']! + apart['c.pam']!)
    // The memory store holds exactly the images' blocks and the dataset's.
    expect(usage.uniqueBytes + usage.indexBytes).toBe(blockBytes(store))
    expect(usage.indexBytes).toBe(datasetBlocks)
    expect(usage.dedupRatio).toBeCloseTo(usage.perImageBytes / usage.uniqueBytes, 12)
    expect(usage.dedupRatio).toBeGreaterThan(1.5)
  })
})

/** The bytes of every block a memory store holds (its storedBytes counts pack framing and indexes too). */
function blockBytes(store: MemoryBlockStore): number {
  let total = 0
  for (const key of store.blocks.keys()) total += store.blocks.get(key)!.length
  return total
}
