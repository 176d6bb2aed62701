/**
 * Delta tiles over HTTP (spec/http.md, Tiles; spec/format.md §6.1): the raw payload of a delta
 * says so and names its reference, which the IPFS gateway serves; decoded formats, crops and
 * the image's CAR just work.
 */
import { join } from 'node:path'
import { CarBufferReader } from '@ipld/car/buffer-reader'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { TileCoder } from '../../src/format/tile-codec.js'
import { importImage, openImage } from '../../src/image.js'
import { DeltaContext } from '../../src/import/delta.js'
import { frameOf } from '../helpers/frames.js'
import { makeImage, naiveCrop, writePam } from '../helpers/oracle.js'
import { bytesOf, type Fixture, fixture } from './helpers.js'

let fx: Fixture
const base = makeImage(100, 70, 3, 8, 3)
const frames = [frameOf(base, 0), frameOf(base, 3)]
const cids: string[] = []
beforeAll(async () => {
  fx = await fixture()
  const context = new DeltaContext()
  for (const [k, frame] of frames.entries()) {
    const path = join(fx.dir, `frame-${k}.pam`)
    await writePam(path, frame)
    const ticket = context.ticket()
    cids.push((await importImage(fx.store, path, { tileSize: 32, workers: 0, delta: ticket })).cid.toString())
    ticket.end()
  }
})
afterAll(async () => {
  await fx.close()
})

const get = (url: string) => fx.app.inject({ method: 'GET', url })

describe('delta tiles over HTTP', () => {
  it('serves a delta payload with its reference named, and the reference by the gateway; together they decode', async () => {
    const image = await openImage(fx.store.inner, cids[1]!)
    const coder = new TileCoder({ tileSize: 32, channels: 3, bitsPerSample: 8 }, image.manifest.codec)
    let deltas = 0
    for (let row = 0; row < 3; row++) {
      for (let column = 0; column < 4; column++) {
        const response = await get(`/images/${cids[1]}/tiles/0/${column}/${row}`)
        expect(response.statusCode).toBe(200)
        const ref = response.headers['x-tessera-tile-ref'] as string | undefined
        const codec = response.headers['x-tessera-codec'] as string
        if (ref === undefined) {
          expect(codec).not.toMatch(/delta/)
          continue
        }
        deltas++
        expect(codec).toMatch(/; delta$/)
        const reference = await get(`/ipfs/${ref}?format=raw`)
        expect(reference.statusCode).toBe(200)
        const dictionary = coder.decompress(bytesOf(reference), new Uint8Array(32 * 32 * 3))
        const tile = coder.decode(bytesOf(response), undefined, dictionary)
        const x = column * 32
        const y = row * 32
        const width = Math.min(32, 100 - x)
        const height = Math.min(32, 70 - y)
        const rows: Uint8Array[] = []
        for (let r = 0; r < height; r++) rows.push(tile.subarray(r * 32 * 3, r * 32 * 3 + width * 3))
        expect(Buffer.concat(rows)).toEqual(Buffer.from(naiveCrop(frames[1]!, { x, y, width, height })))
      }
    }
    expect(deltas).toBeGreaterThan(0)
  })

  it('decodes delta tiles to raw, crops across them, and sends the references in the CAR', async () => {
    const tile = await get(`/images/${cids[1]}/tiles/0/1/0?format=raw`)
    expect(bytesOf(tile)).toEqual(naiveCrop(frames[1]!, { x: 32, y: 0, width: 32, height: 32 }))
    const region = { x: 5, y: 3, width: 90, height: 60 }
    const crop = await get(`/images/${cids[1]}/crop?region=5,3,90,60&format=raw`)
    expect(bytesOf(crop)).toEqual(naiveCrop(frames[1]!, region))
    const car = CarBufferReader.fromBytes(bytesOf(await get(`/ipfs/${cids[1]}?format=car`)))
    const inCar = new Set(car.blocks().map((block) => block.cid.toString()))
    for (let column = 0; column < 4; column++) {
      const ref = (await get(`/images/${cids[1]}/tiles/0/${column}/0`)).headers['x-tessera-tile-ref'] as string | undefined
      if (ref !== undefined) expect(inCar.has(ref)).toBe(true)
    }
  })
})
