/**
 * Hostile URLs: seeded random requests over every GET route (IIIF region/size/rotation/quality
 * with odd numbers, crop and export queries, tiles, info, CAR and block requests, viewer files),
 * built from valid parts and garbage (huge, negative, fractional, empty, percent-encoded). None
 * may answer 5xx, and every JSON 4xx carries a code of spec/http.md's table.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { random } from '../helpers/fuzz.js'
import { makeImage } from '../helpers/oracle.js'
import { type Fixture, fixture, importTestImage } from './helpers.js'

let fx: Fixture
let rgb8: string
let rgba16: string

beforeAll(async () => {
  fx = await fixture()
  rgb8 = await importTestImage(fx, 'rgb8', makeImage(300, 200, 3, 8, 1), { tileSize: 64 })
  rgba16 = await importTestImage(fx, 'rgba16', makeImage(77, 33, 4, 16, 2), { tileSize: 32 })
})
afterAll(() => fx.close())

/** The URLs of seed `seed`, a pure function of it. */
function urls(seed: number, count: number): string[] {
  const next = random(seed)
  const pick = <T>(values: readonly T[]): T => values[Math.floor(next() * values.length)]!
  const numbers = ['0', '1', '-1', '2', '63', '64', '65', '199', '200', '201', '299', '300', '301', '1e3', '1.5', '99999999999999999999']
  const odd = [
    '2147483648',
    '4294967296',
    '9007199254740993',
    'NaN',
    'Infinity',
    '',
    ' ',
    '0x10',
    '+5',
    '007',
    '1,2',
    '%00',
    '%ff',
    '%C3%A9',
    '..',
  ]
  const n = () => (next() < 0.75 ? pick(numbers) : pick(odd))
  const region = () =>
    pick(['full', 'square', `${n()},${n()},${n()},${n()}`, `pct:${n()},${n()},${n()},${n()}`, `${n()},${n()},${n()}`, n()])
  const size = () =>
    pick([
      'max',
      '^max',
      `${n()},`,
      `,${n()}`,
      `${n()},${n()}`,
      `!${n()},${n()}`,
      `^${n()},${n()}`,
      `^!${n()},${n()}`,
      `pct:${n()}`,
      `^pct:${n()}`,
    ])
  const rotation = () => pick(['0', '90', '180', '270', `!${n()}`, n(), '22.5', '360', '-90'])
  const quality = () =>
    `${pick(['default', 'color', 'gray', 'bitonal', 'x', ''])}.${pick(['jpg', 'png', 'webp', 'tif', 'gif', 'pdf', 'jp2', 'raw', ''])}`
  const id = () => pick([rgb8, rgb8, rgba16, rgba16, `${rgb8}x`, 'bafy', '', `Qm${'a'.repeat(44)}`, 'a%2Fb', '%2e%2e'])
  const format = () => pick(['tiff', 'png', 'npy', 'raw', 'pam', 'ppm', 'jpg', '', 'TIFF'])
  const query = () =>
    pick([
      `region=${n()},${n()},${n()},${n()}`,
      `format=${format()}`,
      `level=${n()}`,
      `compression=${pick(['none', 'deflate', 'zstd', 'lzw', ''])}`,
      `clip=${pick(['true', 'false', '1', ''])}`,
      `tileSize=${n()}`,
      `region=${region()}`,
    ])
  return Array.from({ length: count }, () =>
    pick([
      `/iiif/3/${id()}/${region()}/${size()}/${rotation()}/${quality()}`,
      `/iiif/3/${id()}/${region()}/${size()}/${rotation()}/${quality()}`,
      `/iiif/3/${id()}/info.json`,
      `/iiif/3/${id()}/manifest`,
      `/images/${id()}/crop?${query()}&${query()}&${query()}`,
      `/images/${id()}/crop?${query()}&${query()}&${query()}`,
      `/images/${id()}/export?${query()}&${query()}`,
      `/images/${id()}/tiles/${n()}/${n()}/${n()}`,
      `/images/${id()}/info`,
      `/images/${id()}`,
      `/ipfs/${id()}?format=${pick(['car', 'raw', 'x', ''])}&dag-scope=${pick(['all', 'block', 'entity', 'x'])}`,
      `/ipfs/${id()}/${n()}`,
      `/view/${id()}`,
      `/viewer/${pick(['x.js', '../package.json', '%2e%2e%2fpackage.json', ''])}`,
    ]),
  )
}

describe('hostile URLs', () => {
  it('2000 requests of seed 1: no 5xx, every JSON error coded, some answered', async () => {
    const bad: string[] = []
    const statuses = new Set<number>()
    for (const [i, url] of urls(1, 2000).entries()) {
      const response = await fx.app.inject({ method: i % 4 === 3 ? 'HEAD' : 'GET', url })
      statuses.add(response.statusCode)
      if (response.statusCode >= 500) bad.push(`${response.statusCode} ${url}: ${response.body.slice(0, 200)}`)
      else if (response.statusCode >= 400 && response.body !== '' && String(response.headers['content-type']).includes('json')) {
        const body = JSON.parse(response.body) as { code?: unknown }
        // spec/http.md, Errors: Tessera's codes, and fastify's own for a malformed URL.
        if (typeof body.code !== 'string' || !/^(FST_)?ERR_[A-Z_]+$/.test(body.code)) bad.push(`${url}: ${response.body.slice(0, 200)}`)
      }
    }
    expect(bad).toEqual([])
    expect([...statuses].sort()).toEqual([200, 400, 404])
  }, 120_000)
})
