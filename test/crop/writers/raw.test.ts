import { describe, expect, it } from 'vitest'
import { extensionFormat, writeRaw } from '../../../src/crop/writers/index.js'
import type { Band, PixelFormat } from '../../../src/format/interface.js'
import { pixelFormat } from '../../../src/format/pixel.js'
import { collect, FORMATS, label, makeImage, toBands, unevenHeights } from './images.js'

async function* bandsOf(...bands: Band[]): AsyncGenerator<Band> {
  yield* bands
}

describe('writeRaw', () => {
  it.each(FORMATS.map((format) => ({ format, name: label(format) })))('$name: the samples as they are', async ({ format }) => {
    const image = makeImage(37, 23, format)
    const out = await collect(writeRaw({ width: 37, height: 23, format }, toBands(image, 37, format, unevenHeights(23))))
    expect(Buffer.from(out).equals(Buffer.from(image))).toBe(true)
  })
})

describe('band validation (shared by every writer)', () => {
  const format: PixelFormat = pixelFormat('rgb', 16)
  const init = { width: 2, height: 3, format }
  const row = () => new Uint8Array(2 * 6)

  const rejections: Array<[string, () => AsyncGenerator<Band>]> = [
    ['a band not starting at row 0', () => bandsOf({ y: 1, height: 3, data: new Uint8Array(36) })],
    ['a gap between bands', () => bandsOf({ y: 0, height: 1, data: row() }, { y: 2, height: 1, data: row() })],
    ['a band with too few bytes', () => bandsOf({ y: 0, height: 3, data: new Uint8Array(35) })],
    ['a band with too many bytes', () => bandsOf({ y: 0, height: 1, data: new Uint8Array(13) })],
    ['too many rows', () => bandsOf({ y: 0, height: 4, data: new Uint8Array(48) })],
    ['too few rows', () => bandsOf({ y: 0, height: 2, data: new Uint8Array(24) })],
    ['no bands', () => bandsOf()],
  ]
  it.each(rejections)('rejects %s with RangeError', async (_, bands) => {
    await expect(collect(writeRaw(init, bands()))).rejects.toThrow(RangeError)
  })

  const badInits: Array<[string, unknown]> = [
    ['width 0', { ...init, width: 0 }],
    ['fractional height', { ...init, height: 1.5 }],
    ['channels not matching the model', { ...init, format: { colorModel: 'rgb', channels: 4, bitsPerSample: 8 } }],
    ['12-bit samples', { ...init, format: { colorModel: 'rgb', channels: 3, bitsPerSample: 12 } }],
  ]
  it.each(badInits)('rejects %s with ERR_INVALID_ARGUMENT at call time', (_, bad) => {
    expect(() => writeRaw(bad as typeof init, bandsOf())).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }))
  })
})

describe('extensionFormat', () => {
  it.each([
    ['a.tif', 'tiff'],
    ['dir.x/b.TIFF', 'tiff'],
    ['c.png', 'png'],
    ['d.npy', 'npy'],
    ['e.pam', 'pam'],
    ['f.ppm', 'ppm'],
    ['g.pgm', 'pgm'],
    ['h.raw', 'raw'],
    ['i.bin', 'raw'],
    ['j.jpg', 'jpg'],
    ['k.JPEG', 'jpg'],
    ['l.webp', 'webp'],
    ['m.gif', undefined],
    ['tif', undefined],
  ])('%s -> %s', (path, format) => {
    expect(extensionFormat(path)).toBe(format)
  })
})
