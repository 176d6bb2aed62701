/**
 * IIIF Image API 3.0 level 2 over HTTP, checked against the specification's rules and its
 * 300x200 examples, pixel by pixel: regions, sizes, rotations and mirroring, qualities,
 * formats, image information, the base URI redirect, media types, CORS, error statuses, and
 * tile requests served from the matching pyramid level touching only the tiles they need.
 */
import { execFileSync } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createServer } from '../../src/http/server.js'
import { makeImage, naiveCrop, naiveHalve, type TestImage } from '../helpers/oracle.js'
import { PYTHON } from '../helpers/readers.js'
import { bytesOf, decode, type Fixture, fixture, importTestImage, maxDifference, meanDifference } from './helpers.js'

let fx: Fixture
// The specification's example image size.
const source = makeImage(300, 200, 3, 8, 7)
const levels: TestImage[] = [source]
while (levels.length < 4) levels.push(naiveHalve(levels.at(-1)!))
const gray = makeImage(90, 70, 1, 8, 3)
const deep = makeImage(70, 50, 4, 16, 5)
const flat = makeImage(300, 200, 3, 8, 9)
/** A smooth image (gradients, no noise) for the lossy formats. */
const smooth: TestImage = (() => {
  const data = new Uint8Array(300 * 200 * 3)
  for (let y = 0; y < 200; y++) {
    for (let x = 0; x < 300; x++) data.set([(x * 255) / 299, (y * 255) / 199, ((x + y) * 255) / 498], (y * 300 + x) * 3)
  }
  return { width: 300, height: 200, channels: 3, bits: 8, data }
})()
let cid: string
let grayCid: string
let deepCid: string
let flatCid: string
let smoothCid: string

beforeAll(async () => {
  // No decoded-tile cache: the tests below count the tiles each request reads from the store.
  fx = await fixture({ tileCacheBytes: 0 })
  cid = await importTestImage(fx, 'spec', source)
  grayCid = await importTestImage(fx, 'gray', gray)
  deepCid = await importTestImage(fx, 'deep', deep, { tileSize: 32 })
  flatCid = await importTestImage(fx, 'flat', flat, { pyramid: false })
  smoothCid = await importTestImage(fx, 'smooth', smooth)
})
afterAll(async () => {
  await fx.close()
})

function get(path: string, headers: Record<string, string> = {}) {
  return fx.app.inject({ method: 'GET', url: path, headers })
}

async function png(path: string) {
  const response = await get(path)
  expect(response.statusCode, response.body.slice(0, 200)).toBe(200)
  const [image] = await decode({ bytes: bytesOf(response), ext: path.split('.').pop()! })
  return { response, image: image! }
}

/** Rotates a raster 90 degrees clockwise: output row r is input column r read bottom to top. */
function rotate90(image: TestImage): TestImage {
  const P = image.channels * (image.bits / 8)
  const out = new Uint8Array(image.data.length)
  let o = 0
  for (let r = 0; r < image.width; r++) {
    for (let y = image.height - 1; y >= 0; y--) {
      const at = (y * image.width + r) * P
      for (let b = 0; b < P; b++) out[o++] = image.data[at + b]!
    }
  }
  return { ...image, width: image.height, height: image.width, data: out }
}

function mirror(image: TestImage): TestImage {
  const P = image.channels * (image.bits / 8)
  const out = new Uint8Array(image.data.length)
  for (let y = 0; y < image.height; y++) {
    for (let x = 0; x < image.width; x++) {
      out.set(image.data.subarray((y * image.width + x) * P, (y * image.width + x + 1) * P), (y * image.width + (image.width - 1 - x)) * P)
    }
  }
  return { ...image, data: out }
}

/** Box-filter oracle straight from the definition: each output pixel averages the source under its footprint. */
function areaOracle(image: TestImage, region: { x: number; y: number; width: number; height: number }, ow: number, oh: number): Uint8Array {
  const C = image.channels
  const out = new Uint8Array(ow * oh * C)
  const fx = region.width / ow
  const fy = region.height / oh
  for (let oy = 0; oy < oh; oy++) {
    const y0 = region.y + oy * fy
    const y1 = y0 + fy
    for (let ox = 0; ox < ow; ox++) {
      const x0 = region.x + ox * fx
      const x1 = x0 + fx
      for (let c = 0; c < C; c++) {
        let sum = 0
        let weight = 0
        for (let y = Math.floor(y0); y < Math.min(image.height, Math.ceil(y1)); y++) {
          const wy = Math.min(y1, y + 1) - Math.max(y0, y)
          for (let x = Math.floor(x0); x < Math.min(image.width, Math.ceil(x1)); x++) {
            const w = wy * (Math.min(x1, x + 1) - Math.max(x0, x))
            sum += image.data[(y * image.width + x) * C + c]! * w
            weight += w
          }
        }
        out[(oy * ow + ox) * C + c] = Math.round(sum / weight)
      }
    }
  }
  return out
}

describe('base URI and image information (§2, §5)', () => {
  it('redirects the base URI to info.json with a 303', async () => {
    for (const path of [`/iiif/3/${cid}`, `/iiif/3/${cid}/`]) {
      const response = await get(path)
      expect(response.statusCode).toBe(303)
      expect(response.headers.location).toBe(`http://localhost:80/iiif/3/${cid}/info.json`)
      expect(response.headers['access-control-allow-origin']).toBe('*')
    }
  })

  it('describes the image, its pyramid and the service', async () => {
    const response = await get(`/iiif/3/${cid}/info.json`)
    expect(response.statusCode).toBe(200)
    expect(response.headers['content-type']).toBe('application/ld+json;profile="http://iiif.io/api/image/3/context.json"')
    expect(response.headers['access-control-allow-origin']).toBe('*')
    expect(response.headers.link).toBe('<http://iiif.io/api/image/3/level2.json>;rel="profile"')
    const info = JSON.parse(response.body)
    expect(Object.keys(info)[0]).toBe('@context')
    expect(info).toMatchObject({
      '@context': 'http://iiif.io/api/image/3/context.json',
      id: `http://localhost:80/iiif/3/${cid}`,
      type: 'ImageService3',
      protocol: 'http://iiif.io/api/image',
      profile: 'level2',
      width: 300,
      height: 200,
      maxWidth: 8192,
      maxHeight: 8192,
      // 2^24, lowered to what the heavy lane's memory holds (availability.test.ts).
      maxArea: expect.any(Number),
      tiles: [{ width: 64, height: 64, scaleFactors: [1, 2, 4, 8] }],
      sizes: [
        { width: 38, height: 25 },
        { width: 75, height: 50 },
        { width: 150, height: 100 },
        { width: 300, height: 200 },
      ],
      extraFormats: ['tif', 'webp'],
      extraQualities: ['color', 'gray', 'bitonal'],
    })
    expect(info.extraFeatures).toEqual(expect.arrayContaining(['mirroring', 'sizeUpscaling', 'canonicalLinkHeader', 'profileLinkHeader']))
    expect(info.seeAlso[0].id).toBe(`http://localhost:80/images/${cid}`)
    expect(info.maxArea).toBeGreaterThan(2 ** 20)
    expect(info.maxArea).toBeLessThanOrEqual(2 ** 24)
  })

  it('negotiates JSON-LD or plain JSON (§5.1)', async () => {
    const ld = await get(`/iiif/3/${cid}/info.json`, { accept: 'application/ld+json' })
    expect(ld.headers['content-type']).toMatch(/^application\/ld\+json;profile=/)
    const json = await get(`/iiif/3/${cid}/info.json`, { accept: 'application/json' })
    expect(json.headers['content-type']).toBe('application/json')
    expect(json.headers.vary).toBe('Accept')
    expect(JSON.parse(json.body).id).toBe(JSON.parse(ld.body).id)
  })

  it('lists gray only for a gray image, and every scale factor for an image without pyramid', async () => {
    expect(JSON.parse((await get(`/iiif/3/${grayCid}/info.json`)).body).extraQualities).toEqual(['gray', 'bitonal'])
    const info = JSON.parse((await get(`/iiif/3/${flatCid}/info.json`)).body)
    expect(info.tiles).toEqual([{ width: 64, height: 64, scaleFactors: [1, 2, 4, 8] }])
  })

  it('uses the configured public URL for ids and redirects', async () => {
    const app = await createServer({ store: fx.store, publicUrl: 'https://images.example.org/tessera/' })
    const info = JSON.parse((await app.inject({ url: `/iiif/3/${cid}/info.json` })).body)
    expect(info.id).toBe(`https://images.example.org/tessera/iiif/3/${cid}`)
    expect((await app.inject({ url: `/iiif/3/${cid}` })).headers.location).toBe(
      `https://images.example.org/tessera/iiif/3/${cid}/info.json`,
    )
    await app.close()
  })

  it('answers HEAD and CORS preflight', async () => {
    const head = await fx.app.inject({ method: 'HEAD', url: `/iiif/3/${cid}/info.json` })
    expect(head.statusCode).toBe(200)
    expect(head.rawPayload.length).toBe(0)
    expect(Number(head.headers['content-length'])).toBeGreaterThan(100)
    const preflight = await fx.app.inject({
      method: 'OPTIONS',
      url: `/iiif/3/${cid}/full/max/0/default.jpg`,
      headers: { origin: 'https://viewer.example', 'access-control-request-method': 'GET' },
    })
    expect(preflight.statusCode).toBe(204)
    expect(preflight.headers['access-control-allow-origin']).toBe('*')
    expect(preflight.headers['access-control-allow-methods']).toContain('GET')
  })
})

describe('regions (§4.1), on exact pixels', () => {
  it.each([
    ['full', { x: 0, y: 0, width: 300, height: 200 }],
    ['square', { x: 50, y: 0, width: 200, height: 200 }],
    ['125,15,120,140', { x: 125, y: 15, width: 120, height: 140 }],
    ['pct:41.6,7.5,40,70', { x: 125, y: 15, width: 120, height: 140 }],
    ['125,15,200,200', { x: 125, y: 15, width: 175, height: 185 }],
    ['pct:41.6,7.5,66.6,100', { x: 125, y: 15, width: 175, height: 185 }],
    ['299,199,1,1', { x: 299, y: 199, width: 1, height: 1 }],
  ])('%s', async (region, expected) => {
    const { image } = await png(`/iiif/3/${cid}/${region}/max/0/default.png`)
    expect([image.width, image.height, image.channels, image.bitsPerSample]).toEqual([expected.width, expected.height, 3, 8])
    expect(Buffer.from(image.data).equals(Buffer.from(naiveCrop(source, expected)))).toBe(true)
  })
})

describe('sizes (§4.2)', () => {
  it.each([
    ['150,100', 1],
    ['pct:50', 1],
    ['!225,100', 1],
    ['150,', 1],
    ['75,50', 2],
    ['38,25', 3],
  ])('full/%s is pyramid level %d exactly', async (size, level) => {
    const { image } = await png(`/iiif/3/${cid}/full/${size}/0/default.png`)
    const expected = levels[level]!
    expect([image.width, image.height]).toEqual([expected.width, expected.height])
    expect(Buffer.from(image.data).equals(Buffer.from(expected.data))).toBe(true)
  })

  it.each([
    [',150', { x: 0, y: 0, width: 300, height: 200 }, 225, 150],
    ['100,', { x: 125, y: 15, width: 120, height: 140 }, 100, 117],
    ['^360,', { x: 0, y: 0, width: 300, height: 200 }, 360, 240],
    ['^!360,360', { x: 0, y: 0, width: 300, height: 200 }, 360, 240],
    ['^pct:150', { x: 125, y: 15, width: 120, height: 140 }, 180, 210],
    ['200,20', { x: 0, y: 0, width: 300, height: 200 }, 200, 20],
  ])('%s of %o is %dx%d, the area average of the region', async (size, region, w, h) => {
    const regionText = region.width === 300 ? 'full' : `${region.x},${region.y},${region.width},${region.height}`
    const { image } = await png(`/iiif/3/${cid}/${regionText}/${size}/0/default.png`)
    expect([image.width, image.height]).toEqual([w, h])
    // From a pyramid level rather than level 0: the level's own rounding shows, by a step or two.
    expect(maxDifference(image.data, areaOracle(source, region, w, h))).toBeLessThanOrEqual(2)
  })

  it('serves an image without pyramid at every advertised scale factor, computing it from level 0', async () => {
    const { image } = await png(`/iiif/3/${flatCid}/full/38,25/0/default.png`)
    expect([image.width, image.height]).toEqual([38, 25])
    expect(maxDifference(image.data, areaOracle(flat, { x: 0, y: 0, width: 300, height: 200 }, 38, 25))).toBeLessThanOrEqual(1)
  })
})

describe('tile requests come from the matching pyramid level, touching only their tiles', () => {
  async function tileCid(level: number, column: number, row: number): Promise<string> {
    return (await get(`/images/${cid}/tiles/${level}/${column}/${row}`)).headers['x-tessera-tile-cid'] as string
  }

  it.each([
    // OpenSeadragon's URLs for tiles of 64 at scale factor s: region (c*64*s, r*64*s, ...), size = the level tile.
    ['scale 4, tile 0,0', '0,0,256,200', '64,50', 2, 0, 0, { x: 0, y: 0, width: 64, height: 50 }],
    ['scale 4, tile 1,0 (edge)', '256,0,44,200', '11,50', 2, 1, 0, { x: 64, y: 0, width: 11, height: 50 }],
    ['scale 2, tile 2,1 (corner)', '256,128,44,72', '22,36', 1, 2, 1, { x: 128, y: 64, width: 22, height: 36 }],
    ['scale 1, tile 4,3 (corner)', '256,192,44,8', '44,8', 0, 4, 3, { x: 256, y: 192, width: 44, height: 8 }],
    ['scale 1, tile 1,1', '64,64,64,64', '64,64', 0, 1, 1, { x: 64, y: 64, width: 64, height: 64 }],
    ['scale 8, the whole level', 'full', '38,25', 3, 0, 0, { x: 0, y: 0, width: 38, height: 25 }],
  ])('%s', async (_name, region, size, level, column, row, crop) => {
    const tile = await tileCid(level, column, row)
    fx.store.reset()
    const { image } = await png(`/iiif/3/${cid}/${region}/${size}/0/default.png`)
    expect(Buffer.from(image.data).equals(Buffer.from(naiveCrop(levels[level]!, crop)))).toBe(true)
    // One tile, from that level; the rest is the cached root and index blocks.
    const tilesRead = fx.store.reads.filter((read) => read.startsWith('bafkrei'))
    expect(tilesRead).toEqual([tile])
  })
})

describe('rotation and mirroring (§4.3)', () => {
  const region = { x: 125, y: 15, width: 120, height: 140 }
  const base: TestImage = { ...source, ...region, data: naiveCrop(source, region) }
  it.each([
    ['90', rotate90(base)],
    ['180', rotate90(rotate90(base))],
    ['270', rotate90(rotate90(rotate90(base)))],
    ['!0', mirror(base)],
    ['!90', rotate90(mirror(base))],
    ['!180', rotate90(rotate90(mirror(base)))],
  ])('%s', async (rotation, expected) => {
    const { image } = await png(`/iiif/3/${cid}/125,15,120,140/max/${rotation}/default.png`)
    expect([image.width, image.height]).toEqual([expected.width, expected.height])
    expect(Buffer.from(image.data).equals(Buffer.from(expected.data))).toBe(true)
  })
})

describe('qualities (§4.4) and formats (§4.5)', () => {
  it('gray is BT.601 luma of the colour pixels; color and default are the stored colours', async () => {
    const { image } = await png(`/iiif/3/${cid}/full/max/0/gray.png`)
    expect(image.channels).toBe(1)
    const expected = new Uint8Array(300 * 200)
    for (let p = 0; p < expected.length; p++) {
      const [r, g, b] = [source.data[p * 3]!, source.data[p * 3 + 1]!, source.data[p * 3 + 2]!]
      expected[p] = (19595 * r + 38470 * g + 7471 * b + 32768) >> 16
    }
    expect(Buffer.from(image.data).equals(Buffer.from(expected))).toBe(true)
    const color = await png(`/iiif/3/${cid}/full/max/0/color.png`)
    expect(Buffer.from(color.image.data).equals(Buffer.from(source.data))).toBe(true)
  })

  it('bitonal is gray thresholded at 128, one bit per pixel in png and tif, 0/255 gray in jpg and webp', async () => {
    const expected = new Uint8Array(300 * 200)
    for (let p = 0; p < expected.length; p++) {
      const [r, g, b] = [source.data[p * 3]!, source.data[p * 3 + 1]!, source.data[p * 3 + 2]!]
      expected[p] = (19595 * r + 38470 * g + 7471 * b + 32768) >> 16 >= 128 ? 255 : 0
    }
    // Both levels occur: the test image is not all one side of the threshold.
    expect(new Set(expected).size).toBe(2)
    for (const ext of ['png', 'tif']) {
      const response = await get(`/iiif/3/${cid}/full/max/0/bitonal.${ext}`)
      expect(response.statusCode).toBe(200)
      const [vips] = await decode({ bytes: bytesOf(response), ext })
      expect([vips!.width, vips!.height, vips!.channels]).toEqual([300, 200, 1])
      expect(Buffer.from(vips!.data).equals(Buffer.from(expected)), ext).toBe(true)
      // PIL, the validator's reader, opens it as a 1-bit image ("1" mode), 300 x 200 at 1/8 byte a pixel.
      const path = join(fx.dir, `bitonal.${ext}`)
      await writeFile(path, bytesOf(response))
      const pil = execFileSync(PYTHON, ['-c', 'import sys; from PIL import Image; print(Image.open(sys.argv[1]).mode)', path])
      expect(pil.toString().trim(), ext).toBe('1')
      expect(bytesOf(response).length).toBeLessThan((300 * 200) / 8 + 1000)
    }
    for (const ext of ['jpg', 'webp']) {
      const { image } = await png(`/iiif/3/${cid}/full/max/0/bitonal.${ext}`)
      // Lossy: nearly every sample is within reach of 0 or 255, and on the right side.
      let wrong = 0
      for (let p = 0; p < expected.length; p++) if (Math.abs(image.data[p * image.channels]! - expected[p]!) > 127) wrong++
      expect(wrong / expected.length).toBeLessThan(0.02)
    }
  })

  it('bitonal composites alpha over white and thresholds 16-bit samples at 32768', async () => {
    const { image } = await png(`/iiif/3/${deepCid}/full/max/!90/bitonal.png`)
    const samples = new Uint16Array(deep.data.buffer, deep.data.byteOffset, deep.data.length / 2)
    const expected = new Uint8Array(70 * 50)
    for (let y = 0; y < 50; y++) {
      for (let x = 0; x < 70; x++) {
        const s = (y * 70 + x) * 4
        const luma = Math.floor((19595 * samples[s]! + 38470 * samples[s + 1]! + 7471 * samples[s + 2]! + 32768) / 65536)
        const a = samples[s + 3]!
        const over = (luma * a + 65535 * (65535 - a)) / 65535
        // Mirrored, then turned 90 degrees clockwise: (x, y) lands at column 49 - y, row 69 - x.
        expected[(69 - x) * 50 + (49 - y)] = over >= 32768 ? 255 : 0
      }
    }
    expect([image.width, image.height, image.channels]).toEqual([50, 70, 1])
    let wrong = 0
    for (let p = 0; p < expected.length; p++) if (image.data[p] !== expected[p]) wrong++
    expect(wrong).toBe(0)
  })

  it('color on a gray image is not an error: it returns the gray pixels', async () => {
    const { image } = await png(`/iiif/3/${grayCid}/full/max/0/color.png`)
    expect(image.channels).toBe(1)
    expect(Buffer.from(image.data).equals(Buffer.from(gray.data))).toBe(true)
  })

  it('png and tif keep 16 bits and alpha exactly', async () => {
    for (const ext of ['png', 'tif']) {
      const { response, image } = await png(`/iiif/3/${deepCid}/full/max/0/default.${ext}`)
      expect(response.headers['content-type']).toBe(ext === 'png' ? 'image/png' : 'image/tiff')
      expect([image.width, image.height, image.channels, image.bitsPerSample]).toEqual([70, 50, 4, 16])
      expect(Buffer.from(image.data).equals(Buffer.from(deep.data))).toBe(true)
    }
  })

  it('jpg and webp are 8-bit approximations of the pixels (jpg without alpha)', async () => {
    const responses = await Promise.all([
      get(`/iiif/3/${smoothCid}/full/max/0/default.jpg`),
      get(`/iiif/3/${smoothCid}/full/max/0/default.webp`),
      get(`/iiif/3/${deepCid}/full/max/0/default.jpg`),
      get(`/iiif/3/${deepCid}/full/max/0/default.webp`),
    ])
    expect(responses.map((r) => r.headers['content-type'])).toEqual(['image/jpeg', 'image/webp', 'image/jpeg', 'image/webp'])
    const [jpg, webp, deepJpg, deepWebp] = await decode(
      { bytes: bytesOf(responses[0]!), ext: 'jpg' },
      { bytes: bytesOf(responses[1]!), ext: 'webp' },
      { bytes: bytesOf(responses[2]!), ext: 'jpg' },
      { bytes: bytesOf(responses[3]!), ext: 'webp' },
    )
    expect([jpg!.width, jpg!.height, jpg!.channels]).toEqual([300, 200, 3])
    expect([webp!.width, webp!.height, webp!.channels]).toEqual([300, 200, 3])
    // Lossy, but close on smooth content; and not a blank image.
    expect(meanDifference(jpg!.data, smooth.data)).toBeLessThan(2)
    expect(meanDifference(webp!.data, smooth.data)).toBeLessThan(2)
    expect(meanDifference(jpg!.data, new Uint8Array(smooth.data.length))).toBeGreaterThan(50)
    expect([deepJpg!.channels, deepJpg!.bitsPerSample]).toEqual([3, 8])
    expect([deepWebp!.channels, deepWebp!.bitsPerSample]).toEqual([4, 8])
  })
})

describe('headers: canonical and profile links, caching (§4.8, §6)', () => {
  it('links the canonical URI and the profile, and caches the image forever', async () => {
    const response = await get(`/iiif/3/${cid}/pct:41.6,7.5,40,70/pct:50/0/default.png`)
    expect(response.headers.link).toBe(
      `<http://localhost:80/iiif/3/${cid}/125,15,120,140/60,70/0/default.png>;rel="canonical", <http://iiif.io/api/image/3/level2.json>;rel="profile"`,
    )
    expect(response.headers['cache-control']).toBe('public, max-age=31536000, immutable')
    const etag = response.headers.etag as string
    expect(etag).toMatch(/^"bafy.*"$/)
    // The same image asked canonically has the same ETag.
    const canonical = await get(`/iiif/3/${cid}/125,15,120,140/60,70/0/default.png`)
    expect(canonical.headers.etag).toBe(etag)
    const cached = await get(`/iiif/3/${cid}/125,15,120,140/60,70/0/default.png`, { 'if-none-match': etag })
    expect(cached.statusCode).toBe(304)
    expect(cached.rawPayload.length).toBe(0)
  })
})

describe('errors (§7.3)', () => {
  it.each([
    ['zero-width region', '0,0,0,10', 'max', '0', 'default.png', 400, 'ERR_INVALID_REGION'],
    ['region outside', '400,0,10,10', 'max', '0', 'default.png', 400, 'ERR_INVALID_REGION'],
    ['malformed region', '1,2,3', 'max', '0', 'default.png', 400, 'ERR_INVALID_ARGUMENT'],
    ['malformed size', 'full', 'huge', '0', 'default.png', 400, 'ERR_INVALID_ARGUMENT'],
    ['upscaling without ^', 'full', '301,', '0', 'default.png', 400, 'ERR_INVALID_ARGUMENT'],
    ['over the size limits', 'full', '^9000,', '0', 'default.png', 400, 'ERR_LIMIT'],
    ['arbitrary rotation', 'full', 'max', '22.5', 'default.png', 400, 'ERR_INVALID_ARGUMENT'],
    ['rotation out of range', 'full', 'max', '400', 'default.png', 400, 'ERR_INVALID_ARGUMENT'],
    ['a confining box that would upscale without ^', 'full', '!2000,3000', '0', 'default.png', 400, 'ERR_INVALID_ARGUMENT'],
    ['unsupported format', 'full', 'max', '0', 'default.gif', 400, 'ERR_INVALID_ARGUMENT'],
  ])('%s is a %i', async (_name, region, size, rotation, quality, status, code) => {
    const response = await get(`/iiif/3/${cid}/${region}/${size}/${rotation}/${quality}`)
    expect(response.statusCode).toBe(status)
    expect(response.headers['content-type']).toBe('application/json; charset=utf-8')
    expect(JSON.parse(response.body)).toMatchObject({ statusCode: status, code })
  })

  it.each([
    ['an unknown image', 'bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'],
    ['a malformed identifier', 'not-a-cid'],
    ['an encoded slash', 'abc%2F..%2Fetc'],
    ['a tile CID', 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'],
    ['an over-long identifier', `b${'a'.repeat(300)}`],
  ])('%s is a 404', async (_name, id) => {
    for (const path of [`/iiif/3/${id}/info.json`, `/iiif/3/${id}/full/max/0/default.jpg`, `/iiif/3/${id}`]) {
      const response = await get(path)
      expect(response.statusCode, path).toBe(404)
      expect(['ERR_NOT_FOUND', 'ERR_INVALID_CID']).toContain(JSON.parse(response.body).code)
    }
  })

  it('checks the parameters before looking the image up', async () => {
    const response = await get('/iiif/3/bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy/full/max/0/default.gif')
    expect(response.statusCode).toBe(400)
  })

  it('is a 501 for upscaling on a server configured without it (§4.2)', async () => {
    const app = await createServer({ store: fx.store, limits: { upscaling: false } })
    const response = await app.inject({ url: `/iiif/3/${cid}/full/^pct:120/0/default.png` })
    expect(response.statusCode).toBe(501)
    expect(JSON.parse(response.body).code).toBe('ERR_NOT_IMPLEMENTED')
    expect(JSON.parse((await app.inject({ url: `/iiif/3/${cid}/info.json` })).body).extraFeatures).not.toContain('sizeUpscaling')
    await app.close()
  })
})
