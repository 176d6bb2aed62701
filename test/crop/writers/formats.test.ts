/**
 * The output format table: consistent with itself, with spec/outputs.md, and with its writers
 * (a length known up front is the length written); the jpg and webp writers read back by sharp.
 */
import { readFile } from 'node:fs/promises'
import sharp from 'sharp'
import { describe, expect, it } from 'vitest'
import { extensionFormat, OUTPUT_FORMAT_NAMES, OUTPUT_FORMATS, outputCompression, outputFormat } from '../../../src/crop/writers/formats.js'
import type { OutputInit, TiffCompression } from '../../../src/crop/writers/interface.js'
import { writeLossy } from '../../../src/crop/writers/lossy.js'
import type { PixelFormat } from '../../../src/format/interface.js'
import { pixelFormat } from '../../../src/format/pixel.js'
import { collect, FORMATS, label, makeImage, toBands, unevenHeights } from './images.js'

function initOf(format: PixelFormat, compression: TiffCompression, width = 37, height = 23): OutputInit {
  return { width, height, format, compression, tileSize: 16, predictor: 2, zstdLevel: 3 }
}

/** Whether a Netpbm kind can hold the pixel format (ppm: rgb, pgm: gray). */
function holds(name: string, format: PixelFormat): boolean {
  return (name !== 'ppm' || format.colorModel === 'rgb') && (name !== 'pgm' || format.colorModel === 'gray')
}

describe('OUTPUT_FORMATS', () => {
  it('names each row by its key, and gives each extension to one format', () => {
    for (const [key, spec] of Object.entries(OUTPUT_FORMATS)) expect(spec.name).toBe(key)
    const extensions = Object.values(OUTPUT_FORMATS).flatMap((spec) => spec.extensions)
    expect(new Set(extensions).size).toBe(extensions.length)
    expect(extensionFormat('x.TIFF')).toBe('tiff')
    expect(outputFormat('raw').extensions[0]).toBe('bin')
  })

  it('is the table of spec/outputs.md', async () => {
    const text = await readFile(new URL('../../../spec/outputs.md', import.meta.url), 'utf8')
    const rows = text
      .split('\n')
      .filter((line) => /^\| `[a-z]+` \|/.test(line))
      .map((line) =>
        line
          .split('|')
          .slice(1, -1)
          .map((cell) => cell.trim()),
      )
    const codes = (cell: string) => [...cell.matchAll(/`\.?([a-z/-]+)`/g)].map((m) => m[1])
    expect(
      rows.map(([name, extensions, media, pixels, compressions]) => ({
        name: codes(name!)[0],
        extensions: codes(extensions!),
        mediaType: codes(media!)[0],
        lossless: pixels === 'exact',
        compressions: codes(compressions!),
      })),
    ).toEqual(
      OUTPUT_FORMAT_NAMES.map((name) => {
        const { extensions, mediaType, lossless, compressions } = OUTPUT_FORMATS[name]
        return { name, extensions, mediaType, lossless, compressions }
      }),
    )
  })

  it('checks compressions against the format and applies its default', () => {
    expect(outputCompression(OUTPUT_FORMATS.tiff)).toBe('zstd')
    expect(outputCompression(OUTPUT_FORMATS.png)).toBe('deflate')
    expect(outputCompression(OUTPUT_FORMATS.npy, 'zstd')).toBe('none')
    expect(() => outputCompression(OUTPUT_FORMATS.png, 'zstd')).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT', message: 'PNG compression must be deflate or none, not zstd' }),
    )
    expect(() => outputFormat('gif')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }))
    expect(() => outputFormat('toString')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }))
  })

  const lossless = OUTPUT_FORMAT_NAMES.filter((name) => OUTPUT_FORMATS[name].lossless)
  const cases = lossless.flatMap((name) =>
    FORMATS.filter((format) => holds(name, format)).flatMap((format) =>
      [...(OUTPUT_FORMATS[name].compressions.length === 0 ? ['none' as const] : OUTPUT_FORMATS[name].compressions)].map((compression) => ({
        name,
        format,
        compression,
        title: `${name} ${compression} of ${label(format)}`,
      })),
    ),
  )
  it.each(cases)('$title: a length known up front is the length written', async ({ name, format, compression }) => {
    const init = initOf(format, compression)
    const image = makeImage(init.width, init.height, format, 3)
    const spec = OUTPUT_FORMATS[name]
    const bytes = await collect(spec.write(init, toBands(image, init.width, format, unevenHeights(init.height))))
    const known = spec.length(init)
    if (known !== undefined) expect(known).toBe(bytes.length)
    // Exactly the uncompressed layouts know their length.
    expect(known === undefined).toBe(name === 'png' || (name === 'tiff' && compression !== 'none'))
  })
})

describe('writeLossy', () => {
  it.each([
    ['jpg', pixelFormat('rgba', 16), 3],
    // sharp writes its sRGB output space: gray becomes three equal channels.
    ['jpg', pixelFormat('graya', 8), 3],
    ['webp', pixelFormat('rgba', 16), 4],
    ['webp', pixelFormat('rgb', 8), 3],
  ] as const)('%s of %o: 8-bit approximations, alpha only in webp', async (kind, format, channels) => {
    // A smooth image (lossy codecs are judged on what they are for), 16-bit values off the
    // multiples of 257 so that rounding is exercised.
    const [width, height] = [64, 40]
    const value = (p: number, c: number) => 20 + 2 * (p % width) + Math.floor(p / width) + 10 * c
    const wide = format.bitsPerSample === 16
    const image = new Uint8Array(width * height * format.channels * (wide ? 2 : 1))
    for (let p = 0; p < width * height; p++) {
      for (let c = 0; c < format.channels; c++) {
        const s = p * format.channels + c
        if (wide) new DataView(image.buffer).setUint16(2 * s, value(p, c) * 257 + 100, true)
        else image[s] = value(p, c)
      }
    }
    const spec = OUTPUT_FORMATS[kind]
    const init = initOf(format, 'none', width, height)
    expect(spec.length(init)).toBeUndefined()
    const bytes = await collect(spec.write(init, toBands(image, width, format, unevenHeights(height))))
    expect(await sharp(bytes).metadata()).toMatchObject({ format: kind === 'jpg' ? 'jpeg' : 'webp', width, height, channels })
    const { data, info } = await sharp(bytes).raw().toBuffer({ resolveWithObject: true })
    let sum = 0
    for (let p = 0; p < width * height; p++) {
      for (let c = 0; c < channels; c++) sum += Math.abs(value(p, format.channels < 3 ? 0 : c) - data[p * info.channels + c]!)
    }
    expect(sum / (width * height * channels)).toBeLessThan(3)
  })

  it('refuses sizes the format cannot hold at call time', () => {
    const format = pixelFormat('rgb', 8)
    expect(() => writeLossy({ width: 16_384, height: 1, format }, toBands(new Uint8Array(0), 1, format, []), 'webp')).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
    )
  })
})
