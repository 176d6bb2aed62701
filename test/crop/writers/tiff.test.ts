import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import sharp from 'sharp'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TiffInit } from '../../../src/crop/writers/interface.js'
import { writeTiffFromBands, writeTiffFromPayloads } from '../../../src/crop/writers/tiff.js'
import type { Band, PixelFormat } from '../../../src/format/interface.js'
import { bytesPerPixel, pixelFormat } from '../../../src/format/pixel.js'
import { TileCoder } from '../../../src/format/tile-codec.js'
import { type DecodedImage, type ReadJob, readAll } from '../../helpers/readers.js'
import { collect, expectPixels, FORMATS, label, makeImage, toBands, unevenHeights, writeTo } from './images.js'

const SIZES = [
  [37, 23],
  [1, 1],
  [300, 200],
] as const
const VARIANTS = [
  { compression: 'zstd', predictor: 1 },
  { compression: 'zstd', predictor: 2 },
  { compression: 'deflate', predictor: 1 },
  { compression: 'deflate', predictor: 2 },
  { compression: 'none', predictor: 1 },
] as const
const ALL_READERS: ReadJob['reader'][] = ['tifffile', 'gdal', 'vips']

/** The naive oracle: tile (column, row) of `image`, zero-padded, as TIFF stores it. */
function oracleTile(
  image: Uint8Array,
  width: number,
  height: number,
  format: PixelFormat,
  tileSize: number,
  column: number,
  row: number,
): Uint8Array {
  const bpp = bytesPerPixel(format)
  const tile = new Uint8Array(tileSize * tileSize * bpp)
  for (let y = 0; y < tileSize; y++) {
    for (let x = 0; x < tileSize; x++) {
      const sx = column * tileSize + x
      const sy = row * tileSize + y
      if (sx >= width || sy >= height) continue
      tile.set(image.subarray((sy * width + sx) * bpp, (sy * width + sx + 1) * bpp), (y * tileSize + x) * bpp)
    }
  }
  return tile
}

/** Stored-style payloads of `image`: TileCoder.encode of each padded tile, row-major. */
function encodeTiles(image: Uint8Array, init: TiffInit): Uint8Array[] {
  const coder = new TileCoder(
    { tileSize: init.tileSize, channels: init.format.channels, bitsPerSample: init.format.bitsPerSample },
    { name: 'zstd', level: init.zstdLevel, predictor: init.predictor },
  )
  const payloads: Uint8Array[] = []
  for (let row = 0; row < Math.ceil(init.height / init.tileSize); row++) {
    for (let column = 0; column < Math.ceil(init.width / init.tileSize); column++) {
      payloads.push(coder.encode(oracleTile(image, init.width, init.height, init.format, init.tileSize, column, row)))
    }
  }
  return payloads
}

async function* iterate<T>(items: readonly T[]): AsyncGenerator<T> {
  yield* items
}

interface Case {
  readonly name: string
  readonly init: TiffInit
  readonly readers: ReadJob['reader'][]
  /** Whether `init` gets the sRGB profile (known only once sharp has made it). */
  readonly icc?: boolean
  /** Writes `image` (makeImage of `init`) with `init` (this case's, plus the profile). */
  readonly write: (path: string, image: Uint8Array, init: TiffInit) => Promise<void>
  readonly expectInfo?: Record<string, unknown>
}

function bandsCase(init: TiffInit, options: Parameters<typeof writeTiffFromBands>[2] = {}, extra: Partial<Case> = {}): Case {
  return {
    name: `${label(init.format)} ${init.width}x${init.height} tile ${init.tileSize} ${init.compression} p${init.predictor}`,
    init,
    readers: ALL_READERS,
    write: (path, image, init) =>
      writeTo(path, writeTiffFromBands(init, toBands(image, init.width, init.format, unevenHeights(init.height, init.width)), options)),
    ...extra,
  }
}

function payloadsCase(init: TiffInit, options: Parameters<typeof writeTiffFromPayloads>[3] = {}, extra: Partial<Case> = {}): Case {
  return {
    name: `verbatim ${label(init.format)} ${init.width}x${init.height} tile ${init.tileSize} p${init.predictor}`,
    init,
    readers: ALL_READERS,
    write: async (path, image, init) => {
      const payloads = encodeTiles(image, init)
      await writeTo(
        path,
        writeTiffFromPayloads(
          init,
          payloads.map((p) => p.length),
          iterate(payloads),
          options,
        ),
      )
    },
    ...extra,
  }
}

let srgb: Uint8Array
const base = { zstdLevel: 3 }

const cases: Case[] = [
  ...FORMATS.flatMap((format) =>
    SIZES.flatMap(([width, height]) =>
      [16, 64].flatMap((tileSize) => VARIANTS.map((variant) => bandsCase({ width, height, format, tileSize, ...variant, ...base }))),
    ),
  ),
  ...FORMATS.flatMap((format) =>
    [1, 2].map((predictor) =>
      payloadsCase({ width: 100, height: 70, format, tileSize: 32, compression: 'zstd', predictor: predictor as 1 | 2, ...base }),
    ),
  ),
  // BigTIFF through the injectable threshold, for both paths and the streaming 'none' path.
  ...(['zstd', 'deflate', 'none'] as const).map((compression) =>
    bandsCase(
      { width: 90, height: 50, format: pixelFormat('rgba', 16), tileSize: 16, compression, predictor: 2, ...base },
      { bigTiffThreshold: 0 },
      { expectInfo: { bigtiff: true } },
    ),
  ),
  payloadsCase(
    { width: 90, height: 50, format: pixelFormat('graya', 8), tileSize: 16, compression: 'zstd', predictor: 2, ...base },
    { bigTiffThreshold: 0 },
    { expectInfo: { bigtiff: true } },
  ),
  // Spooled to a temp file after 1000 bytes.
  bandsCase(
    { width: 300, height: 200, format: pixelFormat('rgb', 16), tileSize: 64, compression: 'zstd', predictor: 2, ...base },
    { spoolThreshold: 1000 },
  ),
  // ICC profile tag.
  bandsCase(
    { width: 37, height: 23, format: pixelFormat('rgb', 8), tileSize: 16, compression: 'deflate', predictor: 2, ...base },
    {},
    { name: 'rgb8 with ICC profile', icc: true },
  ),
]

const jobs = cases.flatMap((c, i) => c.readers.map((reader) => ({ i, reader })))

let dir: string
let decoded: DecodedImage[]

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-tiff-'))
  const carrier = await sharp({ create: { width: 1, height: 1, channels: 3, background: 'red' } })
    .withIccProfile('srgb')
    .png()
    .toBuffer()
  srgb = new Uint8Array((await sharp(carrier).metadata()).icc!)
  for (const [i, c] of cases.entries()) {
    const init = c.icc ? { ...c.init, icc: srgb } : c.init
    await c.write(join(dir, `${i}.tif`), makeImage(init.width, init.height, init.format, i), init)
  }
  decoded = await readAll(jobs.map(({ i, reader }) => ({ reader, path: join(dir, `${i}.tif`) })))
})

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('TIFF writers read by tifffile, GDAL and vips', () => {
  it.each(jobs.map((job, k) => ({ ...job, k, name: `${cases[job.i]!.name}, read by ${job.reader}` })))('$name', ({ i, k, reader }) => {
    const { init, expectInfo, icc } = cases[i]!
    const result = decoded[k]!
    expectPixels(result, makeImage(init.width, init.height, init.format, i), init.width, init.height, init.format)
    if (reader !== 'tifffile') return
    const alpha = init.format.colorModel === 'graya' || init.format.colorModel === 'rgba'
    expect(result.info).toMatchObject({
      bigtiff: expectInfo?.bigtiff ?? false,
      compression: { zstd: 50000, deflate: 8, none: 1 }[init.compression],
      predictor: init.compression === 'none' ? 1 : init.predictor,
      tile: [init.tileSize, init.tileSize],
      photometric: init.format.colorModel.startsWith('gray') ? 1 : 2,
      extrasamples: alpha ? [2] : [],
    })
    expect(result.info.icc).toBe(icc ? Buffer.from(srgb).toString('hex') : null)
  })
})

describe('writeTiffFromBands spooling', () => {
  const init: TiffInit = {
    width: 200,
    height: 150,
    format: pixelFormat('rgb', 8),
    tileSize: 32,
    compression: 'zstd',
    predictor: 2,
    zstdLevel: 3,
  }
  const image = makeImage(init.width, init.height, init.format, 5)
  const bands = () => toBands(image, init.width, init.format, unevenHeights(init.height, 3))

  async function withTmp<T>(fn: (tmp: string) => Promise<T>): Promise<T> {
    const tmp = await mkdtemp(join(dir, 'spool-'))
    try {
      return await fn(tmp)
    } finally {
      await rm(tmp, { recursive: true, force: true })
    }
  }

  it('spools past the threshold to a temp file, deleted once the output is read', () =>
    withTmp(async (tmpDir) => {
      const spooled = writeTiffFromBands(init, bands(), { tmpDir, spoolThreshold: 1000 })
      const chunks: Uint8Array[] = []
      const first = await spooled.next()
      chunks.push(first.value!)
      // The head comes after every tile is compressed, so the spool file is there now.
      expect(await readdir(tmpDir)).toEqual([expect.stringMatching(/^tessera-spool-[0-9a-f]+\.tmp$/)])
      for await (const chunk of spooled) chunks.push(chunk)
      expect(await readdir(tmpDir)).toEqual([])
      // Byte-identical to the in-memory spool.
      const inMemory = await collect(writeTiffFromBands(init, bands(), { tmpDir }))
      expect(Buffer.concat(chunks).equals(inMemory)).toBe(true)
      expect(await readdir(tmpDir)).toEqual([])
    }))

  it('deletes the temp file when the consumer stops early', () =>
    withTmp(async (tmpDir) => {
      const spooled = writeTiffFromBands(init, bands(), { tmpDir, spoolThreshold: 0 })
      await spooled.next()
      expect(await readdir(tmpDir)).toHaveLength(1)
      await spooled.return()
      expect(await readdir(tmpDir)).toEqual([])
    }))

  it('deletes the temp file and throws ERR_ABORTED when the signal fires', () =>
    withTmp(async (tmpDir) => {
      const controller = new AbortController()
      async function* abortMidway(): AsyncGenerator<Band> {
        let n = 0
        for await (const band of bands()) {
          if (++n === 4) controller.abort()
          yield band
        }
      }
      const spooled = writeTiffFromBands(init, abortMidway(), { tmpDir, spoolThreshold: 0, signal: controller.signal })
      await expect(collect(spooled)).rejects.toMatchObject({ code: 'ERR_ABORTED' })
      expect(await readdir(tmpDir)).toEqual([])
    }))

  it('deletes the temp file when the bands fail', () =>
    withTmp(async (tmpDir) => {
      async function* short(): AsyncGenerator<Band> {
        for await (const band of bands()) if (band.y + band.height < 100) yield band
      }
      await expect(collect(writeTiffFromBands(init, short(), { tmpDir, spoolThreshold: 0 }))).rejects.toThrow(RangeError)
      expect(await readdir(tmpDir)).toEqual([])
    }))
})

describe('writeTiffFromPayloads', () => {
  const init: TiffInit = {
    width: 70,
    height: 40,
    format: pixelFormat('graya', 16),
    tileSize: 16,
    compression: 'zstd',
    predictor: 2,
    zstdLevel: 3,
  }
  const image = makeImage(init.width, init.height, init.format, 9)
  const payloads = encodeTiles(image, init)
  const lengths = payloads.map((p) => p.length)

  it('writes the same bytes as re-cutting the bands with zstd', async () => {
    const verbatim = await collect(writeTiffFromPayloads(init, lengths, iterate(payloads)))
    const recut = await collect(writeTiffFromBands(init, toBands(image, init.width, init.format, unevenHeights(init.height))))
    expect(Buffer.from(verbatim).equals(Buffer.from(recut))).toBe(true)
  })

  it.each([
    ['a payload of the wrong length', () => iterate([...payloads.slice(0, 3), payloads[3]!.subarray(1), ...payloads.slice(4)])],
    ['too few payloads', () => iterate(payloads.slice(1))],
    ['too many payloads', () => iterate([...payloads, payloads[0]!])],
  ])('throws ERR_INTEGRITY for %s', async (_, make) => {
    await expect(collect(writeTiffFromPayloads(init, lengths, make()))).rejects.toMatchObject({ code: 'ERR_INTEGRITY' })
  })

  it('rejects a wrong number of lengths at call time', () => {
    expect(() => writeTiffFromPayloads(init, lengths.slice(1), iterate(payloads))).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
    )
  })
})

describe('TIFF init validation', () => {
  const good: TiffInit = {
    width: 10,
    height: 10,
    format: pixelFormat('rgb', 8),
    tileSize: 16,
    compression: 'zstd',
    predictor: 1,
    zstdLevel: 3,
  }
  it.each([
    ['tile size not a multiple of 16', { tileSize: 24 }],
    ['unknown compression', { compression: 'lzw' }],
    ['predictor 3', { predictor: 3 }],
    ['zstd level 23', { zstdLevel: 23 }],
    ['deflate level 10', { compression: 'deflate', deflateLevel: 10 }],
  ])('rejects %s with ERR_INVALID_ARGUMENT at call time', (_, change) => {
    const init = { ...good, ...change } as TiffInit
    expect(() => writeTiffFromBands(init, iterate<Band>([]))).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }))
  })
})
