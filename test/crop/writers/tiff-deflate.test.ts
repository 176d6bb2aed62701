/**
 * Deflate TIFF tiles compressed on the deflate threads (deflate.ts), several in flight: every
 * pixel format, both predictors, the per-tile choice (runs for photographic tiles, LZ77 for
 * flat ones) and an explicit level, read by tifffile, GDAL and vips.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { retainDeflateThreads } from '../../../src/crop/writers/deflate.js'
import type { TiffInit } from '../../../src/crop/writers/interface.js'
import { writeTiffFromBands } from '../../../src/crop/writers/tiff.js'
import type { PixelFormat } from '../../../src/format/interface.js'
import { bytesPerPixel, pixelFormat } from '../../../src/format/pixel.js'
import { type DecodedImage, type ReadJob, readAll } from '../../helpers/readers.js'
import { expectPixels, FORMATS, label, makeImage, toBands, unevenHeights, writeTo } from './images.js'

const READERS: ReadJob['reader'][] = ['tifffile', 'gdal', 'vips']

interface Case {
  readonly init: TiffInit
  readonly flat?: boolean
}

/** Flat areas and stripes (drawn content): the zero-heavy tiles that get LZ77. */
function makeFlat(width: number, height: number, format: PixelFormat): Uint8Array {
  const bytes = bytesPerPixel(format)
  const out = new Uint8Array(width * height * bytes)
  for (let i = 0; i < width * height; i++) out.fill(Math.floor((i % width) / 20) % 2 ? 30 : 220, i * bytes, (i + 1) * bytes)
  return out
}

const base = { zstdLevel: 3, compression: 'deflate' } as const
const cases: Case[] = [
  ...FORMATS.flatMap((format) =>
    ([1, 2] as const).map((predictor) => ({ init: { width: 150, height: 111, format, tileSize: 32, predictor, ...base } })),
  ),
  { init: { width: 130, height: 90, format: pixelFormat('rgb', 8), tileSize: 16, predictor: 2, deflateLevel: 1, ...base } },
  { init: { width: 200, height: 100, format: pixelFormat('rgba', 16), tileSize: 64, predictor: 2, ...base }, flat: true },
  { init: { width: 200, height: 100, format: pixelFormat('gray', 8), tileSize: 64, predictor: 1, ...base }, flat: true },
]

const pixelsOf = (c: Case, i: number) =>
  c.flat ? makeFlat(c.init.width, c.init.height, c.init.format) : makeImage(c.init.width, c.init.height, c.init.format, 50 + i)
const jobs = cases.flatMap((_, i) => READERS.map((reader) => ({ i, reader })))

let dir: string
let decoded: DecodedImage[]
let releaseThreads: () => Promise<void>

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-tiff-deflate-'))
  // With the threads running, every output of more than one tile uses them (as in a server).
  releaseThreads = retainDeflateThreads()
  for (const [i, c] of cases.entries()) {
    const bands = toBands(pixelsOf(c, i), c.init.width, c.init.format, unevenHeights(c.init.height, i))
    await writeTo(join(dir, `${i}.tif`), writeTiffFromBands(c.init, bands))
  }
  decoded = await readAll(jobs.map(({ i, reader }) => ({ reader, path: join(dir, `${i}.tif`) })))
})

afterAll(async () => {
  await releaseThreads()
  await rm(dir, { recursive: true, force: true })
})

describe('deflate TIFF tiles compressed on the deflate threads', () => {
  const title = ({ i, reader }: { i: number; reader: string }) => {
    const { init } = cases[i]!
    const level = init.deflateLevel === undefined ? 'auto' : `level ${init.deflateLevel}`
    return `${label(init.format)} ${init.width}x${init.height} tile ${init.tileSize} p${init.predictor} ${level}${cases[i]!.flat ? ' flat' : ''}, read by ${reader}`
  }
  it.each(jobs.map((job, k) => ({ ...job, k, name: title(job) })))('$name', ({ i, k, reader }) => {
    const { init } = cases[i]!
    expectPixels(decoded[k]!, pixelsOf(cases[i]!, i), init.width, init.height, init.format)
    if (reader === 'tifffile')
      expect(decoded[k]!.info).toMatchObject({ compression: 8, predictor: init.predictor, tile: [init.tileSize, init.tileSize] })
  })
})
