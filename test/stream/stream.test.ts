/**
 * Stream cropping (src/stream/): every input format, from a file and from a stream of small
 * chunks, over a table of regions (origin 1x1, top rows, interior, bottom-right, last pixel,
 * whole image), all cropped in one pass and compared with a naive crop of the whole decoded
 * input (numpy truths of testdata/, the importer's own decode, or the pixels we encoded).
 * Then: several regions decoded once, early stop, every output format, broken inputs by code.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { carHeader, exportCar } from '../../src/car/export.js'
import { OUTPUT_FORMAT_NAMES, OUTPUT_FORMATS } from '../../src/crop/writers/formats.js'
import { type CID, cborBlock } from '../../src/format/block.js'
import type { Region } from '../../src/format/interface.js'
import { cropImage, importImage, openImage, openStore } from '../../src/image.js'
import { openDecoder } from '../../src/import/decoders/index.js'
import type { BlockStore } from '../../src/store/interface.js'
import { cropStream, type StreamCropOptions, type StreamInput } from '../../src/stream/index.js'
import { readNpy } from '../helpers/npy.js'
import { makeImage, naiveCrop, type TestImage, writePam } from '../helpers/oracle.js'
import { encodePng, type PngSpec } from './png-encoder.js'
import { stripTiff } from './tiff-builder.js'

const DATA = fileURLToPath(new URL('../../testdata/', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'tessera-stream-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

async function collect(bytes: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Uint8Array[] = []
  for await (const chunk of bytes) chunks.push(chunk.slice())
  return Buffer.concat(chunks)
}

/** A stream of `bytes` in chunks of `size`, recording how much was taken and whether it was let go. */
function chunked(bytes: Uint8Array, size = 101) {
  const state = { taken: 0, released: false }
  async function* chunks(): AsyncGenerator<Uint8Array> {
    try {
      for (let at = 0; at < bytes.length; at += size) {
        const chunk = bytes.subarray(at, at + size)
        state.taken += chunk.length
        yield chunk
      }
    } finally {
      state.released = true
    }
  }
  return { input: chunks(), state }
}

/** Every region cropped to raw in one pass. */
async function rawCrops(input: StreamInput, regions: readonly Region[], options: StreamCropOptions = {}) {
  const crop = await cropStream(input, regions, { format: 'raw', ...options })
  const outputs = await Promise.all(crop.outputs.map((output) => collect(output.bytes())))
  await crop.done
  return { crop, outputs }
}

function regionsOf(width: number, height: number): Region[] {
  return [
    { x: 0, y: 0, width: 1, height: 1 },
    { x: 1, y: 0, width: width - 2, height: Math.min(3, height) },
    { x: Math.floor(width / 3), y: Math.floor(height / 3), width: Math.ceil(width / 3), height: Math.ceil(height / 4) },
    { x: width - 5, y: height - 4, width: 5, height: 4 },
    { x: width - 1, y: height - 1, width: 1, height: 1 },
    { x: 0, y: 0, width, height },
  ]
}

/** Crops every region of the table from the file at `path` and from a chunked stream of it, checking each against `truth`. */
async function checkAll(path: string, truth: TestImage, chunk = 101): Promise<void> {
  const regions = regionsOf(truth.width, truth.height)
  const bytes = await readFile(path)
  for (const input of [path, chunked(bytes, chunk).input]) {
    const { crop, outputs } = await rawCrops(input, regions)
    expect(crop.image.width).toBe(truth.width)
    expect(crop.image.height).toBe(truth.height)
    expect(crop.image.format.channels).toBe(truth.channels)
    expect(crop.image.format.bitsPerSample).toBe(truth.bits)
    regions.forEach((region, i) => {
      expect(Buffer.compare(outputs[i]!, naiveCrop(truth, region)), `${path} ${JSON.stringify(region)}`).toBe(0)
    })
  }
}

function truthOf(name: string): TestImage {
  const npy = readNpy(join(DATA, 'truth', `${name}.npy`))
  const [height, width, channels = 1] = npy.shape as number[]
  return { width: width!, height: height!, channels, bits: npy.bitsPerSample, data: npy.data }
}

/** The importer's decode of the file at `path`, whole: the oracle for "as the importer stores it". */
async function importerDecode(path: string): Promise<TestImage> {
  const image = await openDecoder(path, { maxPixels: 2 ** 31, tmpDir: dir })
  const bands: Uint8Array[] = []
  for await (const band of image.bands(64)) bands.push(band.data.slice())
  await image.close()
  return {
    width: image.width,
    height: image.height,
    channels: image.format.channels,
    bits: image.format.bitsPerSample,
    data: Buffer.concat(bands),
  }
}

/** Deterministic samples in [0, max]. */
function samples(count: number, max: number, seed = 1): number[] {
  let state = seed * 2654435761
  return Array.from({ length: count }, () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0
    return (state >>> 8) % (max + 1)
  })
}

describe('stream crop: fixtures against their numpy truth', () => {
  const cases: Array<[string, string]> = [
    ['rgb8.png', 'rgb8'],
    ['rgb8-icc.png', 'rgb8'],
    ['gray8.png', 'gray8'],
    ['graya8.png', 'graya8'],
    ['rgba8.png', 'rgba8'],
    ['rgb16.png', 'rgb16'],
    ['gray16.png', 'gray16'],
    ['palette.png', 'palette'],
    ['rgb8.ppm', 'rgb8'],
    ['gray8.pgm', 'gray8'],
    ['gray16.pgm', 'gray16'],
    ['rgb16.ppm', 'rgb16'],
    ['gray8.pam', 'gray8'],
    ['graya8.pam', 'graya8'],
    ['rgba8.pam', 'rgba8'],
    ['rgb16.pam', 'rgb16'],
    ['rgb8-strip-none.tif', 'rgb8'],
    ['rgb8-strip-deflate.tif', 'rgb8'],
    ['rgb8-tiled-zstd.tif', 'rgb8'],
    ['rgb8-tiled-deflate.tif', 'rgb8'],
    ['rgb8-tiled-zstd-be-bigtiff.tif', 'rgb8'],
    ['graya8-strip-deflate.tif', 'graya8'],
    ['rgb16-tiled-zstd.tif', 'rgb16'],
    ['rgb16-strip-deflate-be.tif', 'rgb16'],
    ['gray16-strip-none-be.tif', 'gray16'],
  ]
  it.each(cases)('%s', async (file, truth) => {
    await checkAll(join(DATA, file), truthOf(truth))
  })

  it('keeps the ICC profile of a PNG and of a TIFF', async () => {
    const png = await cropStream(join(DATA, 'rgb8-icc.png'), [{ x: 0, y: 0, width: 2, height: 2 }])
    const tiff = await cropStream(join(DATA, 'rgb8-tiled-zstd.tif'), [{ x: 0, y: 0, width: 2, height: 2 }])
    expect(png.image.icc?.length).toBeGreaterThan(100)
    expect(Buffer.compare(Buffer.from(png.image.icc!), Buffer.from(tiff.image.icc!))).toBe(0)
    await Promise.all([png.close(), tiff.close()])
  })

  it('decodes a file libvips reads (JPEG) the importer way, and refuses it on a stream', async () => {
    await expect(
      rawCrops(chunked(await readFile(join(DATA, 'rgb8.jpg'))).input, [{ x: 0, y: 0, width: 1, height: 1 }]),
    ).rejects.toMatchObject({
      code: 'ERR_UNSUPPORTED_FORMAT',
    })
    const truth = truthOf('rgb8-jpeg')
    const region = { x: 20, y: 100, width: 30, height: 20 }
    const { outputs } = await rawCrops(join(DATA, 'rgb8.jpg'), [region])
    expect(Buffer.compare(outputs[0]!, naiveCrop(truth, region))).toBe(0)
  })
})

describe('stream crop: every PNG colour type and bit depth, as the importer decodes it', () => {
  const W = 37
  const H = 29
  const palette = samples(3 * 11, 255, 7)
  const cases: Array<[string, Omit<PngSpec, 'width' | 'height' | 'samples'> & { max: number; channels: number }]> = [
    ['gray 8-bit', { colorType: 0, bitDepth: 8, max: 255, channels: 1 }],
    ['gray 16-bit', { colorType: 0, bitDepth: 16, max: 65535, channels: 1 }],
    ['gray 8-bit + tRNS', { colorType: 0, bitDepth: 8, max: 7, channels: 1, trns: Uint8Array.of(0, 3) }],
    ['gray 16-bit + tRNS', { colorType: 0, bitDepth: 16, max: 7, channels: 1, trns: Uint8Array.of(0, 5) }],
    ['gray+alpha 8-bit', { colorType: 4, bitDepth: 8, max: 255, channels: 2 }],
    ['gray+alpha 16-bit', { colorType: 4, bitDepth: 16, max: 65535, channels: 2 }],
    ['RGB 8-bit', { colorType: 2, bitDepth: 8, max: 255, channels: 3 }],
    ['RGB 16-bit', { colorType: 2, bitDepth: 16, max: 65535, channels: 3 }],
    ['RGB 8-bit + tRNS', { colorType: 2, bitDepth: 8, max: 3, channels: 3, trns: Uint8Array.of(0, 1, 0, 2, 0, 3) }],
    ['RGB 16-bit + tRNS', { colorType: 2, bitDepth: 16, max: 3, channels: 3, trns: Uint8Array.of(0, 1, 0, 2, 0, 3) }],
    ['RGBA 8-bit', { colorType: 6, bitDepth: 8, max: 255, channels: 4 }],
    ['RGBA 16-bit', { colorType: 6, bitDepth: 16, max: 65535, channels: 4 }],
    ['palette 1-bit', { colorType: 3, bitDepth: 1, max: 1, channels: 1, palette: palette.slice(0, 6) }],
    ['palette 2-bit', { colorType: 3, bitDepth: 2, max: 3, channels: 1, palette: palette.slice(0, 12) }],
    ['palette 4-bit', { colorType: 3, bitDepth: 4, max: 10, channels: 1, palette }],
    ['palette 8-bit', { colorType: 3, bitDepth: 8, max: 10, channels: 1, palette }],
    ['palette 8-bit + tRNS', { colorType: 3, bitDepth: 8, max: 10, channels: 1, palette, trns: Uint8Array.of(0, 128, 255, 7) }],
    ['palette 4-bit + tRNS', { colorType: 3, bitDepth: 4, max: 10, channels: 1, palette, trns: Uint8Array.of(9) }],
    ['palette 8-bit, indices past the palette', { colorType: 3, bitDepth: 8, max: 15, channels: 1, palette }],
    ['palette 8-bit + tRNS, indices past both', { colorType: 3, bitDepth: 8, max: 15, channels: 1, palette, trns: Uint8Array.of(0, 9) }],
  ]
  it.each(cases)('%s (every filter type, small IDAT chunks)', async (name, { max, channels, ...spec }) => {
    const path = join(dir, `${name.replace(/\W+/g, '-')}.png`)
    writeFileSync(path, encodePng({ width: W, height: H, samples: samples(W * H * channels, max), idatBytes: 97, ...spec }))
    const truth = await importerDecode(path)
    await checkAll(path, truth, 13)
  })

  it.each([1, 2, 4] as const)('refuses %i-bit gray, as the importer does', async (bitDepth) => {
    const path = join(dir, `gray${bitDepth}.png`)
    writeFileSync(path, encodePng({ width: 9, height: 3, colorType: 0, bitDepth, samples: samples(27, (1 << bitDepth) - 1) }))
    await expect(importerDecode(path)).rejects.toMatchObject({ code: 'ERR_UNSUPPORTED_FORMAT' })
    await expect(cropStream(path, [{ x: 0, y: 0, width: 1, height: 1 }])).rejects.toMatchObject({ code: 'ERR_UNSUPPORTED_FORMAT' })
  })

  it('refuses an interlaced PNG with ERR_UNSUPPORTED_FORMAT', async () => {
    const bytes = encodePng({ width: 4, height: 4, colorType: 0, bitDepth: 8, samples: samples(16, 255), interlace: true })
    await expect(cropStream(chunked(bytes).input, [{ x: 0, y: 0, width: 1, height: 1 }])).rejects.toMatchObject({
      code: 'ERR_UNSUPPORTED_FORMAT',
    })
  })

  it('skips ancillary chunks, checking their CRC', async () => {
    const extra: Array<[string, Uint8Array]> = [['tEXt', new TextEncoder().encode('Comment\0hello')]]
    const good = encodePng({ width: 5, height: 3, colorType: 0, bitDepth: 8, samples: samples(15, 255), extra })
    const { outputs } = await rawCrops(chunked(good, 3).input, [{ x: 0, y: 0, width: 5, height: 3 }])
    expect([...outputs[0]!]).toEqual(samples(15, 255))
    const bad = good.slice()
    bad[33 + 8 + 2]! ^= 1 // inside tEXt's data
    await expect(rawCrops(chunked(bad).input, [{ x: 0, y: 0, width: 1, height: 1 }])).rejects.toMatchObject({ code: 'ERR_CORRUPT_INPUT' })
  })
})

describe('stream crop: one pass for many regions, stopping early', () => {
  const tall = makeImage(600, 4000, 3, 8, 5)
  let png: Uint8Array
  beforeAll(() => {
    png = encodePng({ width: tall.width, height: tall.height, colorType: 2, bitDepth: 8, samples: tall.data, idatBytes: 8192 })
  })

  it('decodes the input once for several regions, each exact', async () => {
    const regions = [
      { x: 0, y: 10, width: 50, height: 20 },
      { x: 550, y: 400, width: 50, height: 300 },
      { x: 7, y: 1100, width: 100, height: 50 },
      { x: 0, y: 0, width: 600, height: 1 },
    ]
    const one = await rawCrops(chunked(png, 4096).input, [regions[2]!])
    const many = await rawCrops(chunked(png, 4096).input, regions)
    expect(many.crop.stats.rowsDecoded).toBe(1150)
    expect(many.crop.stats.rowsDecoded).toBe(one.crop.stats.rowsDecoded)
    regions.forEach((region, i) => {
      expect(Buffer.compare(many.outputs[i]!, naiveCrop(tall, region))).toBe(0)
    })
  })

  it('stops reading after the last needed row and releases the input', async () => {
    const { input, state } = chunked(png, 4096)
    const { crop, outputs } = await rawCrops(input, [{ x: 10, y: 20, width: 30, height: 40 }])
    expect(Buffer.compare(outputs[0]!, naiveCrop(tall, { x: 10, y: 20, width: 30, height: 40 }))).toBe(0)
    expect(crop.stats.rowsDecoded).toBe(60)
    expect(state.released).toBe(true)
    expect(state.taken).toBeLessThan(png.length * 0.15)
    expect(crop.stats.bytesRead).toBe(state.taken)

    const path = join(dir, 'tall.png')
    writeFileSync(path, png)
    const fromFile = await rawCrops(path, [{ x: 10, y: 20, width: 30, height: 40 }])
    expect(fromFile.crop.stats.inputBytes).toBe(png.length)
    expect(fromFile.crop.stats.bytesRead).toBeLessThan(png.length * 0.15)
  })

  it('stops early in PNM and TIFF streams too, skipping rows no region needs', async () => {
    const pam = join(dir, 'tall.pam')
    await writePam(pam, tall)
    const tiff = stripTiff({ width: tall.width, height: tall.height, channels: 3, data: tall.data, rowsPerStrip: 16 })
    for (const bytes of [await readFile(pam), tiff]) {
      const { input, state } = chunked(bytes, 4096)
      const regions = [
        { x: 3, y: 5, width: 20, height: 10 },
        { x: 3, y: 300, width: 20, height: 10 },
      ]
      const { crop, outputs } = await rawCrops(input, regions)
      regions.forEach((region, i) => {
        expect(Buffer.compare(outputs[i]!, naiveCrop(tall, region))).toBe(0)
      })
      expect(state.released).toBe(true)
      expect(state.taken).toBeLessThan(bytes.length * 0.3)
      expect(crop.stats.rowsDecoded).toBeLessThan(100)
    }
  })

  it('goes on for the other outputs when one reader leaves, and releases the input when all have', async () => {
    const regions = [
      { x: 0, y: 0, width: 600, height: 600 },
      { x: 0, y: 0, width: 10, height: 1000 },
    ]
    const { input, state } = chunked(png, 4096)
    const crop = await cropStream(input, regions, { format: 'raw' })
    const [first, second] = crop.outputs
    const left = (async () => {
      for await (const _ of first!.bytes()) break
    })()
    const whole = collect(second!.bytes())
    await left
    expect(Buffer.compare(await whole, naiveCrop(tall, regions[1]!))).toBe(0)
    await crop.done
    expect(state.released).toBe(true)

    const { input: again, state: againState } = chunked(png, 4096)
    const abandoned = await cropStream(again, regions, { format: 'raw' })
    await Promise.all(
      abandoned.outputs.map(async (output) => {
        for await (const _ of output.bytes()) break
      }),
    )
    await abandoned.done
    expect(againState.released).toBe(true)
    expect(againState.taken).toBeLessThan(png.length / 2)
  })
})

describe('stream crop: every output format', () => {
  const rgb = makeImage(70, 50, 3, 8, 3)
  const gray = makeImage(70, 50, 1, 16, 4)
  const region = { x: 5, y: 7, width: 41, height: 33 }

  it.each(OUTPUT_FORMAT_NAMES)('%s: the bytes the format writes from a naive crop', async (name) => {
    const image = name === 'pgm' ? gray : rgb
    const colorType = image.channels === 1 ? 0 : 2
    const png = encodePng({
      width: image.width,
      height: image.height,
      colorType,
      bitDepth: image.bits,
      samples: image.bits === 8 ? image.data : new Uint16Array(image.data.buffer.slice(0)),
    })
    const spec = OUTPUT_FORMATS[name]
    const crop = await cropStream(chunked(png, 333).input, [region], { format: name })
    const actual = await collect(crop.outputs[0]!.bytes())
    const init = {
      width: region.width,
      height: region.height,
      format: crop.image.format,
      compression: spec.compressions[0] ?? 'none',
      tileSize: 256,
      predictor: 2 as const,
      zstdLevel: 3,
    }
    async function* oneBand() {
      yield { y: 0, height: region.height, data: naiveCrop(image, region) }
    }
    const expected = await collect(spec.write(init, oneBand()))
    expect(Buffer.compare(actual, expected)).toBe(0)
    expect(crop.outputs[0]!.length ?? actual.length).toBe(actual.length)
  })
})

describe('stream crop: a Tessera CAR', () => {
  let store: BlockStore
  let source: TestImage
  let car: Uint8Array
  let carPath: string
  let cid: CID

  beforeAll(async () => {
    // Blank rows 40-79 and a blank block at the right: repeated tiles and repeated index blocks.
    source = makeImage(150, 110, 3, 8, 9)
    const rowBytes = 150 * 3
    source.data.fill(0, 40 * rowBytes, 80 * rowBytes)
    for (let y = 80; y < 110; y++) source.data.fill(0, y * rowBytes + 100 * 3, (y + 1) * rowBytes)
    const pam = join(dir, 'car-source.pam')
    await writePam(pam, source)
    store = await openStore('memory:')
    cid = (await importImage(store, pam, { tileSize: 16, pyramid: true })).cid
    car = await collect(exportCar(store, cid))
    carPath = join(dir, 'image.car')
    writeFileSync(carPath, car)
  })
  afterAll(async () => {
    await store.close()
  })

  it('crops every region as it streams, from a stream and from a file', async () => {
    await checkAll(carPath, source, 1000)
  })

  it('crops a pyramid level like a crop of the stored image', async () => {
    const image = await openImage(store, cid)
    const region = { x: 3, y: 20, width: 60, height: 30 }
    const expected = await collect(await cropImage(image, region, { level: 1, format: 'raw' }))
    for (const input of [carPath, chunked(car, 777).input]) {
      const { outputs } = await rawCrops(input, [region], { level: 1 })
      expect(Buffer.compare(outputs[0]!, expected)).toBe(0)
    }
    await expect(cropStream(carPath, [region], { level: 9 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
  })

  it('stops after the last needed tile row', async () => {
    const { input, state } = chunked(car, 512)
    const { crop, outputs } = await rawCrops(input, [{ x: 20, y: 2, width: 30, height: 10 }])
    expect(Buffer.compare(outputs[0]!, naiveCrop(source, { x: 20, y: 2, width: 30, height: 10 }))).toBe(0)
    expect(state.released).toBe(true)
    expect(state.taken).toBeLessThan(car.length * 0.25)
    expect(crop.stats.rowsDecoded).toBe(16)
  })

  it('reads a repeated tile back from a file, and asks for the file when a stream did not keep it', async () => {
    // Noise that does not compress, with the top-left tile repeated at the bottom left.
    const noisy: TestImage = { width: 128, height: 128, channels: 3, bits: 8, data: Uint8Array.from(samples(128 * 128 * 3, 255, 11)) }
    for (let y = 0; y < 64; y++) noisy.data.copyWithin((64 + y) * 384, y * 384, y * 384 + 64 * 3)
    const pam = join(dir, 'noisy.pam')
    await writePam(pam, noisy)
    const noisyCid = (await importImage(store, pam, { tileSize: 64 })).cid
    const bytes = await collect(exportCar(store, noisyCid))
    const path = join(dir, 'noisy.car')
    writeFileSync(path, bytes)
    const region = { x: 0, y: 70, width: 30, height: 30 }
    const { outputs } = await rawCrops(path, [region])
    expect(Buffer.compare(outputs[0]!, naiveCrop(noisy, region))).toBe(0)
    await expect(rawCrops(chunked(bytes, 1000).input, [region])).rejects.toMatchObject({ code: 'ERR_UNSUPPORTED_FORMAT' })
  })

  it('rejects a truncated CAR, a corrupted block and a CAR whose root is no image', async () => {
    const bottom = [{ x: 0, y: 100, width: 10, height: 10 }]
    await expect(rawCrops(chunked(car.subarray(0, Math.floor(car.length * 0.6))).input, bottom)).rejects.toMatchObject({
      code: 'ERR_CORRUPT_INPUT',
    })
    const corrupted = car.slice()
    corrupted[Math.floor(car.length * 0.3)]! ^= 0x40
    await expect(rawCrops(chunked(corrupted, 4096).input, bottom)).rejects.toMatchObject({
      code: expect.stringMatching(/^ERR_(INTEGRITY|CORRUPT_INPUT)$/),
    })
    const block = cborBlock({ hello: 'world' })
    const frame = Buffer.concat([Uint8Array.of(block.cid.bytes.length + block.bytes.length), block.cid.bytes, block.bytes])
    const notImage = Buffer.concat([carHeader(block.cid), frame])
    await expect(rawCrops(chunked(notImage).input, bottom)).rejects.toMatchObject({ code: 'ERR_UNSUPPORTED_FORMAT' })
  })
})

describe('stream crop: TIFF layouts a stream cannot take', () => {
  const image = makeImage(3000, 1900, 3, 8, 2) // 17.1 MB of pixels: past the 16 MiB a stream may hold
  const region = { x: 100, y: 1800, width: 20, height: 30 }

  it('an IFD after the pixels: ERR_UNSUPPORTED_FORMAT on a stream, exact from a file', async () => {
    const bytes = stripTiff({ width: 3000, height: 1900, channels: 3, data: image.data, rowsPerStrip: 64, ifdLast: true })
    await expect(rawCrops(chunked(bytes, 1 << 16).input, [region])).rejects.toMatchObject({
      code: 'ERR_UNSUPPORTED_FORMAT',
      message: expect.stringContaining('pass a file'),
    })
    const path = join(dir, 'ifd-last.tif')
    writeFileSync(path, bytes)
    const { crop, outputs } = await rawCrops(path, [region])
    expect(Buffer.compare(outputs[0]!, naiveCrop(image, region))).toBe(0)
    expect(crop.stats.bytesRead).toBeLessThan(bytes.length / 4)
  })

  it('strips stored bottom first: ERR_UNSUPPORTED_FORMAT on a stream, exact from a file', async () => {
    const small = makeImage(60, 50, 1, 8, 6)
    const bytes = stripTiff({ width: 60, height: 50, channels: 1, data: small.data, rowsPerStrip: 8, reverseStrips: true })
    const regions = [
      { x: 1, y: 2, width: 3, height: 4 },
      { x: 10, y: 40, width: 30, height: 10 },
    ]
    await expect(rawCrops(chunked(bytes).input, regions)).rejects.toMatchObject({ code: 'ERR_UNSUPPORTED_FORMAT' })
    const path = join(dir, 'reversed.tif')
    writeFileSync(path, bytes)
    const { outputs } = await rawCrops(path, regions)
    regions.forEach((r, i) => {
      expect(Buffer.compare(outputs[i]!, naiveCrop(small, r))).toBe(0)
    })
    // The same pixels in order stream fine.
    const ordered = stripTiff({ width: 60, height: 50, channels: 1, data: small.data, rowsPerStrip: 8 })
    const streamed = await rawCrops(chunked(ordered).input, regions)
    regions.forEach((r, i) => {
      expect(Buffer.compare(streamed.outputs[i]!, naiveCrop(small, r))).toBe(0)
    })
  })
})

describe('stream crop: bad regions and broken inputs, by code', () => {
  it('refuses a region past the edge before reading pixels, releasing the input; clips with clip', async () => {
    const bytes = await readFile(join(DATA, 'rgb8.png'))
    const { input, state } = chunked(bytes)
    await expect(cropStream(input, [{ x: 200, y: 0, width: 20, height: 20 }])).rejects.toMatchObject({ code: 'ERR_INVALID_REGION' })
    expect(state.released).toBe(true)
    await expect(cropStream(join(DATA, 'rgb8.png'), [{ x: 0, y: 0, width: 0, height: 1 }])).rejects.toMatchObject({
      code: 'ERR_INVALID_REGION',
    })
    const { crop, outputs } = await rawCrops(join(DATA, 'rgb8.png'), [{ x: 200, y: 130, width: 20, height: 20 }], { clip: true })
    expect(crop.outputs[0]!.region).toEqual({ x: 200, y: 130, width: 11, height: 13 })
    expect(Buffer.compare(outputs[0]!, naiveCrop(truthOf('rgb8'), crop.outputs[0]!.region))).toBe(0)
  })

  it('refuses what a format cannot hold before reading pixels', async () => {
    await expect(cropStream(join(DATA, 'gray8.png'), [{ x: 0, y: 0, width: 1, height: 1 }], { format: 'ppm' })).rejects.toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
    })
    await expect(
      cropStream(join(DATA, 'rgb8.png'), [{ x: 0, y: 0, width: 1, height: 1 }], { format: 'png', compression: 'zstd' }),
    ).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
  })

  const broken: Array<[string, Region, string]> = [
    ['bad/truncated.png', { x: 0, y: 60, width: 10, height: 4 }, 'ERR_CORRUPT_INPUT'],
    ['bad/bad-crc.png', { x: 0, y: 60, width: 10, height: 4 }, 'ERR_CORRUPT_INPUT'],
    ['bad/truncated.ppm', { x: 0, y: 60, width: 10, height: 4 }, 'ERR_CORRUPT_INPUT'],
    ['bad/truncated-tiled.tif', { x: 0, y: 60, width: 10, height: 4 }, 'ERR_CORRUPT_INPUT'],
    ['bad/corrupt-tile-zstd.tif', { x: 0, y: 0, width: 96, height: 64 }, 'ERR_CORRUPT_INPUT'],
    ['bad/text.png', { x: 0, y: 0, width: 1, height: 1 }, 'ERR_UNSUPPORTED_FORMAT'],
    ['bad/empty.png', { x: 0, y: 0, width: 1, height: 1 }, 'ERR_UNSUPPORTED_FORMAT'],
    ['bad/huge.png', { x: 0, y: 0, width: 1, height: 1 }, 'ERR_LIMIT'],
    ['bad/maxval1000.pgm', { x: 0, y: 0, width: 1, height: 1 }, 'ERR_UNSUPPORTED_FORMAT'],
    ['bad/miniswhite.tif', { x: 0, y: 0, width: 1, height: 1 }, 'ERR_UNSUPPORTED_FORMAT'],
  ]
  it.each(broken)('%s: %s', async (file, region, code) => {
    const path = join(DATA, file)
    await expect(rawCrops(path, [region])).rejects.toMatchObject({ code })
    await expect(rawCrops(chunked(await readFile(path), 50).input, [region])).rejects.toMatchObject({ code })
  })

  it('crops the rows before the point where a truncated PNG ends', async () => {
    const image = makeImage(60, 80, 3, 8, 8)
    const png = encodePng({ width: 60, height: 80, colorType: 2, bitDepth: 8, samples: image.data, idatBytes: 997 })
    const cut = png.subarray(0, Math.floor(png.length * 0.6))
    const top = { x: 0, y: 0, width: 60, height: 10 }
    const { outputs } = await rawCrops(chunked(cut).input, [top])
    expect(Buffer.compare(outputs[0]!, naiveCrop(image, top))).toBe(0)
    await expect(rawCrops(chunked(cut).input, [top, { x: 0, y: 70, width: 1, height: 1 }])).rejects.toMatchObject({
      code: 'ERR_CORRUPT_INPUT',
    })
  })
})
