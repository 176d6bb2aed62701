/**
 * The structure check (src/dataset/structure.ts) behind `verify` and CAR import: blocks whose
 * hashes hold but which break the format. A tile row index is checked against the manifest that
 * lists it, whichever comes first; then the same damage through verifyAll and importCar.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { varint } from 'multiformats'
import { identity } from 'multiformats/hashes/identity'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { carHeader, exportCar } from '../../src/car/export.js'
import { importCar } from '../../src/car/import.js'
import { verifyAll } from '../../src/dataset/maintenance.js'
import { StructureCheck } from '../../src/dataset/structure.js'
import { walkBlocks } from '../../src/dataset/walk.js'
import { type Block, CID, cborBlock, DAG_CBOR } from '../../src/format/block.js'
import { decodeManifest, decodeTileRow, encodeManifest, encodeTileRow, type ImageManifest } from '../../src/format/manifest.js'
import { importImage, openStore } from '../../src/image.js'
import type { BlockStore } from '../../src/store/interface.js'
import { makeImage, writePam } from '../helpers/oracle.js'

const dir = mkdtempSync(join(tmpdir(), 'tessera-structure-'))
let store: BlockStore
let manifestBlock: Block
let manifest: ImageManifest
let rows: Block[]

beforeAll(async () => {
  const pam = join(dir, 'image.pam')
  await writePam(pam, makeImage(40, 20, 3, 8, 3))
  store = await openStore('memory:')
  const { cid } = await importImage(store, pam, { tileSize: 16 })
  manifest = decodeManifest(await store.get(cid))
  manifestBlock = { cid, bytes: await store.get(cid) }
  rows = await Promise.all(manifest.levels[0]!.rows.map(async (row) => ({ cid: row, bytes: await store.get(row) })))
})
afterAll(async () => {
  await store.close()
  rmSync(dir, { recursive: true, force: true })
})

/** The image with its first row index replaced by `row`: the new blocks, root last. */
function withRow(row: Block): { manifest: Block; row: Block } {
  const levels = manifest.levels.map((level, i) => (i === 0 ? { ...level, rows: [row.cid, ...level.rows.slice(1)] } : level))
  return { manifest: encodeManifest({ ...manifest, levels }), row }
}

/** The first row index with one tile fewer than the image has columns. */
function shortRow(): Block {
  const index = decodeTileRow(rows[0]!.bytes, 3)
  return encodeTileRow({ tiles: index.tiles.slice(1), lengths: index.lengths.slice(1) })
}

describe('StructureCheck', () => {
  it('passes a whole image, parents first or children first', () => {
    for (const order of [
      [manifestBlock, ...rows],
      [...rows, manifestBlock],
    ]) {
      const check = new StructureCheck()
      for (const block of order) check.block(block.cid, block.bytes)
      check.finish()
    }
  })

  it('refuses a row index with the wrong number of tiles, after its manifest or before it', () => {
    const bad = withRow(shortRow())
    const after = new StructureCheck()
    after.block(bad.manifest.cid, bad.manifest.bytes)
    expect(() => after.block(bad.row.cid, bad.row.bytes)).toThrow(/Tile row index .* of image .* is not valid: Invalid manifest: bad tiles/)
    const before = new StructureCheck()
    before.block(bad.row.cid, bad.row.bytes)
    expect(() => before.block(bad.manifest.cid, bad.manifest.bytes)).toThrow(expect.objectContaining({ code: 'ERR_INTEGRITY' }))
  })

  it('refuses a row index that is not even a map, and a manifest whose links are not sha2-256', () => {
    const number = cborBlock(7)
    const bad = withRow(number)
    const check = new StructureCheck()
    check.block(bad.manifest.cid, bad.manifest.bytes)
    expect(() => check.block(number.cid, number.bytes)).toThrow(/bad tile row index/)
    // An identity CID in place of a row: it names no stored block, and no crop could read it.
    const inline = CID.createV1(DAG_CBOR, identity.digest(number.bytes))
    const levels = manifest.levels.map((level, i) => (i === 0 ? { ...level, rows: [inline, ...level.rows.slice(1)] } : level))
    const identityRoot = encodeManifest({ ...manifest, levels })
    expect(() => new StructureCheck().block(identityRoot.cid, identityRoot.bytes)).toThrow(/Invalid manifest: bad levels\[0\]\.rows/)
  })

  it('refuses one row index shared by two images of different widths', () => {
    const narrow = encodeManifest({ ...manifest, width: 17, levels: [{ width: 17, height: 20, rows: manifest.levels[0]!.rows }] })
    const check = new StructureCheck()
    check.block(manifestBlock.cid, manifestBlock.bytes)
    for (const row of rows) check.block(row.cid, row.bytes)
    expect(() => check.block(narrow.cid, narrow.bytes)).toThrow(/has 3 tiles, not 2/)
  })

  it('lets go of dag-cbor blocks no manifest lists', () => {
    const check = new StructureCheck()
    const other = cborBlock({ hello: 'world' })
    check.block(other.cid, other.bytes)
    check.finish()
  })
})

async function collect(parts: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = []
  for await (const part of parts) chunks.push(part)
  return Buffer.concat(chunks)
}

async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes
}

/** A CARv1 of `blocks` under `root`, framed by hand. */
function carOf(root: CID, blocks: readonly Block[]): Uint8Array {
  const frames = blocks.map(({ cid, bytes }) => {
    const length = cid.bytes.length + bytes.length
    return Buffer.concat([varint.encodeTo(length, new Uint8Array(varint.encodingLength(length))), cid.bytes, bytes])
  })
  return Buffer.concat([carHeader(root), ...frames])
}

/** The first row index stating one byte too many for its first tile. */
function lyingRow(): Block {
  const index = decodeTileRow(rows[0]!.bytes, 3)
  return encodeTileRow({ tiles: index.tiles, lengths: [index.lengths[0]! + 1, ...index.lengths.slice(1)] })
}

describe('a row index that breaks the format', () => {
  async function damagedStore(row = shortRow()): Promise<{ store: BlockStore; root: CID; row: CID }> {
    const target = await openStore('memory:')
    const bad = withRow(row)
    const writer = await target.begin()
    for (const block of [bad.manifest, bad.row, ...rows.slice(1)]) await writer.put(block.cid, block.bytes)
    for await (const tile of tilesOf(rows)) await writer.put(tile.cid, tile.bytes)
    writer.pin(bad.manifest.cid, 'damaged')
    await writer.commit()
    return { store: target, root: bad.manifest.cid, row: bad.row.cid }
  }

  async function* tilesOf(indexes: readonly Block[]): AsyncGenerator<Block> {
    for (const index of indexes) {
      for (const tile of decodeTileRow(index.bytes, 3).tiles) yield { cid: tile, bytes: await store.get(tile) }
    }
  }

  it('is a problem for verify --all, named by its CID', async () => {
    const { store: damaged, row } = await damagedStore()
    try {
      const { problems } = await verifyAll(damaged)
      expect(problems).toEqual([expect.objectContaining({ cid: row.toString(), code: 'ERR_INTEGRITY' })])
    } finally {
      await damaged.close()
    }
  })

  it('stating a wrong tile length: a problem for verify --all, and CAR import refuses it', async () => {
    const { store: damaged, root, row } = await damagedStore(lyingRow())
    const target = await openStore('memory:')
    try {
      const tile = decodeTileRow(rows[0]!.bytes, 3).tiles[0]!
      const { problems } = await verifyAll(damaged)
      expect(problems).toEqual([
        { cid: tile.toString(), code: 'ERR_INTEGRITY', message: expect.stringContaining(`but row index ${row} states`) },
      ])
      // `car export` refuses to write it (the tile's length is not the one stated): a CAR by hand.
      await expect(collect(exportCar(damaged, root))).rejects.toMatchObject({ code: 'ERR_INTEGRITY' })
      const blocks: Block[] = []
      for await (const { cid, bytes } of walkBlocks(damaged, [root])) blocks.push({ cid, bytes: bytes ?? (await damaged.get(cid)) })
      await expect(importCar(target, once(carOf(root, blocks)))).rejects.toMatchObject({
        code: 'ERR_INTEGRITY',
        message: expect.stringMatching(/^Row index .* states \d+ bytes for tile .*, but the tile has \d+$/),
      })
      expect(await target.storedBytes()).toBe(0)
    } finally {
      await damaged.close()
      await target.close()
    }
  })

  it('makes CAR import refuse the whole file, leaving the store empty', async () => {
    const { store: damaged, root } = await damagedStore()
    const target = await openStore('memory:')
    try {
      await expect(importCar(target, exportCar(damaged, root))).rejects.toMatchObject({
        code: 'ERR_INTEGRITY',
        message: expect.stringMatching(/breaks the format: Tile row index/),
      })
      const pins = []
      for await (const pin of target.pins()) pins.push(pin)
      expect(pins).toEqual([])
      expect(await target.storedBytes()).toBe(0)
    } finally {
      await damaged.close()
      await target.close()
    }
  })
})
