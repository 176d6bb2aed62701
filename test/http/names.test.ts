/**
 * Dataset names wherever a CID goes over HTTP (spec/http.md, Names): `/images/NAME/path...`
 * with plain or encoded slashes, IIIF identifiers URL-encoded, `/view/NAME/path`; names
 * resolved to the newest version at each request, cached briefly with the resolved image's
 * ETag, while responses by CID stay immutable.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { rewriteNamedUrl } from '../../src/http/names.js'
import { NAMED_MAX_AGE } from '../../src/http/response.js'
import { createServer } from '../../src/http/server.js'
import { type BlockStore, datasetHead, importDataset, openStore } from '../../src/index.js'
import { makeImage, naiveCrop, type TestImage, writePam } from '../helpers/oracle.js'
import { bytesOf, decode } from './helpers.js'

describe('rewriteNamedUrl', () => {
  it.each([
    // One segment: already an identifier, untouched.
    ['/images/bafyabc', '/images/bafyabc'],
    ['/images/bafyabc/crop?region=0,0,1,1', '/images/bafyabc/crop?region=0,0,1,1'],
    ['/images/shots%2Fa.png/info', '/images/shots%2Fa.png/info'],
    ['/images', '/images'],
    // The entry's path folded into one segment, the action kept.
    ['/images/shots/a.png', '/images/shots%2Fa.png'],
    ['/images/shots/2025/a.png/info', '/images/shots%2F2025%2Fa.png/info'],
    ['/images/shots/a.png/crop?region=0,0,4,4&format=png', '/images/shots%2Fa.png/crop?region=0,0,4,4&format=png'],
    ['/images/shots/a.png/export', '/images/shots%2Fa.png/export'],
    ['/images/shots/d/a.png/tiles/0/1/2?format=png', '/images/shots%2Fd%2Fa.png/tiles/0/1/2?format=png'],
    // `tiles` with fewer than three segments after it is part of the name.
    ['/images/shots/tiles/0/1', '/images/shots%2Ftiles%2F0%2F1'],
    ['/images/shots/a.png/tiles/0/-1/x', '/images/shots%2Fa.png/tiles/0/-1/x'],
    // A query's slashes are not the path's.
    ['/images/shots/a.png?x=/y/z', '/images/shots%2Fa.png?x=/y/z'],
    ['/view/shots/d/a.png', '/view/shots%2Fd%2Fa.png'],
    ['/view/bafyabc?drawer=canvas', '/view/bafyabc?drawer=canvas'],
    // IIIF identifiers must come encoded (Image API §9): never folded.
    ['/iiif/3/shots/a.png/info.json', '/iiif/3/shots/a.png/info.json'],
    ['/ipfs/bafyabc/x', '/ipfs/bafyabc/x'],
  ])('%s -> %s', (url, expected) => {
    expect(rewriteNamedUrl(url)).toBe(expected)
  })
})

describe('names over HTTP', () => {
  let dir: string
  let store: BlockStore
  let app: FastifyInstance
  const first = makeImage(120, 80, 3, 8, 21)
  const second = makeImage(120, 80, 3, 8, 22)
  const deep = makeImage(70, 50, 3, 8, 23)

  async function put(path: string, image: TestImage) {
    await mkdir(join(dir, 'src', path, '..'), { recursive: true })
    await writePam(join(dir, 'src', path), image)
  }

  function get(url: string, headers: Record<string, string> = {}) {
    return app.inject({ method: 'GET', url, headers })
  }

  /** The CID the name resolves to now (Content-Location of /images/NAME/path). */
  async function resolved(path: string): Promise<string> {
    const response = await get(`/images/${path}`)
    expect(response.statusCode, response.body).toBe(200)
    return String(response.headers['content-location']).split('/')[2]!
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tessera-http-names-'))
    await put('a.pam', first)
    await put('2025/06/deep.pam', deep)
    store = await openStore(join(dir, 'store'))
    await importDataset(store, 'shots', [join(dir, 'src')], { tileSize: 32, pyramid: true })
    app = await createServer({ store })
    await app.ready()
  })
  afterAll(async () => {
    await app?.close()
    await store?.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('serves an entry by name with plain or encoded slashes, cached briefly, with the CID response ETag', async () => {
    const cid = await resolved('shots/a.pam')
    const byCid = await get(`/images/${cid}`)
    expect(byCid.headers['cache-control']).toBe('public, max-age=31536000, immutable')
    expect(byCid.headers['content-location']).toBeUndefined()
    for (const url of ['/images/shots/a.pam', '/images/shots%2Fa.pam']) {
      const byName = await get(url)
      expect(byName.statusCode).toBe(200)
      expect(byName.headers['cache-control']).toBe(`public, max-age=${NAMED_MAX_AGE}`)
      expect(byName.headers.etag).toBe(byCid.headers.etag)
      expect(byName.headers['content-location']).toBe(`/images/${cid}`)
      expect(byName.body).toBe(byCid.body)
    }
  })

  it('crops, exports, tiles and info of an entry in a directory, the same as by CID', async () => {
    const cid = await resolved('shots/2025/06/deep.pam')
    const crop = await get('/images/shots/2025/06/deep.pam/crop?region=10,5,40,30&format=png')
    expect(crop.statusCode, crop.body).toBe(200)
    expect(crop.headers['content-location']).toBe(`/images/${cid}/crop?region=10,5,40,30&format=png`)
    const [image] = await decode({ bytes: bytesOf(crop), ext: 'png' })
    expect(Buffer.from(image!.data).equals(Buffer.from(naiveCrop(deep, { x: 10, y: 5, width: 40, height: 30 })))).toBe(true)
    for (const action of ['export?format=png', 'tiles/0/1/1', 'tiles/1/0/0?format=pam']) {
      const byName = await get(`/images/shots/2025/06/deep.pam/${action}`)
      const byCid = await get(`/images/${cid}/${action}`)
      expect(byName.statusCode, action).toBe(200)
      expect(bytesOf(byName)).toEqual(bytesOf(byCid))
      expect(byName.headers.etag).toBe(byCid.headers.etag)
      expect(byName.headers['cache-control']).toBe(`public, max-age=${NAMED_MAX_AGE}`)
    }
    const info = JSON.parse((await get('/images/shots/2025/06/deep.pam/info')).body)
    expect(info.cid).toBe(cid)
    expect(info.links.iiif).toBe(`/iiif/3/${encodeURIComponent('shots/2025/06/deep.pam')}/info.json`)
    expect(info.links.view).toBe(`/view/${encodeURIComponent('shots/2025/06/deep.pam')}`)
  })

  it('takes URL-encoded names as IIIF identifiers, and refuses unencoded slashes', async () => {
    const id = encodeURIComponent('shots/2025/06/deep.pam')
    const info = await get(`/iiif/3/${id}/info.json`)
    expect(info.statusCode, info.body).toBe(200)
    expect(info.headers['cache-control']).toBe(`public, max-age=${NAMED_MAX_AGE}`)
    expect(JSON.parse(info.body)).toMatchObject({ id: `http://localhost:80/iiif/3/${id}`, width: 70, height: 50 })
    // Escaped differently (- as %2D, as the validator's id_escaped does): the same document.
    expect(JSON.parse((await get(`/iiif/3/shots%2F2025%2F06%2Fdeep%2Epam/info.json`)).body).id).toBe(`http://localhost:80/iiif/3/${id}`)
    const image = await get(`/iiif/3/${id}/full/max/0/default.png`)
    expect(image.statusCode).toBe(200)
    expect(image.headers['cache-control']).toBe(`public, max-age=${NAMED_MAX_AGE}`)
    expect(image.headers.link).toContain(`/iiif/3/${id}/full/max/0/default.png>;rel="canonical"`)
    const [decoded] = await decode({ bytes: bytesOf(image), ext: 'png' })
    expect(Buffer.from(decoded!.data).equals(Buffer.from(deep.data))).toBe(true)
    const redirect = await get(`/iiif/3/${id}`)
    expect(redirect.statusCode).toBe(303)
    expect(redirect.headers.location).toBe(`http://localhost:80/iiif/3/${id}/info.json`)
    expect(redirect.headers['cache-control']).toBe(`public, max-age=${NAMED_MAX_AGE}`)
    for (const url of ['/iiif/3/shots/a.pam/info.json', '/iiif/3/shots/a.pam/full/max/0/default.jpg']) {
      expect((await get(url)).statusCode, url).toBe(404)
    }
  })

  it('opens the viewer by name, its links climbing out of the name', async () => {
    const page = await get('/view/shots/2025/06/deep.pam')
    expect(page.statusCode, page.body).toBe(200)
    expect(page.headers['cache-control']).toBe(`public, max-age=${NAMED_MAX_AGE}`)
    expect(page.body).toContain(`data-info="../../../../iiif/3/${encodeURIComponent('shots/2025/06/deep.pam')}/info.json"`)
    expect(page.body).toContain('src="../../../../viewer/openseadragon.min.js"')
    const encoded = await get(`/view/${encodeURIComponent('shots/a.pam')}`)
    expect(encoded.body).toContain(`data-info="../iiif/3/${encodeURIComponent('shots/a.pam')}/info.json"`)
  })

  it.each([
    ['a missing entry', '/images/shots/nope.pam', 404, 'ERR_NOT_FOUND'],
    ['a dataset', '/images/shots', 400, 'ERR_INVALID_ARGUMENT'],
    ['a word that is no dataset', '/images/nosuch', 400, 'ERR_INVALID_CID'],
    ['a missing dataset', '/images/nosuch/a.pam', 404, 'ERR_NOT_FOUND'],
    ['a directory', '/images/shots/2025', 400, 'ERR_INVALID_ARGUMENT'],
    // Dot segments are resolved before routing: this asks for /images/a.pam.
    ['a path with ..', '/images/shots/../a.pam', 400, 'ERR_INVALID_CID'],
    ['a malformed name', '/images/-x/a.pam', 400, 'ERR_INVALID_CID'],
    ['a missing IIIF entry', `/iiif/3/${encodeURIComponent('shots/nope.pam')}/info.json`, 404, 'ERR_NOT_FOUND'],
    ['a malformed IIIF identifier', `/iiif/3/${encodeURIComponent('shots//a.pam')}/info.json`, 404, 'ERR_INVALID_CID'],
  ])('%s is a %s', async (_what, url, status, code) => {
    const response = await get(url)
    expect(response.statusCode, response.body).toBe(status)
    expect(JSON.parse(response.body).code).toBe(code)
  })

  it('allows any origin on every image and tile response, by name or by CID, errors and 304s included', async () => {
    const cid = await resolved('shots/a.pam')
    const id = encodeURIComponent('shots/a.pam')
    const origin = { origin: 'http://127.0.0.1:9' }
    const urls = [
      `/images/${cid}`,
      '/images/shots/a.pam',
      '/images/shots/a.pam/info',
      '/images/shots/a.pam/crop?region=0,0,8,8&format=png',
      '/images/shots/a.pam/export?format=jpg',
      '/images/shots/a.pam/tiles/0/0/0',
      `/images/${cid}/tiles/0/0/0?format=png`,
      `/iiif/3/${id}/info.json`,
      `/iiif/3/${id}/full/max/0/default.jpg`,
      `/iiif/3/${cid}/0,0,32,32/32,/0/default.jpg`,
      `/iiif/3/${id}/manifest`,
      '/iiif/3/shots/collection',
      '/view/shots/a.pam',
      '/images/shots/nope.pam',
      `/iiif/3/${cid}/full/max/0/default.gif`,
      '/no/such/route',
    ]
    for (const url of urls) {
      const response = await get(url, origin)
      expect(response.headers['access-control-allow-origin'], url).toBe('*')
      if (response.statusCode === 200 && response.headers.etag !== undefined) {
        const cached = await get(url, { ...origin, 'if-none-match': String(response.headers.etag) })
        expect(cached.statusCode, url).toBe(304)
        expect(cached.headers['access-control-allow-origin'], url).toBe('*')
      }
    }
    // A cross-origin script may read which CID a name resolved to.
    const named = await get('/images/shots/a.pam', origin)
    expect(String(named.headers['access-control-expose-headers'])).toContain('Content-Location')
  })

  it('resolves a name to the newest version at each request; a version CID stays put', async () => {
    const before = await resolved('shots/a.pam')
    const version = (await datasetHead(store, 'shots'))!.cid.toString()
    const old = await get('/images/shots/a.pam/crop?region=0,0,16,16&format=png')
    await put('a.pam', second)
    await importDataset(store, 'shots', [join(dir, 'src')], { tileSize: 32, pyramid: true })
    const after = await resolved('shots/a.pam')
    expect(after).not.toBe(before)
    // The old ETag no longer matches: the client gets the new image, not a 304.
    const fresh = await get('/images/shots/a.pam/crop?region=0,0,16,16&format=png', { 'if-none-match': String(old.headers.etag) })
    expect(fresh.statusCode).toBe(200)
    const [image] = await decode({ bytes: bytesOf(fresh), ext: 'png' })
    expect(Buffer.from(image!.data).equals(Buffer.from(naiveCrop(second, { x: 0, y: 0, width: 16, height: 16 })))).toBe(true)
    // Its own ETag revalidates to a 304.
    const again = await get('/images/shots/a.pam/crop?region=0,0,16,16&format=png', { 'if-none-match': String(fresh.headers.etag) })
    expect(again.statusCode).toBe(304)
    // VERSION-CID/path names one image forever: immutable, and still the first one.
    const pinned = await get(`/images/${version}/a.pam`)
    expect(pinned.statusCode).toBe(200)
    expect(pinned.headers['cache-control']).toBe('public, max-age=31536000, immutable')
    expect((await get(`/images/${before}`)).body).toBe(pinned.body)
  })
})
