/**
 * Every route through app.inject(): images, manifests, tiles, crops and exports in every
 * format (byte for byte what the library writes), caching and ranges, uploads and their
 * limits, and the error paths (bad CIDs, path tricks, absurd regions, hidden 5xx internals).
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { IntegrityError } from '../../src/errors.js'
import { createServer } from '../../src/http/server.js'
import { cropImage, importImage, OUTPUT_FORMAT_NAMES, OUTPUT_FORMATS, openImage } from '../../src/image.js'
import { makeImage, naiveCrop, writePam } from '../helpers/oracle.js'
import { bytesOf, decode, type Fixture, fixture, importTestImage } from './helpers.js'

let fx: Fixture
const source = makeImage(300, 200, 3, 8, 11)
const gray16 = makeImage(100, 90, 1, 16, 4)
let cid: string
let grayCid: string

beforeAll(async () => {
  fx = await fixture()
  cid = await importTestImage(fx, 'main', source)
  grayCid = await importTestImage(fx, 'gray16', gray16, { tileSize: 32, pyramid: false })
})
afterAll(async () => {
  await fx.close()
})

function get(url: string, headers: Record<string, string> = {}) {
  return fx.app.inject({ method: 'GET', url, headers })
}

async function libraryBytes(id: string, region: { x: number; y: number; width: number; height: number }, options: object): Promise<Buffer> {
  const parts: Uint8Array[] = []
  for await (const chunk of await cropImage(await openImage(fx.store.inner, id), region, options)) parts.push(chunk)
  return Buffer.concat(parts)
}

describe('service and images', () => {
  it('describes itself at /', async () => {
    const response = await get('/')
    expect(response.statusCode).toBe(200)
    expect(JSON.parse(response.body)).toMatchObject({ service: 'tessera', images: '/images' })
  })

  it('lists the stored images, not cached', async () => {
    const response = await get('/images')
    expect(response.statusCode).toBe(200)
    expect(response.headers['cache-control']).toBe('no-store')
    const { images } = JSON.parse(response.body)
    expect(images.map((i: { cid: string }) => i.cid).sort()).toEqual([cid, grayCid].sort())
    expect(images[0]).toHaveProperty('view')
  })

  it('serves the manifest as JSON with links as {"/": cid}, immutable', async () => {
    const response = await get(`/images/${cid}`)
    expect(response.statusCode).toBe(200)
    expect(response.headers['content-type']).toBe('application/json; charset=utf-8')
    expect(response.headers['cache-control']).toBe('public, max-age=31536000, immutable')
    const manifest = JSON.parse(response.body)
    expect(manifest).toMatchObject({ tessera: 1, width: 300, height: 200, colorModel: 'rgb', tileSize: 64, codec: { name: 'zstd' } })
    expect(manifest.levels).toHaveLength(4)
    expect(manifest.levels[0].rows[0]).toEqual({ '/': expect.stringMatching(/^bafyrei/) })
    expect(manifest.metadata.source).toEqual({ format: 'pnm', name: 'main.pam' })
  })

  it('describes an image', async () => {
    const info = JSON.parse((await get(`/images/${cid}/info`)).body)
    expect(info).toMatchObject({ cid, width: 300, height: 200, channels: 3 })
    expect(info.levels[0]).toMatchObject({ columns: 5, rows: 4, tiles: 20 })
  })

  it('answers HEAD with the headers of GET and no body', async () => {
    const [head, full] = await Promise.all([fx.app.inject({ method: 'HEAD', url: `/images/${cid}` }), get(`/images/${cid}`)])
    expect(head.statusCode).toBe(200)
    expect(head.rawPayload.length).toBe(0)
    expect(head.headers['content-length']).toBe(full.headers['content-length'])
    expect(head.headers.etag).toBe(full.headers.etag)
  })
})

describe('tiles', () => {
  it('serves the stored payload with its geometry and codec', async () => {
    const response = await get(`/images/${cid}/tiles/0/4/3`)
    expect(response.statusCode).toBe(200)
    expect(response.headers['content-type']).toBe('application/zstd')
    expect(response.headers).toMatchObject({
      'x-tessera-tile-size': '64',
      'x-tessera-region': '256,192,44,8',
      'x-tessera-width': '44',
      'x-tessera-height': '8',
      'x-tessera-channels': '3',
      'x-tessera-bits-per-sample': '8',
      'x-tessera-color-model': 'rgb',
      'x-tessera-codec': 'zstd; level=3; predictor=2',
    })
    const tile = response.headers['x-tessera-tile-cid'] as string
    const { CID } = await import('multiformats/cid')
    expect(Buffer.from(bytesOf(response)).equals(Buffer.from(await fx.store.inner.get(CID.parse(tile))))).toBe(true)
    // zstd frame magic
    expect([...bytesOf(response).subarray(0, 4)]).toEqual([0x28, 0xb5, 0x2f, 0xfd])
  })

  it('decodes a tile to png, npy, raw, tiff, pam on request (the valid pixels only)', async () => {
    const raw = await get(`/images/${cid}/tiles/0/4/3?format=raw`)
    expect(Buffer.from(bytesOf(raw)).equals(Buffer.from(naiveCrop(source, { x: 256, y: 192, width: 44, height: 8 })))).toBe(true)
    for (const format of ['png', 'npy', 'tiff', 'pam']) {
      const response = await get(`/images/${cid}/tiles/1/1/1?format=${format}`)
      expect(response.statusCode).toBe(200)
      const expected = await libraryBytes(cid, { x: 64, y: 64, width: 64, height: 36 }, { level: 1, format })
      expect(Buffer.from(bytesOf(response)).equals(expected), format).toBe(true)
    }
  })

  it.each([
    ['a level the image lacks', '9/0/0', 404],
    ['a column past the grid', '0/5/0', 404],
    ['a row past the grid', '0/0/4', 404],
    ['a negative coordinate', '0/-1/0', 400],
    ['a non-integer', '0/1.5/0', 400],
    ['an absurd number', '0/99999999999999999999/0', 400],
  ])('%s is a %i', async (_name, path, status) => {
    const response = await get(`/images/${cid}/tiles/${path}`)
    expect(response.statusCode).toBe(status)
    expect(JSON.parse(response.body).code).toBe(status === 404 ? 'ERR_NOT_FOUND' : 'ERR_INVALID_ARGUMENT')
  })
})

describe('crops and exports', () => {
  const region = { x: 30, y: 20, width: 150, height: 100 }
  const regionText = '30,20,150,100'
  it.each([
    ['tiff', {}],
    ['tiff', { compression: 'deflate' }],
    ['tiff', { compression: 'none' }],
    ['png', {}],
    ['png', { compression: 'none' }],
    ['npy', {}],
    ['pam', {}],
    ['ppm', {}],
    ['raw', {}],
    ['jpg', {}],
    ['webp', {}],
  ] as const)('%s %o is byte for byte what the library writes', async (format, options) => {
    const query = new URLSearchParams({ region: regionText, format, ...options })
    const response = await get(`/images/${cid}/crop?${query}`)
    expect(response.statusCode, response.body.slice(0, 200)).toBe(200)
    const expected = await libraryBytes(cid, region, { format, ...options })
    expect(Buffer.from(bytesOf(response)).equals(expected)).toBe(true)
    expect(response.headers['x-tessera-region']).toBe(regionText)
    expect(response.headers['content-type']).toBe(OUTPUT_FORMATS[format].mediaType)
    expect(response.headers['content-disposition']).toMatch(new RegExp(`\\.${OUTPUT_FORMATS[format].extensions[0]}"$`))
    if (response.headers['content-length'] !== undefined) expect(Number(response.headers['content-length'])).toBe(expected.length)
  })

  it.each(
    OUTPUT_FORMAT_NAMES.filter((format) => format !== 'ppm'),
  )('%s of a gray 16-bit image, tile-aligned, is byte for byte what the library writes, ranges included', async (format) => {
    const aligned = { x: 32, y: 32, width: 60, height: 50 }
    const url = `/images/${grayCid}/crop?region=32,32,60,50&format=${format}`
    const response = await get(url)
    const expected = await libraryBytes(grayCid, aligned, { format })
    expect(Buffer.from(bytesOf(response)).equals(expected)).toBe(true)
    if (response.headers['accept-ranges'] !== 'bytes') return
    const ranged = await get(url, { range: 'bytes=5-200' })
    expect(ranged.statusCode).toBe(206)
    expect(Buffer.from(bytesOf(ranged)).equals(expected.subarray(5, 201))).toBe(true)
  })

  it('reads only the payloads a range of a copied TIFF covers', async () => {
    const url = `/images/${cid}/crop?region=64,64,200,100&format=tiff`
    const expected = await libraryBytes(cid, { x: 64, y: 64, width: 200, height: 100 }, { format: 'tiff' })
    await get(url) // the image and its index blocks are then open
    fx.store.reset()
    const tail = await get(url, { range: 'bytes=-10' })
    expect(tail.statusCode).toBe(206)
    expect(Buffer.from(bytesOf(tail)).equals(expected.subarray(expected.length - 10))).toBe(true)
    // Only the last tile's payload (raw blocks are bafkrei...), not the 7 before it.
    expect(fx.store.reads.filter((r) => r.startsWith('bafkrei'))).toHaveLength(1)
    fx.store.reset()
    const head = await get(url, { range: 'bytes=0-99' })
    expect(Buffer.from(bytesOf(head)).equals(expected.subarray(0, 100))).toBe(true)
    expect(fx.store.reads.filter((r) => r.startsWith('bafkrei'))).toEqual([])
  })

  it('streams jpg and webp without a length, so without ranges (spec/http.md §3)', async () => {
    const response = await get(`/images/${cid}/crop?region=${regionText}&format=webp`, { range: 'bytes=0-9' })
    expect(response.statusCode).toBe(200)
    expect(response.headers['accept-ranges']).toBe('none')
  })

  it('exposes every X-Tessera header to cross-origin readers', async () => {
    for (const url of [`/images/${cid}/tiles/0/1/1`, `/images/${cid}/crop?region=${regionText}&format=raw`]) {
      const response = await get(url)
      const exposed = String(response.headers['access-control-expose-headers']).toLowerCase().split(', ')
      const tessera = Object.keys(response.headers).filter((name) => name.startsWith('x-tessera-'))
      expect(tessera.length).toBeGreaterThan(5)
      expect(tessera.filter((name) => !exposed.includes(name))).toEqual([])
    }
  })

  it('streams a tile-aligned zstd TIFF from the stored payloads, with a known length', async () => {
    const response = await get(`/images/${cid}/crop?region=64,64,200,100&format=tiff`)
    const expected = await libraryBytes(cid, { x: 64, y: 64, width: 200, height: 100 }, { format: 'tiff' })
    expect(Buffer.from(bytesOf(response)).equals(expected)).toBe(true)
    expect(response.headers['content-length']).toBe(String(expected.length))
    expect(response.headers['accept-ranges']).toBe('bytes')
  })

  it('exports a whole level', async () => {
    const response = await get(`/images/${cid}/export?level=2&format=raw`)
    expect(response.headers['x-tessera-region']).toBe('0,0,75,50')
    expect(bytesOf(response).length).toBe(75 * 50 * 3)
  })

  it('keeps 16-bit samples (png decoded by libvips)', async () => {
    const response = await get(`/images/${grayCid}/crop?region=10,10,50,40&format=png`)
    const [image] = await decode({ bytes: bytesOf(response), ext: 'png' })
    expect([image!.channels, image!.bitsPerSample]).toEqual([1, 16])
    expect(Buffer.from(image!.data).equals(Buffer.from(naiveCrop(gray16, { x: 10, y: 10, width: 50, height: 40 })))).toBe(true)
  })

  it('encodes jpg and webp for browsers', async () => {
    const [jpg, webp] = await Promise.all([
      get(`/images/${cid}/crop?region=${regionText}&format=jpg`),
      get(`/images/${cid}/crop?region=${regionText}&format=webp`),
    ])
    expect([jpg.headers['content-type'], webp.headers['content-type']]).toEqual(['image/jpeg', 'image/webp'])
    const images = await decode({ bytes: bytesOf(jpg), ext: 'jpg' }, { bytes: bytesOf(webp), ext: 'webp' })
    expect(images.map((i) => [i.width, i.height])).toEqual([
      [150, 100],
      [150, 100],
    ])
  })

  it('clips on request', async () => {
    const response = await get(`/images/${cid}/crop?region=250,150,100,100&clip=true&format=raw`)
    expect(response.headers['x-tessera-region']).toBe('250,150,50,50')
    expect(Buffer.from(bytesOf(response)).equals(Buffer.from(naiveCrop(source, { x: 250, y: 150, width: 50, height: 50 })))).toBe(true)
  })

  it.each([
    ['past the image', 'region=250,150,100,100', 'ERR_INVALID_REGION'],
    ['empty', 'region=0,0,0,10', 'ERR_INVALID_REGION'],
    ['negative', 'region=-1,0,10,10', 'ERR_INVALID_REGION'],
    ['absurd', 'region=0,0,99999999999999999,1', 'ERR_INVALID_REGION'],
    ['not four numbers', 'region=1,2,3', 'ERR_INVALID_REGION'],
    ['missing', 'format=png', 'ERR_INVALID_REGION'],
    ['clipped to nothing', 'region=400,400,10,10&clip=1', 'ERR_INVALID_REGION'],
    ['an unknown format', 'region=0,0,1,1&format=gif', 'ERR_INVALID_ARGUMENT'],
    ['a level the image lacks', 'region=0,0,1,1&level=7', 'ERR_INVALID_ARGUMENT'],
    ['ppm of a gray image', 'region=0,0,1,1&format=pgm&level=0', undefined],
    ['an unknown parameter', 'region=0,0,1,1&colour=red', 'ERR_INVALID_ARGUMENT'],
    ['a repeated parameter', 'region=0,0,1,1&region=0,0,2,2', 'ERR_INVALID_ARGUMENT'],
    ['png with zstd', 'region=0,0,1,1&format=png&compression=zstd', 'ERR_INVALID_ARGUMENT'],
  ])('%s is a 400', async (_name, query, code) => {
    const response = await get(`/images/${cid}/crop?${query}`)
    expect(response.statusCode).toBe(400)
    expect(JSON.parse(response.body).code).toBe(code ?? 'ERR_INVALID_ARGUMENT')
  })

  it('refuses a jpg larger than the output limits', async () => {
    const app = await createServer({ store: fx.store, limits: { maxArea: 1000 } })
    const response = await app.inject({ url: `/images/${cid}/crop?region=0,0,100,100&format=jpg` })
    expect(response.statusCode).toBe(400)
    expect(JSON.parse(response.body).code).toBe('ERR_LIMIT')
    await app.close()
  })
})

describe('caching and ranges', () => {
  it('answers If-None-Match with 304 and does no work', async () => {
    const first = await get(`/images/${cid}/crop?region=0,0,100,100&format=png`)
    const etag = first.headers.etag as string
    expect(etag).toMatch(/^"bafyrei[a-z0-9]+\.crop\.[A-Za-z0-9_-]+"$/)
    fx.store.reset()
    const again = await get(`/images/${cid}/crop?region=0,0,100,100&format=png`, { 'if-none-match': `"other", ${etag}` })
    expect(again.statusCode).toBe(304)
    expect(again.rawPayload.length).toBe(0)
    expect(again.headers.etag).toBe(etag)
    expect(fx.store.reads.filter((r) => r.startsWith('bafkrei'))).toEqual([])
    // Another request has another ETag.
    expect((await get(`/images/${cid}/crop?region=0,0,100,101&format=png`)).headers.etag).not.toBe(etag)
    expect((await get(`/images/${cid}/crop?region=0,0,100,100&format=png`, { 'if-none-match': '*' })).statusCode).toBe(304)
  })

  const ranged = [
    ['a tile payload', () => `/images/${cid}/tiles/0/1/1`],
    ['a raw crop', () => `/images/${cid}/crop?region=5,5,100,100&format=raw`],
    ['a verbatim TIFF', () => `/images/${cid}/export?format=tiff`],
    ['an uncompressed TIFF', () => `/images/${cid}/crop?region=5,5,100,100&format=tiff&compression=none`],
    ['an npy', () => `/images/${cid}/crop?region=5,5,100,100&format=npy`],
    ['a raw block', () => `/ipfs/${cid}?format=raw`],
    ['a CAR', () => `/ipfs/${cid}?format=car`],
  ] as const
  it.each(ranged)('serves byte ranges of %s', async (_name, url) => {
    const full = bytesOf(await get(url()))
    const n = full.length
    for (const [range, first, last] of [
      ['bytes=0-0', 0, 0],
      ['bytes=10-99', 10, 99],
      [`bytes=${n - 7}-`, n - 7, n - 1],
      ['bytes=-5', n - 5, n - 1],
      [`bytes=100-${n + 1000}`, 100, n - 1],
      [`bytes=${Math.floor(n / 2)}-${Math.floor(n / 2) + 300}`, Math.floor(n / 2), Math.min(n - 1, Math.floor(n / 2) + 300)],
    ] as const) {
      const response = await get(url(), { range })
      expect(response.statusCode, range).toBe(206)
      expect(response.headers['content-range']).toBe(`bytes ${first}-${last}/${n}`)
      expect(Buffer.from(bytesOf(response)).equals(Buffer.from(full.subarray(first, last + 1))), range).toBe(true)
    }
    const unsatisfiable = await get(url(), { range: `bytes=${n}-` })
    expect(unsatisfiable.statusCode).toBe(416)
    expect(unsatisfiable.headers['content-range']).toBe(`bytes */${n}`)
    // Several ranges, or an If-Range that does not match: the whole representation.
    expect((await get(url(), { range: 'bytes=0-1,5-6' })).statusCode).toBe(200)
    expect((await get(url(), { range: 'bytes=0-1', 'if-range': '"stale"' })).statusCode).toBe(200)
    const etag = (await get(url())).headers.etag as string
    expect((await get(url(), { range: 'bytes=0-1', 'if-range': etag })).statusCode).toBe(206)
  })

  it('says so when a representation has no ranges', async () => {
    const response = await get(`/images/${cid}/crop?region=5,5,100,100&format=png`, { range: 'bytes=0-9' })
    expect(response.statusCode).toBe(200)
    expect(response.headers['accept-ranges']).toBe('none')
  })
})

describe('uploads', () => {
  async function pam(image = makeImage(120, 80, 3, 8, 21)): Promise<Buffer> {
    const path = join(fx.dir, `upload-${Math.random()}.pam`)
    await writePam(path, image)
    return readFile(path)
  }

  it('imports a POSTed body and answers with its CID and manifest location', async () => {
    const body = await pam()
    const response = await fx.app.inject({
      method: 'POST',
      url: '/images?name=scan.pam&pyramid=true&tileSize=32',
      payload: body,
      headers: { 'content-type': 'image/x-portable-arbitrarymap' },
    })
    expect(response.statusCode, response.body).toBe(201)
    const result = JSON.parse(response.body)
    expect(response.headers.location).toBe(`/images/${result.cid}`)
    expect(result).toMatchObject({ width: 120, height: 80, levels: 3, manifest: `/images/${result.cid}` })
    // Deterministic: the same bytes, name and parameters give the library's CID.
    const path = join(fx.dir, 'scan.pam')
    await (await import('node:fs/promises')).writeFile(path, body)
    const expected = await importImage(fx.store.inner, path, { pyramid: true, tileSize: 32, workers: 0 })
    expect(result.cid).toBe(expected.cid.toString())
    const manifest = JSON.parse((await get(result.manifest)).body)
    expect(manifest.metadata.source).toEqual({ format: 'pnm', name: 'scan.pam' })
    // PUT of the same body is idempotent: nothing new, 200.
    const again = await fx.app.inject({ method: 'PUT', url: '/images?name=scan.pam&pyramid=1&tileSize=32', payload: body })
    expect(again.statusCode).toBe(200)
    expect(JSON.parse(again.body).cid).toBe(result.cid)
  })

  it('chooses the codec from the content with zstdLevel=auto and predictor=auto, as the library does', async () => {
    const body = await pam()
    const response = await fx.app.inject({
      method: 'POST',
      url: '/images?name=auto.pam&tileSize=32&zstdLevel=auto&predictor=auto',
      payload: body,
    })
    expect(response.statusCode, response.body).toBe(201)
    const path = join(fx.dir, 'auto.pam')
    await (await import('node:fs/promises')).writeFile(path, body)
    const expected = await importImage(fx.store.inner, path, { tileSize: 32, zstdLevel: 'auto', predictor: 'auto', workers: 0 })
    expect(JSON.parse(response.body).cid).toBe(expected.cid.toString())
    const bad = await fx.app.inject({ method: 'POST', url: '/images?zstdLevel=fast', payload: body })
    expect(bad.statusCode).toBe(400)
  })

  it.each([
    ['an empty body', () => Buffer.alloc(0), '', 415, 'ERR_UNSUPPORTED_FORMAT'],
    ['text', () => Buffer.from('hello, world'), '', 415, 'ERR_UNSUPPORTED_FORMAT'],
    ['a truncated PNG', async () => (await readFile('testdata/rgb8.png')).subarray(0, 200), '', 422, 'ERR_CORRUPT_INPUT'],
    ['a bad name', async () => pam(), '?name=../x', 400, 'ERR_INVALID_ARGUMENT'],
    ['a bad tile size', async () => pam(), '?tileSize=17', 400, 'ERR_INVALID_ARGUMENT'],
    ['an unknown parameter', async () => pam(), '?owner=me', 400, 'ERR_INVALID_ARGUMENT'],
  ])('refuses %s with %i, leaving the store as it was', async (_name, body, query, status, code) => {
    const before = [...fx.store.inner.blocks.keys()].length
    const response = await fx.app.inject({ method: 'POST', url: `/images${query}`, payload: await body() })
    expect(response.statusCode).toBe(status)
    expect(JSON.parse(response.body).code).toBe(code)
    expect([...fx.store.inner.blocks.keys()].length).toBe(before)
  })

  it('enforces the byte and pixel limits with 413', async () => {
    const app = await createServer({ store: fx.store, tmpDir: fx.dir, limits: { maxUploadBytes: 1000, maxUploadPixels: 5000 } })
    const declared = await app.inject({ method: 'POST', url: '/images', payload: Buffer.alloc(2000) })
    expect(declared.statusCode).toBe(413)
    expect(JSON.parse(declared.body).code).toBe('ERR_LIMIT')
    const pixels = await app.inject({ method: 'POST', url: '/images', payload: await pam(makeImage(100, 60, 1, 8)) })
    expect(pixels.statusCode).toBe(413)
    const big = await createServer({ store: fx.store, tmpDir: fx.dir, limits: { maxUploadBytes: 100 } })
    // Without Content-Length (chunked), the limit is counted as the body streams in.
    const { Readable } = await import('node:stream')
    const streamed = await big.inject({ method: 'POST', url: '/images', payload: Readable.from([Buffer.alloc(80), Buffer.alloc(80)]) })
    expect(streamed.statusCode).toBe(413)
    await app.close()
    await big.close()
  })
})

describe('robustness', () => {
  it.each([
    ['/images/not-a-cid', 400, 'ERR_INVALID_CID'],
    ['/images/..%2F..%2Fetc%2Fpasswd', 400, 'ERR_INVALID_CID'],
    [`/images/${'b'.repeat(200)}`, 400, 'ERR_INVALID_CID'],
    [`/images/${'b'.repeat(5000)}`, 400, 'ERR_INVALID_CID'],
    [`/images/${'b'.repeat(9000)}`, 414, 'FST_ERR_MAX_PARAM_LENGTH'],
    ['/images/bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy', 400, 'ERR_INVALID_CID'],
    ['/images/bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy', 404, 'ERR_NOT_FOUND'],
    ['/images/QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG', 400, 'ERR_INVALID_CID'],
    ['/viewer/..%2F..%2Fpackage.json', 404, 'ERR_NOT_FOUND'],
    ['/viewer/images/..%2F..%2F..%2Fpackage.json', 404, 'ERR_NOT_FOUND'],
    ['/viewer/../../package.json', 404, 'ERR_NOT_FOUND'],
    ['/../../etc/passwd', 404, 'ERR_NOT_FOUND'],
    ['/images?x=1', 400, 'ERR_INVALID_ARGUMENT'],
  ])('%s is a %i with a JSON error', async (url, status, code) => {
    const response = await get(url)
    expect(response.statusCode).toBe(status)
    expect(response.headers['content-type']).toBe('application/json; charset=utf-8')
    expect(JSON.parse(response.body)).toMatchObject({ statusCode: status, code })
  })

  it('answers a block that is not an image root with 400, not 500', async () => {
    const manifest = JSON.parse((await get(`/images/${cid}`)).body)
    const row = manifest.levels[0].rows[0]['/']
    const response = await get(`/images/${row}`)
    expect(response.statusCode).toBe(400)
    expect(JSON.parse(response.body).code).toBe('ERR_INVALID_CID')
  })

  it('hides internals in 5xx bodies', async () => {
    const app = await createServer({ store: fx.store })
    fx.store.beforeRead = async (read) => {
      if (read.toString().startsWith('bafkrei')) throw new Error('secret path /var/lib/x exploded')
    }
    try {
      const response = await app.inject({ url: `/images/${cid}/crop?region=0,0,10,10&format=raw` })
      expect(response.statusCode).toBe(500)
      expect(JSON.parse(response.body)).toEqual({
        statusCode: 500,
        error: 'Internal Server Error',
        code: 'ERR_INTERNAL',
        message: 'Internal Server Error',
      })
      fx.store.beforeRead = async () => {
        throw new IntegrityError('Block bafk... does not match its hash (pack 7 offset 1234)')
      }
      const corrupt = await app.inject({ url: `/images/${cid}/tiles/0/0/0` })
      expect(corrupt.statusCode).toBe(500)
      expect(JSON.parse(corrupt.body)).toMatchObject({ code: 'ERR_INTEGRITY', message: 'Internal Server Error' })
    } finally {
      fx.store.beforeRead = undefined
      await app.close()
    }
  })

  it('queues decode work and refuses beyond the queue with 503', async () => {
    const app = await createServer({ store: fx.store, limits: { concurrency: 1, queue: 1 } })
    let open!: () => void
    const gate = new Promise<void>((resolve) => {
      open = resolve
    })
    fx.store.beforeRead = async (read) => {
      if (read.toString().startsWith('bafkrei')) await gate
    }
    try {
      const url = (n: number) => `/images/${cid}/crop?region=0,0,${n},10&format=png`
      const first = app.inject({ url: url(10) })
      const second = app.inject({ url: url(11) })
      // Let both reach the queue before the third arrives.
      await new Promise((resolve) => setImmediate(resolve))
      await new Promise((resolve) => setImmediate(resolve))
      const third = await app.inject({ url: url(12) })
      expect(third.statusCode).toBe(503)
      expect(third.headers['retry-after']).toBe('1')
      expect(JSON.parse(third.body).code).toBe('ERR_BUSY')
      open()
      expect((await first).statusCode).toBe(200)
      expect((await second).statusCode).toBe(200)
    } finally {
      fx.store.beforeRead = undefined
      await app.close()
    }
  })
})
