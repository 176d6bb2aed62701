/**
 * IIIF Image API 3.0 parameters, from the specification's own rules and examples
 * (https://iiif.io/api/image/3.0/ §4.1-§4.8), on its 300x200 example image.
 */
import { describe, expect, it } from 'vitest'
import {
  parseImageRequest,
  parseQualityFormat,
  parseRegion,
  parseRotation,
  parseSize,
  resolveRegion,
  resolveRequest,
  resolveSize,
  type SizeLimits,
} from '../../src/http/iiif/params.js'

const W = 300
const H = 200
const open: SizeLimits = { maxWidth: 10_000, maxHeight: 10_000, maxArea: 100_000_000, upscaling: true }

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (error) {
    return (error as { code?: string }).code
  }
  return undefined
}

function statusOf(fn: () => unknown): number | undefined {
  try {
    fn()
  } catch (error) {
    return (error as { statusCode?: number }).statusCode ?? 400
  }
  return undefined
}

describe('region (§4.1)', () => {
  it.each([
    ['full', { x: 0, y: 0, width: 300, height: 200 }],
    ['square', { x: 50, y: 0, width: 200, height: 200 }],
    ['125,15,120,140', { x: 125, y: 15, width: 120, height: 140 }],
    ['pct:41.6,7.5,40,70', { x: 125, y: 15, width: 120, height: 140 }],
    // Examples 5 and 6: "N.B. Returned image is 175,185 px" (cropped at the image's edge).
    ['125,15,200,200', { x: 125, y: 15, width: 175, height: 185 }],
    ['pct:41.6,7.5,66.6,100', { x: 125, y: 15, width: 175, height: 185 }],
    ['0,0,1,1', { x: 0, y: 0, width: 1, height: 1 }],
    ['299,199,5,5', { x: 299, y: 199, width: 1, height: 1 }],
    ['pct:0,0,100,100', { x: 0, y: 0, width: 300, height: 200 }],
    ['pct:.5,0.5,50,50', { x: 2, y: 1, width: 150, height: 100 }],
  ])('%s', (text, region) => {
    expect(resolveRegion(parseRegion(text), W, H)).toEqual(region)
  })

  it('square of a tall image is centred vertically', () => {
    expect(resolveRegion(parseRegion('square'), 100, 301)).toEqual({ x: 0, y: 100, width: 100, height: 100 })
  })

  it.each([
    ['zero width', '10,10,0,10', 'ERR_INVALID_REGION'],
    ['zero height (pct)', 'pct:10,10,10,0', 'ERR_INVALID_REGION'],
    ['entirely outside', '300,0,10,10', 'ERR_INVALID_REGION'],
    ['entirely below', '0,200,10,10', 'ERR_INVALID_REGION'],
    ['pct outside', 'pct:100,0,10,10', 'ERR_INVALID_REGION'],
    ['negative', '-1,0,10,10', 'ERR_INVALID_ARGUMENT'],
    ['three numbers', '1,2,3', 'ERR_INVALID_ARGUMENT'],
    ['floats in pixels', '1.5,2,3,4', 'ERR_INVALID_ARGUMENT'],
    ['a sign', 'pct:+1,2,3,4', 'ERR_INVALID_ARGUMENT'],
    ['an exponent', 'pct:1e2,2,3,4', 'ERR_INVALID_ARGUMENT'],
    ['a word', 'fullish', 'ERR_INVALID_ARGUMENT'],
    ['huge', '99999999999999999999,0,1,1', 'ERR_INVALID_ARGUMENT'],
  ])('%s is a 400 (%s)', (_name, text, code) => {
    expect(codeOf(() => resolveRegion(parseRegion(text), W, H))).toBe(code)
  })
})

describe('size (§4.2)', () => {
  const maxWidth200: SizeLimits = { ...open, maxWidth: 200, maxHeight: 200 }
  const maxWidth360: SizeLimits = { ...open, maxWidth: 360, maxHeight: 360 }
  it.each([
    ['max', open, [300, 200]],
    // "Assuming that the image has a maxWidth of 200px".
    ['max', maxWidth200, [200, 133]],
    // ^max is max (params.ts): the limits bound it, they are not a size to grow to.
    ['^max', maxWidth360, [300, 200]],
    ['^max', maxWidth200, [200, 133]],
    ['150,', open, [150, 100]],
    ['^360,', open, [360, 240]],
    [',150', open, [225, 150]],
    ['^,240', open, [360, 240]],
    ['pct:50', open, [150, 100]],
    ['^pct:120', open, [360, 240]],
    ['225,100', open, [225, 100]],
    ['^360,360', open, [360, 360]],
    // "N.B. Returned image is 150,100 px" and "360,240 px".
    ['!225,100', open, [150, 100]],
    ['^!360,360', open, [360, 240]],
    // A box that the region fits exactly on one side.
    ['!300,1000', open, [300, 200]],
    ['^!2000,500', open, [750, 500]],
    ['1,', open, [1, 1]],
    ['300,200', open, [300, 200]],
  ] as const)('%s', (text, limits, size) => {
    expect(resolveSize(parseSize(text), W, H, limits)).toEqual(size)
  })

  it.each([
    ['upscaling without ^', '301,', 400],
    ['upscaling height without ^', ',201', 400],
    ['pct over 100 without ^', 'pct:120', 400],
    ['w,h over the region without ^', '300,201', 400],
    // §4.2 and the validator's size_noup: a best fit larger than the region needs ^.
    ['a confining box larger than the region without ^', '!1000,1000', 400],
    ['!2000,3000 without ^', '!2000,3000', 400],
    ['zero width', '0,', 400],
    ['zero pct', 'pct:0', 400],
    ['zero box', '!0,10', 400],
    ['over maxWidth', '^5000,', 400],
    ['garbage', 'big', 400],
    ['two commas', '1,2,3', 400],
    ['empty', ',', 400],
  ] as const)('%s is a %d', (_name, text, status) => {
    expect(statusOf(() => resolveSize(parseSize(text), W, H, { ...open, maxWidth: 4000, maxHeight: 4000, maxArea: 4_000_000 }))).toBe(
      status,
    )
  })

  it('upscaling on a server that does not support it is a 501 (§4.2: ^pct:120)', () => {
    const none = { ...open, upscaling: false }
    expect(statusOf(() => resolveSize(parseSize('^pct:120'), W, H, none))).toBe(501)
    // ^ that does not actually upscale is fine.
    expect(resolveSize(parseSize('^pct:50'), W, H, none)).toEqual([150, 100])
  })

  it('max is confined by maxArea too', () => {
    const [w, h] = resolveSize(parseSize('max'), W, H, { ...open, maxArea: 6000 })
    expect(w * h).toBeLessThanOrEqual(6000)
    expect(Math.abs(w / h - 1.5)).toBeLessThan(0.05)
  })
})

describe('rotation, quality, format (§4.3-§4.5)', () => {
  it.each([
    ['0', { mirror: false, degrees: 0 }],
    ['90', { mirror: false, degrees: 90 }],
    ['180.0', { mirror: false, degrees: 180 }],
    ['!270', { mirror: true, degrees: 270 }],
    ['!0', { mirror: true, degrees: 0 }],
    ['360', { mirror: false, degrees: 0 }],
  ])('rotation %s', (text, rotation) => {
    expect(parseRotation(text)).toEqual(rotation)
  })

  it.each(['22.5', '361', '-90', '!', 'ninety', '90!'])('rotation %s is a 400', (text) => {
    expect(codeOf(() => parseRotation(text))).toBe('ERR_INVALID_ARGUMENT')
  })

  it.each(['default.jpg', 'color.png', 'gray.tif', 'default.webp'])('%s', (text) => {
    expect(() => parseQualityFormat(text)).not.toThrow()
  })

  it.each(['bitonal.jpg', 'bitonal.png', 'bitonal.tif', 'bitonal.webp'])('%s is accepted', (text) => {
    expect(parseQualityFormat(text).quality).toBe('bitonal')
  })

  it.each(['Bitonal.jpg', 'default.gif', 'default.jp2', 'default.pdf', 'default', 'colour.jpg', 'default.JPG'])('%s is a 400', (text) => {
    expect(codeOf(() => parseQualityFormat(text))).toBe('ERR_INVALID_ARGUMENT')
  })
})

describe('canonical URI syntax (§4.8)', () => {
  it.each([
    ['full/max/0/default.jpg', 'full/max/0/default.jpg'],
    ['square/max/0/default.jpg', '50,0,200,200/max/0/default.jpg'],
    ['0,0,300,200/max/0/default.jpg', 'full/max/0/default.jpg'],
    ['pct:41.6,7.5,40,70/max/0/default.jpg', '125,15,120,140/max/0/default.jpg'],
    ['125,15,200,200/max/0/color.png', '125,15,175,185/max/0/color.png'],
    ['full/150,/0/default.jpg', 'full/150,100/0/default.jpg'],
    ['full/pct:50/90/gray.jpg', 'full/150,100/90/gray.jpg'],
    ['full/!225,100/!180/default.png', 'full/150,100/!180/default.png'],
    ['full/300,200/0/default.jpg', 'full/max/0/default.jpg'],
    ['full/^360,/0/default.jpg', 'full/^360,240/0/default.jpg'],
    ['full/^pct:100/360/default.jpg', 'full/max/0/default.jpg'],
    // The order-of-implementation example (§4.6), with a supported rotation.
    ['125,15,120,140/90,/!90/gray.jpg', '125,15,120,140/90,105/!90/gray.jpg'],
  ])('%s -> %s', (path, canonical) => {
    const [region, size, rotation, quality] = path.split('/') as [string, string, string, string]
    expect(resolveRequest(parseImageRequest(region, size, rotation, quality), W, H, open).canonical).toBe(canonical)
  })

  it('^max is canonical max, and an upscale names its size', () => {
    const limits = { ...open, maxWidth: 360, maxHeight: 360 }
    expect(resolveRequest(parseImageRequest('full', '^max', '0', 'default.png'), W, H, limits).canonical).toBe('full/max/0/default.png')
    expect(resolveRequest(parseImageRequest('full', '^!360,360', '0', 'default.png'), W, H, limits).canonical).toBe(
      'full/^360,240/0/default.png',
    )
  })
})
