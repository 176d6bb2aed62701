/**
 * `POST /crop`: a region of the request body's image, cropped while the body arrives. Exact
 * against a naive crop (raw) and libvips (png, tiff); the server answers before the client has
 * sent the whole body and stops reading it; bad requests get coded errors and store nothing.
 */
import { request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { exportCar } from '../../src/car/export.js'
import type { Region } from '../../src/format/interface.js'
import { decodeManifest, decodeTileRow } from '../../src/format/manifest.js'
import { importImage, openStore } from '../../src/image.js'
import { makeImage, naiveCrop, type TestImage, writePam } from '../helpers/oracle.js'
import { encodePng } from '../stream/png-encoder.js'
import { stripTiff } from '../stream/tiff-builder.js'
import { decode, type Fixture, fixture } from './helpers.js'

let fx: Fixture
let base: string

/** A PNG of `image` (8 or 16 bits, 1 to 4 channels). */
function pngOf(image: TestImage, idatBytes = 997): Uint8Array {
  const colorType = ({ 1: 0, 2: 4, 3: 2, 4: 6 } as const)[image.channels as 1 | 2 | 3 | 4]
  const samples = image.bits === 8 ? image.data : new Uint16Array(image.data.buffer.slice(0))
  return encodePng({ width: image.width, height: image.height, colorType, bitDepth: image.bits, samples, idatBytes })
}

/** The CAR of `image` (16-px tiles) with the first data byte of its first tile flipped. */
async function carWithBadTile(image: TestImage): Promise<Uint8Array> {
  const store = await openStore('memory:')
  try {
    const path = join(fx.dir, 'car-source.pam')
    await writePam(path, image)
    const { cid } = await importImage(store, path, { tileSize: 16, workers: 0 })
    const parts: Uint8Array[] = []
    for await (const part of exportCar(store, cid)) parts.push(part)
    const car = Buffer.concat(parts)
    const manifest = decodeManifest(await store.get(cid))
    const row = decodeTileRow(await store.get(manifest.levels[0]!.rows[0]!), 3)
    const at = car.indexOf(row.tiles[0]!.bytes) + row.tiles[0]!.bytes.length
    car[at]! ^= 0x01
    return car
  } finally {
    await store.close()
  }
}

interface Answer {
  readonly status: number
  readonly headers: Record<string, string | string[] | undefined>
  readonly body: Buffer
  /** Bytes of the request body the client had written when the response ended. */
  readonly sent: number
}

/**
 * POSTs `body` to `path` in `chunk`-byte writes, each after the previous one drained and, with
 * `pace`, a pause, and stops writing as soon as the response has ended: what a client that
 * streams an upload does.
 */
function post(
  path: string,
  body: Uint8Array,
  options: { chunk?: number; pace?: number; method?: string; length?: number; to?: string } = {},
): Promise<Answer> {
  const { chunk = 64 * 1024, pace = 0, method = 'POST', length, to = base } = options
  return new Promise((resolve, reject) => {
    let sent = 0
    let ended = false
    const headers = { 'content-type': 'application/octet-stream', ...(length === undefined ? {} : { 'content-length': String(length) }) }
    const req = httpRequest(`${to}${path}`, { method, headers })
    req.on('response', (res) => {
      const parts: Buffer[] = []
      res.on('data', (part: Buffer) => parts.push(part))
      res.on('end', () => {
        ended = true
        resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts), sent })
        req.destroy()
      })
      res.on('error', reject)
    })
    // The server may close the connection while this side still writes: not a failure.
    req.on('error', (error) => {
      if (!ended) reject(error)
    })
    const write = async () => {
      for (let at = 0; at < body.length && !ended; at += chunk) {
        const part = body.subarray(at, at + chunk)
        sent += part.length
        if (!req.write(part)) await new Promise((done) => req.once('drain', done))
        if (pace > 0) await new Promise((done) => setTimeout(done, pace))
      }
      if (!ended) req.end()
    }
    write().catch(() => undefined)
  })
}

/** The error code of a JSON error body, or `(not JSON)`. */
function errorCode(answer: Answer): string {
  try {
    return (JSON.parse(answer.body.toString()) as { code: string }).code
  } catch {
    return '(not JSON)'
  }
}

const query = (region: Region, extra = '') => `/crop?region=${region.x},${region.y},${region.width},${region.height}${extra}`

beforeAll(async () => {
  fx = await fixture({ limits: { maxUploadBytes: 32 << 20 } })
  await fx.app.listen({ host: '127.0.0.1', port: 0 })
  base = `http://127.0.0.1:${(fx.app.server.address() as AddressInfo).port}`
})
afterAll(async () => {
  await fx.close()
})

describe('POST /crop', () => {
  const cases: Array<[string, TestImage]> = [
    ['RGB 8-bit', makeImage(150, 97, 3, 8, 31)],
    ['gray+alpha 16-bit', makeImage(61, 80, 2, 16, 32)],
    ['gray 8-bit', makeImage(33, 40, 1, 8, 33)],
    ['RGBA 16-bit', makeImage(70, 50, 4, 16, 34)],
  ]
  for (const [name, image] of cases) {
    it(`crops a ${name} PNG to raw exactly, for the full image, 1x1 and an edge`, async () => {
      const png = pngOf(image)
      const regions: Region[] = [
        { x: 0, y: 0, width: image.width, height: image.height },
        { x: image.width - 1, y: image.height - 1, width: 1, height: 1 },
        { x: 5, y: 7, width: image.width - 5, height: 20 },
      ]
      for (const region of regions) {
        const answer = await post(query(region, '&format=raw'), png)
        expect(answer.status).toBe(200)
        expect(answer.headers['x-tessera-region']).toBe(`${region.x},${region.y},${region.width},${region.height}`)
        expect(answer.headers['x-tessera-source-format']).toBe('png')
        expect(answer.headers['cache-control']).toBe('no-store')
        expect(new Uint8Array(answer.body)).toEqual(naiveCrop(image, region))
      }
    })
  }

  it('writes png and tiff that libvips reads as the crop, from POST and PUT', async () => {
    const image = makeImage(300, 200, 3, 8, 35)
    const region = { x: 37, y: 41, width: 150, height: 120 }
    const png = await post(query(region, '&format=png'), pngOf(image))
    const tiff = await post(query(region, '&format=tiff&compression=deflate'), pngOf(image), { method: 'PUT' })
    expect(png.headers['content-type']).toBe('image/png')
    expect(tiff.headers['content-type']).toBe('image/tiff')
    const [a, b] = await decode({ bytes: png.body, ext: 'png' }, { bytes: tiff.body, ext: 'tif' })
    expect(a!.data).toEqual(naiveCrop(image, region))
    expect(b!.data).toEqual(naiveCrop(image, region))
  })

  it('crops a strip TIFF whose IFD comes first, and clips with clip=true', async () => {
    const image = makeImage(90, 70, 3, 8, 36)
    const tiff = stripTiff({ width: 90, height: 70, channels: 3, data: image.data, rowsPerStrip: 8 })
    const answer = await post(query({ x: 80, y: 60, width: 50, height: 50 }, '&format=raw&clip=true'), tiff)
    expect(answer.status).toBe(200)
    expect(answer.headers['x-tessera-region']).toBe('80,60,10,10')
    expect(new Uint8Array(answer.body)).toEqual(naiveCrop(image, { x: 80, y: 60, width: 10, height: 10 }))
  })

  it('answers before the whole body is sent and stops reading it', async () => {
    // 3 MB of PNG (incompressible pixels), sent in 16 KiB writes: a region in the top rows.
    const image = makeImage(1000, 1000, 3, 8, 37)
    const png = pngOf(image, 8192)
    const region = { x: 100, y: 10, width: 64, height: 32 }
    const answer = await post(query(region, '&format=raw'), png, { chunk: 16 * 1024, pace: 1 })
    expect(answer.status).toBe(200)
    expect(answer.headers.connection).toBe('close')
    expect(new Uint8Array(answer.body)).toEqual(naiveCrop(image, region))
    // The rows through 42 are about 4% of the file; the sockets' buffers hold a few hundred kB more.
    expect(answer.sent).toBeLessThan(png.length / 2)
  })

  it('refuses bad requests with coded errors and stores nothing', async () => {
    const image = makeImage(40, 30, 3, 8, 38)
    const png = pngOf(image)
    const before = await fx.store.storedBytes()
    const bad: Array<[string, Uint8Array, number, string]> = [
      ['/crop', png, 400, 'ERR_INVALID_REGION'],
      [query({ x: 0, y: 0, width: 41, height: 1 }), png, 400, 'ERR_INVALID_REGION'],
      [query({ x: 50, y: 0, width: 4, height: 4 }, '&clip=true'), png, 400, 'ERR_INVALID_REGION'],
      [query({ x: 0, y: 0, width: 4, height: 4 }, '&format=gif'), png, 400, 'ERR_INVALID_ARGUMENT'],
      [query({ x: 0, y: 0, width: 4, height: 4 }, '&nope=1'), png, 400, 'ERR_INVALID_ARGUMENT'],
      [query({ x: 0, y: 0, width: 4, height: 4 }), new TextEncoder().encode('not an image at all'), 415, 'ERR_UNSUPPORTED_FORMAT'],
      [query({ x: 0, y: 0, width: 4, height: 4 }), png.subarray(0, 60), 422, 'ERR_CORRUPT_INPUT'],
      // A block of the body that does not match its CID is the body's fault, not the store's.
      [query({ x: 0, y: 0, width: 40, height: 30 }), await carWithBadTile(image), 422, 'ERR_INTEGRITY'],
    ]
    const answers = []
    // An error answer must not pile listeners on the response (fastify waited on a returned
    // reply with listeners of its own: 11 'close' listeners, and Node's leak warning).
    const warnings: string[] = []
    const onWarning = (warning: Error) => {
      if (warning.name === 'MaxListenersExceededWarning') warnings.push(warning.message)
    }
    process.on('warning', onWarning)
    try {
      for (const [path, body] of bad) {
        const answer = await post(path, body)
        answers.push([path, answer.status, errorCode(answer)])
      }
      await new Promise((resolve) => setImmediate(resolve))
    } finally {
      process.off('warning', onWarning)
    }
    expect(answers).toEqual(bad.map(([path, , status, code]) => [path, status, code]))
    expect(warnings).toEqual([])
    // A declared length over the limit is refused before a byte is read.
    const declared = await post(query({ x: 0, y: 0, width: 4, height: 4 }), png, { length: (32 << 20) + 1 })
    expect([declared.status, errorCode(declared)]).toEqual([413, 'ERR_LIMIT'])
    expect(await fx.store.storedBytes()).toBe(before)
  })

  it('says when a TIFF on the wire keeps its IFD past what can be held', async () => {
    // 17 MB of pixels, then the IFD: past the 16 MiB a stream's TIFF header may span.
    const image = makeImage(2400, 2400, 3, 8, 39)
    const tiff = stripTiff({ width: 2400, height: 2400, channels: 3, data: image.data, rowsPerStrip: 16, ifdLast: true })
    const answer = await post(query({ x: 0, y: 0, width: 4, height: 4 }), tiff)
    expect([answer.status, errorCode(answer)]).toEqual([415, 'ERR_UNSUPPORTED_FORMAT'])
    expect(answer.body.toString()).toContain('pass a file')
  })

  it('stops a body that grows past the upload limit with 413', async () => {
    const small = await fixture({ limits: { maxUploadBytes: 1 << 20 } })
    try {
      await small.app.listen({ host: '127.0.0.1', port: 0 })
      const to = `http://127.0.0.1:${(small.app.server.address() as AddressInfo).port}`
      const image = makeImage(1000, 1000, 3, 8, 40)
      const answer = await post(query({ x: 0, y: 900, width: 8, height: 8 }), pngOf(image, 8192), { to })
      expect([answer.status, errorCode(answer)]).toEqual([413, 'ERR_LIMIT'])
      expect(answer.sent).toBeLessThan(3_000_000)
    } finally {
      await small.close()
    }
  })
})
