/**
 * CAR interchange: a dataset (with history, pyramids, an ICC profile) and a single image go
 * from one store to an empty one with identical crops; a CAR that is corrupted, truncated,
 * incomplete or not a CAR at all is rejected whole, with the store unchanged.
 */
import { copyFile, mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CarBlockIterator } from '@ipld/car/iterator'
import { CarWriter } from '@ipld/car/writer'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { exportCar } from '../../src/car/export.js'
import { importCar } from '../../src/car/import.js'
import { datasetHead, history, removeEntries } from '../../src/dataset/dataset.js'
import { importDataset } from '../../src/dataset/import.js'
import { verifyAll } from '../../src/dataset/maintenance.js'
import { iterateEntries, NodeCache } from '../../src/dataset/tree.js'
import type { CID } from '../../src/format/block.js'
import { cropImage, importImage, openImage, openStore } from '../../src/image.js'
import type { BlockStore } from '../../src/store/interface.js'

const testdata = new URL('../../testdata/', import.meta.url).pathname
let dir: string
let source: BlockStore
let datasetCar: Uint8Array
let imageCar: Uint8Array
let image: CID

async function collect(bytes: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = []
  for await (const chunk of bytes) chunks.push(chunk)
  return new Uint8Array(Buffer.concat(chunks))
}

async function* chunked(bytes: Uint8Array, size = 7919): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size)
}

/** Every entry's every level, cropped whole to raw: what must survive a round trip. */
async function crops(store: BlockStore, name: string): Promise<Map<string, Buffer>> {
  const head = (await datasetHead(store, name))!
  const out = new Map<string, Buffer>()
  for await (const entry of iterateEntries(new NodeCache(store), head.version.entries)) {
    const opened = await openImage(store, entry.image)
    for (let level = 0; level < opened.manifest.levels.length; level++) {
      const { width, height } = opened.manifest.levels[level]!
      out.set(
        `${entry.name}@${level}`,
        Buffer.from(await collect(await cropImage(opened, { x: 0, y: 0, width, height }, { format: 'raw', level }))),
      )
    }
  }
  return out
}

/** Every file of the store in `dir` with its size, its pins and its references. */
async function snapshot(store: BlockStore, dir: string): Promise<string[]> {
  const files = (await readdir(dir, { recursive: true })).sort()
  const lines = await Promise.all(files.map(async (f) => `${f}:${(await stat(join(dir, f))).size}`))
  for await (const pin of store.pins()) lines.push(`pin ${pin.cid} ${pin.label}`)
  for await (const ref of store.refs!()) lines.push(`ref ${ref.name} ${ref.cid}`)
  return lines
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-car-'))
  const src = join(dir, 'src')
  await mkdir(join(src, 'more'), { recursive: true })
  for (const name of ['rgb8-icc.png', 'rgb16.png', 'gray8.pgm']) await copyFile(join(testdata, name), join(src, name))
  await copyFile(join(testdata, 'rgba8.png'), join(src, 'more', 'rgba8.png'))
  source = await openStore(join(dir, 'source'))
  await importDataset(source, 'fixtures', [src], { tileSize: 32, pyramid: true })
  await removeEntries(source, 'fixtures', ['gray8.pgm'])
  datasetCar = await collect(exportCar(source, (await datasetHead(source, 'fixtures'))!.cid))
  image = (await importImage(source, join(testdata, 'rgb8.png'), { tileSize: 64, workers: 0 })).cid
  imageCar = await collect(exportCar(source, image))
})
afterAll(async () => {
  await source?.close()
  await rm(dir, { recursive: true, force: true })
})

describe('CAR export and import', () => {
  it('moves a dataset with its history to an empty store: same head, same versions, identical crops', async () => {
    const target = await openStore(join(dir, 'target-dataset'))
    try {
      const result = await importCar(target, chunked(datasetCar))
      const head = (await datasetHead(source, 'fixtures'))!
      expect(result.roots).toEqual([{ cid: head.cid, kind: 'dataset', name: 'fixtures' }])
      expect(result.newBlocks).toBe(result.blocks)
      expect((await datasetHead(target, 'fixtures'))!.cid.equals(head.cid)).toBe(true)
      const versions = []
      for await (const { cid } of history(target, head.cid)) versions.push(cid.toString())
      expect(versions).toHaveLength(2)
      expect(await crops(target, 'fixtures')).toEqual(await crops(source, 'fixtures'))
      expect((await verifyAll(target)).problems).toEqual([])
      // The older version came along: its entry is still there.
      const { resolveImage } = await import('../../src/dataset/dataset.js')
      await expect(resolveImage(target, `${versions[1]}/gray8.pgm`)).resolves.toBeDefined()
      // Again: nothing new, same head.
      const again = await importCar(target, chunked(datasetCar))
      expect(again.newBlocks).toBe(0)
      // A dataset of that name with another head is refused, unless renamed.
      await removeEntries(target, 'fixtures', ['rgb16.png'])
      await expect(importCar(target, chunked(datasetCar))).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
      const renamed = await importCar(target, chunked(datasetCar), { name: 'copy' })
      expect(renamed.roots[0]).toMatchObject({ kind: 'dataset', name: 'copy' })
      expect((await datasetHead(target, 'copy'))!.cid.equals(head.cid)).toBe(true)
    } finally {
      await target.close()
    }
  })

  it('moves a single image, pinned under its source name, with identical pixels', async () => {
    const target = await openStore(join(dir, 'target-image'))
    try {
      const result = await importCar(target, chunked(imageCar))
      expect(result.roots).toEqual([{ cid: image, kind: 'image', name: 'rgb8.png' }])
      const pins = []
      for await (const pin of target.pins()) pins.push([pin.cid.toString(), pin.label])
      expect(pins).toEqual([[image.toString(), 'rgb8.png']])
      const read = async (store: BlockStore) => {
        const opened = await openImage(store, image)
        const { width, height } = opened.manifest
        return Buffer.from(await collect(await cropImage(opened, { x: 0, y: 0, width, height }, { format: 'raw' })))
      }
      expect(await read(target)).toEqual(await read(source))
    } finally {
      await target.close()
    }
  })

  it('writes each block once, depth first, the root first', async () => {
    const iterator = await CarBlockIterator.fromBytes(datasetCar)
    expect((await iterator.getRoots()).map(String)).toEqual([(await datasetHead(source, 'fixtures'))!.cid.toString()])
    const seen = new Set<string>()
    let first: string | undefined
    for await (const { cid } of iterator) {
      first ??= cid.toString()
      expect(seen.has(cid.toString())).toBe(false)
      seen.add(cid.toString())
    }
    expect(first).toBe((await datasetHead(source, 'fixtures'))!.cid.toString())
  })

  describe('rejects the whole file, the store unchanged', () => {
    let target: BlockStore
    let targetDir: string
    beforeAll(async () => {
      targetDir = join(dir, 'target-reject')
      target = await openStore(targetDir)
      await importCar(target, chunked(imageCar))
    })
    afterAll(async () => {
      await target.close()
    })

    /** The dataset CAR with the bytes of its first tile (a raw block) changed or left out. */
    async function tampered(how: 'flip' | 'drop'): Promise<Uint8Array> {
      const iterator = await CarBlockIterator.fromBytes(datasetCar)
      const roots = await iterator.getRoots()
      const { writer, out } = CarWriter.create(roots)
      const done = collect(out)
      let changed = false
      for await (const block of iterator) {
        if (!changed && block.cid.code === 0x55) {
          changed = true
          if (how === 'drop') continue
          // A copy (Buffer's slice() would be a view of the CAR shared by the other tests).
          const bytes = new Uint8Array(block.bytes)
          bytes[bytes.length >> 1]! ^= 0x01
          await writer.put({ cid: block.cid, bytes })
          continue
        }
        await writer.put(block)
      }
      await writer.close()
      return done
    }

    const cases: Array<[string, () => Promise<Uint8Array> | Uint8Array, string]> = [
      ['a block that does not match its CID', () => tampered('flip'), 'ERR_INTEGRITY'],
      ['a block missing from the DAG', () => tampered('drop'), 'ERR_INTEGRITY'],
      ['a truncated file', () => datasetCar.subarray(0, datasetCar.length - 100), 'ERR_CORRUPT_INPUT'],
      ['a file that is not a CAR', () => new TextEncoder().encode('hello, I am not a CAR file at all'), 'ERR_CORRUPT_INPUT'],
      ['an empty file', () => new Uint8Array(0), 'ERR_CORRUPT_INPUT'],
    ]
    for (const [what, make, code] of cases) {
      it(what, async () => {
        const before = await snapshot(target, targetDir)
        await expect(importCar(target, chunked(await make()))).rejects.toMatchObject({ code })
        expect(await snapshot(target, targetDir)).toEqual(before)
        expect(await datasetHead(target, 'fixtures')).toBeUndefined()
      })
    }
  })
})
