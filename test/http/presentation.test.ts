/**
 * IIIF Presentation API 3.0 over HTTP: the Manifest of one image, the Manifest of a dataset's
 * entries in name order, Collections of directories, paging for large datasets (100,000
 * entries: a Collection of 100 Manifests, any page of which is one request), each document
 * checked against the Presentation rules of presentation-rules.ts and against the images it
 * describes.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PAGE_SIZE } from '../../src/http/iiif/presentation.js'
import { createServer } from '../../src/http/server.js'
import { type BlockStore, commitChanges, datasetHead, importDataset, importImage, openStore } from '../../src/index.js'
import { makeImage, writePam } from '../helpers/oracle.js'
import { presentationProblems } from './presentation-rules.js'

let dir: string
let store: BlockStore
let app: FastifyInstance
const BASE = 'http://localhost:80'
const FILES: Record<string, [number, number]> = {
  'a.pam': [300, 200],
  'day1/b.pam': [120, 90],
  'day1/c.pam': [64, 64],
  'day2/sub/d.pam': [90, 300],
}
const BIG = 100_000

function get(url: string, headers: Record<string, string> = {}) {
  return app.inject({ method: 'GET', url, headers })
}

async function json(url: string) {
  const response = await get(url)
  expect(response.statusCode, `${url}: ${response.body.slice(0, 300)}`).toBe(200)
  expect(response.headers['content-type']).toBe('application/ld+json;profile="http://iiif.io/api/presentation/3/context.json"')
  expect(response.headers['access-control-allow-origin']).toBe('*')
  const document = JSON.parse(response.body)
  expect(presentationProblems(document), url).toEqual([])
  return { response, document }
}

const enc = encodeURIComponent

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-http-presentation-'))
  for (const [name, [w, h]] of Object.entries(FILES)) {
    const path = join(dir, 'shots', name)
    await mkdir(join(path, '..'), { recursive: true })
    await writePam(path, makeImage(w, h, 3, 8, w + h))
  }
  store = await openStore(join(dir, 'store'))
  await importDataset(store, 'shots', [join(dir, 'shots')], { tileSize: 64, pyramid: true })
  // A dataset of 100,000 entries (one small image under every name), written as one version.
  await writePam(join(dir, 'tiny.pam'), makeImage(8, 6, 3, 8, 5))
  const { cid } = await importImage(store, join(dir, 'tiny.pam'), { tileSize: 16, workers: 0 })
  const sha256 = new Uint8Array(32)
  const changes = Array.from({ length: BIG }, (_, i) => ({
    name: `frames/${String(i).padStart(6, '0')}.png`,
    entry: { name: `frames/${String(i).padStart(6, '0')}.png`, image: cid, size: 1, mtime: 0, sha256 },
  }))
  await commitChanges(store, 'big', async () => changes, { note: 'test' })
  app = await createServer({ store })
  await app.ready()
}, 120_000)
afterAll(async () => {
  await app?.close()
  await store?.close()
  await rm(dir, { recursive: true, force: true })
})

describe('the Manifest of an image', () => {
  it('has one Canvas of the image size, painted by its Image API service, with a thumbnail served from the pyramid', async () => {
    const { response, document } = await json(`/iiif/3/${enc('shots/a.pam')}/manifest`)
    expect(response.headers['cache-control']).toBe('public, max-age=10')
    const info = JSON.parse((await get(`/images/shots/a.pam/info`)).body)
    expect(document).toMatchObject({
      id: `${BASE}/iiif/3/${enc('shots/a.pam')}/manifest`,
      type: 'Manifest',
      label: { none: ['a.pam'] },
      homepage: [{ id: `${BASE}/view/${enc('shots/a.pam')}` }],
      seeAlso: [{ id: `${BASE}/images/${info.cid}` }],
    })
    expect(document.metadata).toContainEqual({ label: { en: ['CID'] }, value: { none: [info.cid] } })
    expect(document.items).toHaveLength(1)
    const [canvas] = document.items
    expect([canvas.width, canvas.height]).toEqual([300, 200])
    const body = canvas.items[0].items[0].body
    expect(body.service[0]).toEqual({ id: `${BASE}/iiif/3/${info.cid}`, type: 'ImageService3', profile: 'level2' })
    expect([body.width, body.height]).toEqual([300, 200])
    // Every URL in it answers: the body, the service, the thumbnail (a pyramid level's size).
    const thumbnail = document.thumbnail[0]
    expect(thumbnail.id).toBe(`${BASE}/iiif/3/${info.cid}/full/150,100/0/default.jpg`)
    for (const url of [body.id, `${body.service[0].id}/info.json`, thumbnail.id]) {
      expect((await get(url.slice(BASE.length))).statusCode, url).toBe(200)
    }
  })

  it('is the same by CID, cached for an hour rather than briefly', async () => {
    const info = JSON.parse((await get(`/images/shots/a.pam/info`)).body)
    const { response, document } = await json(`/iiif/3/${info.cid}/manifest`)
    expect(response.headers['cache-control']).toBe('public, max-age=3600')
    expect(document.label).toEqual({ none: ['a.pam'] })
    expect(document.items[0].items[0].items[0].body.service[0].id).toBe(`${BASE}/iiif/3/${info.cid}`)
    const again = await get(`/iiif/3/${info.cid}/manifest`, { 'if-none-match': String(response.headers.etag) })
    expect(again.statusCode).toBe(304)
  })
})

describe('dataset Manifests and Collections', () => {
  it('a dataset Manifest has one Canvas per entry, in name order, each its image size', async () => {
    const { document } = await json('/iiif/3/shots/manifest')
    expect(document.label).toEqual({ none: ['shots'] })
    const names = Object.keys(FILES).sort()
    expect(document.items.map((c: { label: { none: string[] } }) => c.label.none[0])).toEqual(names)
    expect(document.items.map((c: { width: number; height: number }) => [c.width, c.height])).toEqual(names.map((n) => FILES[n]))
    const version = (await datasetHead(store, 'shots'))!.cid.toString()
    expect(document.summary.en[0]).toContain(version)
  })

  it('a directory Manifest has the entries under it; a version CID names the same', async () => {
    const { document } = await json(`/iiif/3/${enc('shots/day1')}/manifest`)
    expect(document.items.map((c: { label: { none: string[] } }) => c.label.none[0])).toEqual(['day1/b.pam', 'day1/c.pam'])
    const version = (await datasetHead(store, 'shots'))!.cid.toString()
    const byVersion = await json(`/iiif/3/${enc(`${version}/day1`)}/manifest`)
    expect(byVersion.response.headers['cache-control']).toBe('public, max-age=3600')
    expect(byVersion.document.items.map((c: { width: number }) => c.width)).toEqual([120, 64])
  })

  it('a Collection lists the subdirectories as Collections and the entries as Manifests, each of which resolves', async () => {
    const { document } = await json('/iiif/3/shots/collection')
    expect(document.items.map((i: { id: string; type: string }) => [i.type, i.id.slice(BASE.length)])).toEqual([
      ['Manifest', '/iiif/3/shots/manifest'],
      ['Manifest', `/iiif/3/${enc('shots/a.pam')}/manifest`],
      ['Collection', `/iiif/3/${enc('shots/day1')}/collection`],
      ['Collection', `/iiif/3/${enc('shots/day2')}/collection`],
    ])
    const day2 = await json(`/iiif/3/${enc('shots/day2')}/collection`)
    expect(day2.document.items.map((i: { id: string }) => i.id.slice(BASE.length))).toEqual([
      `/iiif/3/${enc('shots/day2')}/manifest`,
      `/iiif/3/${enc('shots/day2/sub')}/collection`,
    ])
    for (const item of document.items) await json(item.id.slice(BASE.length))
  })

  it('100,000 entries: a Collection of 100 Manifests of 1000, any page of which is one request', async () => {
    const { document } = await json('/iiif/3/big/manifest')
    expect(document.type).toBe('Collection')
    expect(document.items).toHaveLength(BIG / PAGE_SIZE)
    expect(document.items[57].id).toBe(`${BASE}/iiif/3/big/manifest?page=58`)
    expect(document.items[57].label.none[0]).toContain('frames/057000.png – frames/057999.png')
    const page = await json('/iiif/3/big/manifest?page=58')
    expect(page.document.type).toBe('Manifest')
    expect(page.document.items).toHaveLength(PAGE_SIZE)
    expect(page.document.items[0].label.none[0]).toBe('frames/057000.png')
    expect(page.document.items[0].id).toBe(`${BASE}/iiif/3/big/canvas/57001`)
    expect(page.document.partOf).toEqual([{ id: `${BASE}/iiif/3/big/manifest`, type: 'Collection', label: { none: ['big'] } }])
    // The directory listing is paged the same way.
    const listing = await json(`/iiif/3/${enc('big/frames')}/collection`)
    expect(listing.document.items).toHaveLength(BIG / PAGE_SIZE)
    const last = await json(`/iiif/3/${enc('big/frames')}/collection?page=100`)
    expect(last.document.items).toHaveLength(PAGE_SIZE)
    expect(last.document.items.at(-1).label.none[0]).toBe('frames/099999.png')
  })

  it.each([
    ['a page past the end', '/iiif/3/big/manifest?page=101', 404],
    ['page 0', '/iiif/3/big/manifest?page=0', 400],
    ['a page of an image', `/iiif/3/${enc('shots/a.pam')}/manifest?page=1`, 400],
    ['the Collection of an image', `/iiif/3/${enc('shots/a.pam')}/collection`, 400],
    ['a missing directory', `/iiif/3/${enc('shots/nope')}/manifest`, 404],
    ['a missing dataset', '/iiif/3/nosuch/manifest', 404],
    ['an unknown parameter', '/iiif/3/shots/manifest?x=1', 400],
  ])('%s (%s) is a %s', async (_what, url, status) => {
    const response = await get(url)
    expect(response.statusCode, response.body).toBe(status)
    expect(response.headers['access-control-allow-origin']).toBe('*')
  })
})

describe('the rules checker', () => {
  it('finds the problems of a broken Manifest', () => {
    const broken = {
      '@context': 'http://iiif.io/api/presentation/2/context.json',
      id: 'not a url',
      type: 'Manifest',
      label: 'plain string',
      items: [{ id: 'http://x/c', type: 'Canvas', width: 0, items: [] }],
    }
    const problems = presentationProblems(broken)
    expect(problems.join('\n')).toMatch(/@context/)
    expect(problems.join('\n')).toMatch(/id must be an http/)
    expect(problems.join('\n')).toMatch(/language map/)
    expect(problems.join('\n')).toMatch(/positive integer width and height/)
    expect(presentationProblems({ ...broken, items: [] }).join('\n')).toMatch(/at least one Canvas/)
  })
})
