/**
 * The trustless gateway subset: raw blocks and CARs read back with @ipld/car (an independent
 * reader), every block re-hashed, the DAG complete and in depth-first order without
 * duplicates, and byte-identical to `tessera car export`; format negotiation and its errors;
 * the identity-CID probe.
 */
import { createHash } from 'node:crypto'
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CarBufferReader } from '@ipld/car/buffer-reader'
import { CID } from 'multiformats/cid'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { datasetHead, removeEntries } from '../../src/dataset/dataset.js'
import { importDataset } from '../../src/dataset/import.js'
import { createServer } from '../../src/http/server.js'
import { imageInfo, importImage, openImage, openStore } from '../../src/image.js'
import { runCli } from '../helpers/cli.js'
import { makeImage } from '../helpers/oracle.js'
import { bytesOf, type Fixture, fixture, importTestImage } from './helpers.js'

let fx: Fixture
let cid: string
// Two identical halves: identical tiles, stored once, must appear once in the CAR.
const image = (() => {
  const half = makeImage(64, 96, 3, 8, 2)
  const data = new Uint8Array(128 * 96 * 3)
  for (let y = 0; y < 96; y++) {
    data.set(half.data.subarray(y * 192, (y + 1) * 192), y * 384)
    data.set(half.data.subarray(y * 192, (y + 1) * 192), y * 384 + 192)
  }
  return { width: 128, height: 96, channels: 3, bits: 8 as const, data }
})()

beforeAll(async () => {
  fx = await fixture()
  cid = await importTestImage(fx, 'twins', image, { tileSize: 32 })
})
afterAll(async () => {
  await fx.close()
})

function get(url: string, headers: Record<string, string> = {}) {
  return fx.app.inject({ method: 'GET', url, headers })
}

function verify(blockCid: CID, bytes: Uint8Array): void {
  expect(blockCid.multihash.code).toBe(0x12)
  expect(Buffer.from(createHash('sha256').update(bytes).digest()).equals(Buffer.from(blockCid.multihash.digest))).toBe(true)
}

describe('raw blocks', () => {
  it('serves any stored block by CID, verifiable against it', async () => {
    const manifest = JSON.parse((await get(`/images/${cid}`)).body)
    for (const id of [cid, manifest.levels[0].rows[0]['/']]) {
      const response = await get(`/ipfs/${id}?format=raw`)
      expect(response.statusCode).toBe(200)
      expect(response.headers['content-type']).toBe('application/vnd.ipld.raw')
      expect(response.headers['content-disposition']).toBe(`attachment; filename="${id}.bin"`)
      expect(response.headers['x-content-type-options']).toBe('nosniff')
      expect(response.headers['cache-control']).toBe('public, max-age=31536000, immutable')
      verify(CID.parse(id), bytesOf(response))
    }
    const tile = (await get(`/images/${cid}/tiles/0/0/0`)).headers['x-tessera-tile-cid'] as string
    const viaAccept = await get(`/ipfs/${tile}`, { accept: 'application/vnd.ipld.raw' })
    expect(viaAccept.statusCode).toBe(200)
    verify(CID.parse(tile), bytesOf(viaAccept))
  })

  it('answers the probe CID bafkqaaa with an empty block', async () => {
    const response = await get('/ipfs/bafkqaaa?format=raw')
    expect(response.statusCode).toBe(200)
    expect(bytesOf(response).length).toBe(0)
    const head = await fx.app.inject({ method: 'HEAD', url: '/ipfs/bafkqaaa', headers: { accept: 'application/vnd.ipld.raw' } })
    expect(head.statusCode).toBe(200)
  })
})

describe('CAR streams', () => {
  it('holds every block of the image once, depth first, each verifiable', async () => {
    const response = await get(`/ipfs/${cid}?format=car`)
    expect(response.statusCode).toBe(200)
    expect(response.headers['content-type']).toBe('application/vnd.ipld.car; version=1; order=dfs; dups=n')
    expect(response.headers['content-disposition']).toBe(`attachment; filename="${cid}.car"`)
    const car = CarBufferReader.fromBytes(bytesOf(response))
    expect(car.version).toBe(1)
    expect(car.getRoots().map(String)).toEqual([cid])
    const blocks = car.blocks()
    for (const block of blocks) verify(block.cid, block.bytes)
    const seen = new Set(blocks.map((b) => b.cid.toString()))
    expect(seen.size).toBe(blocks.length)
    const info = await imageInfo(await openImage(fx.store.inner, cid))
    expect(blocks.length).toBe(info.blocks)
    // Duplicated tiles were sent once: fewer blocks than index entries.
    const tiles = info.levels.reduce((n, l) => n + l.tiles, 0)
    expect(blocks.filter((b) => b.cid.code === 0x55).length).toBeLessThan(tiles)
    // Depth first: the root, then each index block before the tiles it lists.
    expect(blocks[0]!.cid.toString()).toBe(cid)
    const manifest = JSON.parse((await get(`/images/${cid}`)).body)
    const firstRow = manifest.levels[0].rows[0]['/']
    expect(blocks[1]!.cid.toString()).toBe(firstRow)
    expect(blocks[2]!.cid.code).toBe(0x55)
  })

  it('sends only the root with dag-scope=block (and entity, and entity-bytes)', async () => {
    for (const query of ['dag-scope=block', 'dag-scope=entity', 'entity-bytes=0:*']) {
      const response = await get(`/ipfs/${cid}?format=car&${query}`)
      const blocks = CarBufferReader.fromBytes(bytesOf(response)).blocks()
      expect(
        blocks.map((b) => b.cid.toString()),
        query,
      ).toEqual([cid])
    }
    const etags = await Promise.all(['', '&dag-scope=block'].map(async (q) => (await get(`/ipfs/${cid}?format=car${q}`)).headers.etag))
    expect(etags[0]).not.toBe(etags[1])
  })

  it('walks an index block generically and sends a raw block alone', async () => {
    const manifest = JSON.parse((await get(`/images/${cid}`)).body)
    const row = manifest.levels[0].rows[1]['/']
    const car = CarBufferReader.fromBytes(bytesOf(await get(`/ipfs/${row}`, { accept: 'application/vnd.ipld.car' })))
    const blocks = car.blocks()
    expect(blocks[0]!.cid.toString()).toBe(row)
    expect(blocks.slice(1).every((b) => b.cid.code === 0x55)).toBe(true)
    for (const block of blocks) verify(block.cid, block.bytes)
    const tile = blocks[1]!.cid.toString()
    expect(
      CarBufferReader.fromBytes(bytesOf(await get(`/ipfs/${tile}?format=car`)))
        .blocks()
        .map((b) => b.cid.toString()),
    ).toEqual([tile])
  })

  it('answers the probe with a CAR rooted at bafkqaaa and no blocks', async () => {
    const car = CarBufferReader.fromBytes(bytesOf(await get('/ipfs/bafkqaaa?format=car')))
    expect(car.getRoots().map(String)).toEqual(['bafkqaaa'])
    expect(car.blocks()).toEqual([])
  })
})

describe('one CAR writer', () => {
  it('gives `tessera car export` and /ipfs/{cid}?format=car the same bytes: dataset, pyramid + ICC, provenance', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tessera-ipfs-car-'))
    const testdata = new URL('../../testdata/', import.meta.url).pathname
    const storeDir = join(dir, 'store')
    await mkdir(join(dir, 'src'))
    for (const name of ['rgb8-icc.png', 'rgb16.png', 'gray8.pgm']) await copyFile(join(testdata, name), join(dir, 'src', name))
    // A dag-cbor CID of no stored block: a weak link to it is skipped (spec/dataset.md §8).
    const absent = CID.parse('bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy')
    let store = await openStore(storeDir)
    const roots: Record<string, CID> = {}
    try {
      await importDataset(store, 'fixtures', [join(dir, 'src')], { tileSize: 32, pyramid: true })
      await removeEntries(store, 'fixtures', ['gray8.pgm'])
      roots.fixtures = (await datasetHead(store, 'fixtures'))!.cid
      roots.icc = (await importImage(store, join(testdata, 'rgb8-icc.png'), { tileSize: 64, pyramid: true, workers: 0 })).cid
      const derived = { derivedFrom: roots.icc, canonicalVersion: absent, workers: 0 }
      roots.derived = (await importImage(store, join(testdata, 'rgb16.png'), { tileSize: 64, ...derived })).cid
    } finally {
      await store.close()
    }
    const cars: Record<string, Buffer> = {}
    for (const [name, root] of Object.entries(roots)) {
      const run = await runCli(storeDir, dir, ['car', 'export', name === 'fixtures' ? name : root.toString(), '-o', '-'])
      expect(run.code, run.stderr).toBe(0)
      cars[name] = run.stdout
    }
    store = await openStore(storeDir)
    const app = await createServer({ store, tmpDir: dir, importWorkers: 0 })
    try {
      for (const [name, root] of Object.entries(roots)) {
        const response = await app.inject({ url: `/ipfs/${root}?format=car` })
        expect(response.statusCode, name).toBe(200)
        expect(Buffer.compare(response.rawPayload, cars[name]!), name).toBe(0)
        const range = await app.inject({ url: `/ipfs/${root}?format=car`, headers: { range: 'bytes=100-9999' } })
        expect(Buffer.compare(range.rawPayload, cars[name]!.subarray(100, 10000)), name).toBe(0)
      }
      // The stored provenance image follows the derived image's own blocks, whole; the absent one is skipped.
      const blocks = (car: Buffer) =>
        CarBufferReader.fromBytes(car)
          .blocks()
          .map((b) => b.cid.toString())
      const derived = blocks(cars.derived!)
      expect(derived.slice(-blocks(cars.icc!).length)).toEqual(blocks(cars.icc!))
      expect(derived).not.toContain(absent.toString())
    } finally {
      await app.close()
      await store.close()
      await rm(dir, { recursive: true, force: true })
    }
  })
})

describe('negotiation and errors', () => {
  it.each([
    ['no format and no Accept', '', {}, 400, 'ERR_INVALID_ARGUMENT'],
    ['an Accept for HTML', '', { accept: 'text/html' }, 406, 'ERR_NOT_ACCEPTABLE'],
    ['a CAR with duplicates', '', { accept: 'application/vnd.ipld.car; dups=y' }, 406, 'ERR_NOT_ACCEPTABLE'],
    ['a CARv2', '', { accept: 'application/vnd.ipld.car; version=2' }, 406, 'ERR_NOT_ACCEPTABLE'],
    ['an unknown format', '?format=dag-json', {}, 400, 'ERR_INVALID_ARGUMENT'],
    ['car-dups=y', '?format=car&car-dups=y', {}, 400, 'ERR_INVALID_ARGUMENT'],
    ['dag-scope on a raw block', '?format=raw&dag-scope=all', {}, 400, 'ERR_INVALID_ARGUMENT'],
    ['a bad dag-scope', '?format=car&dag-scope=some', {}, 400, 'ERR_INVALID_ARGUMENT'],
  ])('%s: %i', async (_name, query, headers, status, code) => {
    const response = await get(`/ipfs/${cid}${query}`, headers)
    expect(response.statusCode).toBe(status)
    expect(JSON.parse(response.body).code).toBe(code)
  })

  it('prefers format over Accept, and the higher q in Accept', async () => {
    const response = await get(`/ipfs/${cid}?format=raw`, { accept: 'application/vnd.ipld.car' })
    expect(response.headers['content-type']).toBe('application/vnd.ipld.raw')
    const q = await get(`/ipfs/${cid}`, { accept: 'application/vnd.ipld.raw;q=0.5, application/vnd.ipld.car;q=0.9' })
    expect(q.headers['content-type']).toMatch(/^application\/vnd\.ipld\.car/)
  })

  it.each([
    ['a missing block', '/ipfs/bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy?format=raw', 404, 'ERR_NOT_FOUND'],
    ['a missing root', '/ipfs/bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy?format=car', 404, 'ERR_NOT_FOUND'],
    ['a malformed CID', '/ipfs/xyz?format=raw', 400, 'ERR_INVALID_CID'],
    ['a path below the CID', '/ipfs/bafkqaaa/a/b?format=car', 400, 'ERR_INVALID_ARGUMENT'],
  ])('%s: %i', async (_name, url, status, code) => {
    const response = await get(url)
    expect(response.statusCode).toBe(status)
    expect(JSON.parse(response.body).code).toBe(code)
  })
})
