/**
 * The importer's decoders against testdata/ (see testdata/README.md): every positive fixture
 * decoded at several band heights and compared pixel for pixel with its numpy truth; every
 * negative fixture rejected with its error code; temporary files always cleaned up.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import type { ColorModel } from '../../src/format/interface.js'
import { openDecoder } from '../../src/import/decoders/index.js'
import type { DecodedImage, DecodeOptions } from '../../src/import/decoders/interface.js'
import { parsePnmHeader } from '../../src/import/decoders/pnm.js'
import { TiffImage } from '../../src/import/decoders/tiff.js'
import { readNpy } from '../helpers/npy.js'

const DATA = fileURLToPath(new URL('../../testdata/', import.meta.url))
const fixture = (name: string): string => join(DATA, name)

const tmpRoot = mkdtempSync(join(tmpdir(), 'tessera-decoders-'))
afterAll(() => rmSync(tmpRoot, { recursive: true, force: true }))
/** A fresh, empty temporary directory per test, so "left nothing behind" is checkable. */
function freshTmp(): string {
  return mkdtempSync(join(tmpRoot, 'case-'))
}

function options(tmpDir: string, extra: Partial<DecodeOptions> = {}): DecodeOptions {
  return { maxPixels: 2 ** 31, tmpDir, ...extra }
}

/** Decodes every band, checks their geometry, and returns all rows concatenated. */
async function readAll(image: DecodedImage, bandHeight: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = []
  let y = 0
  const rowBytes = image.width * image.format.channels * (image.format.bitsPerSample / 8)
  for await (const band of image.bands(bandHeight)) {
    expect(band.y).toBe(y)
    expect(band.height).toBe(Math.min(bandHeight, image.height - y))
    expect(band.data.length).toBe(band.height * rowBytes)
    chunks.push(band.data.slice()) // a band is valid only until the next one is requested
    y += band.height
  }
  expect(y).toBe(image.height)
  return Buffer.concat(chunks)
}

/** Index of the first differing byte, or -1. */
function firstDifference(a: Uint8Array, b: Uint8Array): number {
  if (Buffer.compare(a, b) === 0) return -1
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i
  return n
}

interface Case {
  readonly file: string
  /** testdata/truth/<truth>.npy */
  readonly truth: string
  readonly colorModel: ColorModel
  readonly bits: 8 | 16
  readonly sourceFormat: string
  /** Which decoder must take it: streamed TIFF, PNM, or sharp. */
  readonly via: 'tiff' | 'pnm' | 'sharp'
  readonly icc?: boolean
}

const CASES: readonly Case[] = [
  { file: 'rgb8.png', truth: 'rgb8', colorModel: 'rgb', bits: 8, sourceFormat: 'png', via: 'sharp' },
  { file: 'rgb8-icc.png', truth: 'rgb8', colorModel: 'rgb', bits: 8, sourceFormat: 'png', via: 'sharp', icc: true },
  { file: 'rgb8.webp', truth: 'rgb8', colorModel: 'rgb', bits: 8, sourceFormat: 'webp', via: 'sharp' },
  // JPEG: the oracle is libjpeg-turbo's decode via PIL (see testdata/README.md).
  { file: 'rgb8.jpg', truth: 'rgb8-jpeg', colorModel: 'rgb', bits: 8, sourceFormat: 'jpeg', via: 'sharp' },
  // EXIF Orientation 6 is not applied: same pixels as rgb8.jpg.
  { file: 'rgb8-orient6.jpg', truth: 'rgb8-jpeg', colorModel: 'rgb', bits: 8, sourceFormat: 'jpeg', via: 'sharp' },
  { file: 'rgb8.ppm', truth: 'rgb8', colorModel: 'rgb', bits: 8, sourceFormat: 'pnm', via: 'pnm' },
  { file: 'rgb8-strip-none.tif', truth: 'rgb8', colorModel: 'rgb', bits: 8, sourceFormat: 'tiff', via: 'tiff' },
  { file: 'rgb8-strip-deflate.tif', truth: 'rgb8', colorModel: 'rgb', bits: 8, sourceFormat: 'tiff', via: 'tiff' },
  { file: 'rgb8-strip-lzw.tif', truth: 'rgb8', colorModel: 'rgb', bits: 8, sourceFormat: 'tiff', via: 'sharp' },
  { file: 'rgb8-planar.tif', truth: 'rgb8', colorModel: 'rgb', bits: 8, sourceFormat: 'tiff', via: 'sharp' },
  { file: 'rgb8-tiled-zstd.tif', truth: 'rgb8', colorModel: 'rgb', bits: 8, sourceFormat: 'tiff', via: 'tiff', icc: true },
  { file: 'rgb8-tiled-deflate.tif', truth: 'rgb8', colorModel: 'rgb', bits: 8, sourceFormat: 'tiff', via: 'tiff' },
  { file: 'rgb8-tiled-zstd-be-bigtiff.tif', truth: 'rgb8', colorModel: 'rgb', bits: 8, sourceFormat: 'tiff', via: 'tiff' },
  { file: 'gray8.png', truth: 'gray8', colorModel: 'gray', bits: 8, sourceFormat: 'png', via: 'sharp' },
  { file: 'gray8.pgm', truth: 'gray8', colorModel: 'gray', bits: 8, sourceFormat: 'pnm', via: 'pnm' },
  { file: 'gray8.pam', truth: 'gray8', colorModel: 'gray', bits: 8, sourceFormat: 'pnm', via: 'pnm' },
  { file: 'graya8.png', truth: 'graya8', colorModel: 'graya', bits: 8, sourceFormat: 'png', via: 'sharp' },
  { file: 'graya8.pam', truth: 'graya8', colorModel: 'graya', bits: 8, sourceFormat: 'pnm', via: 'pnm' },
  { file: 'graya8-strip-deflate.tif', truth: 'graya8', colorModel: 'graya', bits: 8, sourceFormat: 'tiff', via: 'tiff' },
  { file: 'rgba8.png', truth: 'rgba8', colorModel: 'rgba', bits: 8, sourceFormat: 'png', via: 'sharp' },
  { file: 'rgba8.webp', truth: 'rgba8', colorModel: 'rgba', bits: 8, sourceFormat: 'webp', via: 'sharp' },
  { file: 'rgba8.pam', truth: 'rgba8', colorModel: 'rgba', bits: 8, sourceFormat: 'pnm', via: 'pnm' },
  { file: 'rgb16.png', truth: 'rgb16', colorModel: 'rgb', bits: 16, sourceFormat: 'png', via: 'sharp' },
  { file: 'rgb16.ppm', truth: 'rgb16', colorModel: 'rgb', bits: 16, sourceFormat: 'pnm', via: 'pnm' },
  { file: 'rgb16.pam', truth: 'rgb16', colorModel: 'rgb', bits: 16, sourceFormat: 'pnm', via: 'pnm' },
  { file: 'rgb16-tiled-zstd.tif', truth: 'rgb16', colorModel: 'rgb', bits: 16, sourceFormat: 'tiff', via: 'tiff' },
  { file: 'rgb16-strip-deflate-be.tif', truth: 'rgb16', colorModel: 'rgb', bits: 16, sourceFormat: 'tiff', via: 'tiff' },
  { file: 'gray16.png', truth: 'gray16', colorModel: 'gray', bits: 16, sourceFormat: 'png', via: 'sharp' },
  { file: 'gray16.pgm', truth: 'gray16', colorModel: 'gray', bits: 16, sourceFormat: 'pnm', via: 'pnm' },
  { file: 'gray16-strip-none-be.tif', truth: 'gray16', colorModel: 'gray', bits: 16, sourceFormat: 'tiff', via: 'tiff' },
  { file: 'palette.png', truth: 'palette', colorModel: 'rgb', bits: 8, sourceFormat: 'png', via: 'sharp' },
  { file: 'palette.gif', truth: 'palette', colorModel: 'rgb', bits: 8, sourceFormat: 'gif', via: 'sharp' },
]

const BAND_HEIGHTS = [1, 7, 64, 100_000]

describe('decoders: positive fixtures against numpy truth', () => {
  it.each(CASES)('$file', async (c) => {
    const truth = readNpy(fixture(`truth/${c.truth}.npy`))
    const [height, width, channels = 1] = truth.shape as [number, number, number?]
    for (const bandHeight of BAND_HEIGHTS) {
      const tmpDir = freshTmp()
      const image = await openDecoder(fixture(c.file), options(tmpDir))
      try {
        expect({ width: image.width, height: image.height }).toEqual({ width, height })
        expect(image.format).toEqual({ colorModel: c.colorModel, channels, bitsPerSample: c.bits })
        expect(truth.bitsPerSample).toBe(c.bits)
        expect(image.sourceFormat).toBe(c.sourceFormat)
        expect(image instanceof TiffImage).toBe(c.via === 'tiff')
        if (c.icc === true) {
          // An ICC profile starts with its size and has 'acsp' at byte 36 (ICC.1 section 7.2).
          expect(image.icc).toBeDefined()
          expect(String.fromCharCode(...image.icc!.subarray(36, 40))).toBe('acsp')
        } else {
          expect(image.icc).toBeUndefined()
        }
        const pixels = await readAll(image, bandHeight)
        expect(pixels.length).toBe(truth.data.length)
        expect(firstDifference(pixels, truth.data), `first differing byte at bandHeight ${bandHeight}`).toBe(-1)
      } finally {
        await image.close()
        await image.close() // twice is fine
      }
      expect(readdirSync(tmpDir)).toEqual([])
    }
  })

  it('passes the same ICC profile through from PNG (sharp) and TIFF (streamed), unapplied', async () => {
    const tmpDir = freshTmp()
    const png = await openDecoder(fixture('rgb8-icc.png'), options(tmpDir))
    const tif = await openDecoder(fixture('rgb8-tiled-zstd.tif'), options(tmpDir))
    try {
      expect(png.icc!.length).toBeGreaterThan(128)
      expect(Buffer.compare(png.icc!, tif.icc!)).toBe(0)
    } finally {
      await png.close()
      await tif.close()
    }
    expect(readdirSync(tmpDir)).toEqual([])
  })
})

const NEGATIVE: ReadonlyArray<readonly [string, string]> = [
  ['bad/truncated.png', 'ERR_CORRUPT_INPUT'],
  ['bad/truncated.jpg', 'ERR_CORRUPT_INPUT'],
  ['bad/truncated.webp', 'ERR_CORRUPT_INPUT'],
  ['bad/truncated.ppm', 'ERR_CORRUPT_INPUT'],
  ['bad/truncated-tiled.tif', 'ERR_CORRUPT_INPUT'],
  ['bad/bad-crc.png', 'ERR_CORRUPT_INPUT'],
  ['bad/corrupt-tile-zstd.tif', 'ERR_CORRUPT_INPUT'],
  ['bad/corrupt-lzw.tif', 'ERR_CORRUPT_INPUT'],
  ['bad/zstd-planar.tif', 'ERR_UNSUPPORTED_FORMAT'],
  ['bad/text.png', 'ERR_UNSUPPORTED_FORMAT'],
  ['bad/empty.png', 'ERR_UNSUPPORTED_FORMAT'],
  ['bad/huge.png', 'ERR_LIMIT'],
  ['bad/cmyk.jpg', 'ERR_UNSUPPORTED_FORMAT'],
  ['bad/cmyk.tif', 'ERR_UNSUPPORTED_FORMAT'],
  ['bad/miniswhite.tif', 'ERR_UNSUPPORTED_FORMAT'],
  ['bad/float32.tif', 'ERR_UNSUPPORTED_FORMAT'],
  ['bad/maxval1000.pgm', 'ERR_UNSUPPORTED_FORMAT'],
  // 1-bit gray would be rescaled to 0/255 by libpng (spec/format.md §9): refused, like P4.
  ['gray1.png', 'ERR_UNSUPPORTED_FORMAT'],
  ['bad/ascii.ppm', 'ERR_UNSUPPORTED_FORMAT'],
  ['bad/vector.svg', 'ERR_UNSUPPORTED_FORMAT'],
  ['bad/does-not-exist.png', 'ERR_NOT_FOUND'],
]

/** Opens, reads every band and closes; resolves to the error thrown on the way, if any. */
async function decodeError(path: string, opts: DecodeOptions): Promise<unknown> {
  let image: DecodedImage | undefined
  try {
    image = await openDecoder(path, opts)
    await readAll(image, 64)
    return undefined
  } catch (error) {
    return error
  } finally {
    await image?.close()
  }
}

describe('decoders: negative fixtures', () => {
  it.each(NEGATIVE)('%s -> %s', async (file, code) => {
    const tmpDir = freshTmp()
    const error = await decodeError(fixture(file), options(tmpDir))
    expect(error).toBeInstanceOf(Error)
    expect((error as { code?: string }).code).toBe(code)
    expect(readdirSync(tmpDir)).toEqual([])
  })
})

describe('decoders: maxPixels is checked from the header, before decoding', () => {
  // 211 x 143 = 30173 pixels in each.
  it.each(['rgb8.ppm', 'rgb8-tiled-zstd.tif', 'rgb8-strip-lzw.tif', 'rgb8.png'])('%s', async (file) => {
    const tmpDir = freshTmp()
    const error = await decodeError(fixture(file), options(tmpDir, { maxPixels: 211 * 143 - 1 }))
    expect((error as { code?: string }).code).toBe('ERR_LIMIT')
    expect(await decodeError(fixture(file), options(tmpDir, { maxPixels: 211 * 143 }))).toBeUndefined()
    expect(readdirSync(tmpDir)).toEqual([])
  })

  it('refuses a PNG bomb as ERR_LIMIT, not as a decoding error', async () => {
    // huge.png declares 100000 x 100000 but holds almost no data: decoding would fail as corrupt.
    const error = await decodeError(fixture('bad/huge.png'), options(freshTmp(), { maxPixels: 2 ** 31 }))
    expect((error as { code?: string }).code).toBe('ERR_LIMIT')
  })
})

describe('decoders: API contract', () => {
  it('rejects invalid options and paths', async () => {
    const tmpDir = freshTmp()
    for (const maxPixels of [0, -1, 1.5, Number.NaN]) {
      await expect(openDecoder(fixture('rgb8.png'), options(tmpDir, { maxPixels }))).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
    }
    await expect(openDecoder(DATA, options(tmpDir))).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
    await expect(openDecoder(fixture('rgb8.png'), options(join(tmpDir, 'missing')))).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
    expect(readdirSync(tmpDir)).toEqual([])
  })

  it.each(['rgb8.png', 'rgb8.ppm', 'rgb8-tiled-zstd.tif'])('%s: bands() is callable once, with a positive integer', async (file) => {
    const tmpDir = freshTmp()
    const image = await openDecoder(fixture(file), options(tmpDir))
    try {
      expect(() => image.bands(0)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }))
      expect(() => image.bands(2.5)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }))
      image.bands(16)
      expect(() => image.bands(16)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }))
    } finally {
      await image.close()
    }
    expect(readdirSync(tmpDir)).toEqual([])
  })

  it.each(['rgb8.png', 'rgb8.ppm', 'rgb8-tiled-zstd.tif'])('%s: stops on abort between bands', async (file) => {
    const tmpDir = freshTmp()
    const controller = new AbortController()
    const image = await openDecoder(fixture(file), options(tmpDir))
    let bands = 0
    try {
      await expect(
        (async () => {
          for await (const _ of image.bands(16, { signal: controller.signal })) {
            bands++
            controller.abort()
          }
        })(),
      ).rejects.toMatchObject({ name: 'AbortError' })
    } finally {
      await image.close()
    }
    expect(bands).toBe(1)
    const aborted = AbortSignal.abort()
    await expect(openDecoder(fixture(file), options(tmpDir, { signal: aborted }))).rejects.toMatchObject({ name: 'AbortError' })
    expect(readdirSync(tmpDir)).toEqual([])
  })
})

describe('pnm header parser', () => {
  const bytes = (text: string): Uint8Array => new TextEncoder().encode(text)
  it.each([
    ['P5 3 2 255 ', { magic: 'P5', width: 3, height: 2, maxval: 255, colorModel: 'gray', dataOffset: 11 }],
    ['P6\n#c\n3#x\n 2\n65535\n', { magic: 'P6', width: 3, height: 2, maxval: 65535, colorModel: 'rgb', dataOffset: 19 }],
    ['P7\nWIDTH 3\nHEIGHT 2\nDEPTH 2\nMAXVAL 255\nENDHDR\n', { magic: 'P7', width: 3, height: 2, colorModel: 'graya', dataOffset: 46 }],
    ['P7\nWIDTH 3\nHEIGHT 2\nDEPTH 4\nMAXVAL 255\nTUPLTYPE RGB_ALPHA\nENDHDR\n', { colorModel: 'rgba' }],
  ])('%j', (text, expected) => {
    expect(parsePnmHeader(bytes(text), true)).toMatchObject(expected)
  })

  it.each([
    ['P5 3 2', 'ERR_CORRUPT_INPUT'],
    ['P5 3 -2 255 ', 'ERR_CORRUPT_INPUT'],
    ['P7\nWIDTH 3\nHEIGHT 2\nDEPTH 3\nMAXVAL 255\nTUPLTYPE GRAYSCALE\nENDHDR\n', 'ERR_CORRUPT_INPUT'],
    ['P7\nWIDTH 3\nHEIGHT 2\nDEPTH 1\nMAXVAL 1\nTUPLTYPE BLACKANDWHITE\nENDHDR\n', 'ERR_UNSUPPORTED_FORMAT'],
    ['P7\nWIDTH 3\nHEIGHT 2\nDEPTH 5\nMAXVAL 255\nENDHDR\n', 'ERR_UNSUPPORTED_FORMAT'],
    ['P4 3 2 ', 'ERR_UNSUPPORTED_FORMAT'],
  ])('%j -> %s', (text, code) => {
    expect(() => parsePnmHeader(bytes(text), true)).toThrow(expect.objectContaining({ code }))
  })
})

describe('decoders: TIFF tags nobody reads', () => {
  it('a tag whose values point past the end of the file is let be, as libtiff lets it; a needed one is not', async () => {
    const { tiff } = await import('../../testdata/bad/encoders.js')
    const { writeFileSync } = await import('node:fs')
    const { cropStream } = await import('../../src/stream/index.js')
    // XMP (700): 40 bytes stored out of the IFD, then its offset moved far past the end.
    const bytes = tiff({ width: 9, height: 5, extra: [[700, 1, Array.from({ length: 40 }, (_, i) => i)]] })
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length)
    const ifd = view.getUint32(4, true)
    const entryOf = (tag: number): number => {
      for (let i = 0, n = view.getUint16(ifd, true); i < n; i++) if (view.getUint16(ifd + 2 + 12 * i, true) === tag) return ifd + 2 + 12 * i
      throw new Error(`no tag ${tag}`)
    }
    view.setUint32(entryOf(700) + 8, 0x7fff0000, true)
    const dir = freshTmp()
    const path = join(dir, 'stray-xmp.tif')
    writeFileSync(path, bytes)
    const image = await openDecoder(path, options(dir))
    const pixels = await readAll(image, 2)
    await image.close()
    expect(pixels.length).toBe(45)
    const crop = await cropStream(path, [{ x: 0, y: 0, width: 9, height: 5 }], { format: 'raw' })
    const parts: Uint8Array[] = []
    for await (const part of crop.outputs[0]!.bytes()) parts.push(part)
    expect(Buffer.compare(Buffer.concat(parts), Buffer.from(pixels))).toBe(0)
    // The same fault in a tag that is read (BitsPerSample of 3 samples, out of line) is corrupt.
    const rgb = tiff({ width: 9, height: 5, samples: 3 })
    const rgbView = new DataView(rgb.buffer, rgb.byteOffset, rgb.length)
    const rgbIfd = rgbView.getUint32(4, true)
    for (let i = 0, n = rgbView.getUint16(rgbIfd, true); i < n; i++) {
      const at = rgbIfd + 2 + 12 * i
      if (rgbView.getUint16(at, true) === 258) rgbView.setUint32(at + 8, 0x7fff0000, true)
    }
    const rgbPath = join(dir, 'stray-bits.tif')
    writeFileSync(rgbPath, rgb)
    await expect(openDecoder(rgbPath, options(dir))).rejects.toMatchObject({
      code: 'ERR_CORRUPT_INPUT',
      message: expect.stringContaining('tag 258'),
    })
  })
})

describe('decoders: PNG damage libpng only warns about', () => {
  // Found by the stream fuzzer (test/stream/fuzz.ts): libpng decodes around these with a
  // warning, which sharp's failOn 'warning' lets through, and libvips makes up the pixels.
  const dir = fixture('bad/libpng-warnings')
  it.each(readdirSync(dir))('%s: ERR_CORRUPT_INPUT, nothing left behind', async (name) => {
    const tmp = freshTmp()
    const error = await (async () => {
      const image = await openDecoder(join(dir, name), options(tmp))
      try {
        await readAll(image, 4)
      } finally {
        await image.close()
      }
    })().then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toMatchObject({
      code: 'ERR_CORRUPT_INPUT',
      message: expect.stringMatching(/^PNG (image data does not inflate|\w{4} chunk fails its CRC)/),
    })
    expect(readdirSync(tmp)).toEqual([])
  })
})
