import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import sharp from 'sharp'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writePng } from '../../../src/crop/writers/png.js'
import type { Band, PixelFormat } from '../../../src/format/interface.js'
import { pixelFormat } from '../../../src/format/pixel.js'
import { type DecodedImage, type ReadJob, readAll } from '../../helpers/readers.js'
import { collect, expectPixels, FORMATS, label, makeImage, toBands, unevenHeights, writeTo } from './images.js'

const SIZES = [
  [37, 23],
  [1, 1],
  [300, 200],
] as const

interface Case {
  readonly format: PixelFormat
  readonly width: number
  readonly height: number
  readonly compression: 'deflate' | 'none'
  readonly level?: number
  readonly heights: readonly number[]
  readonly icc?: boolean
  readonly readers: ReadJob['reader'][]
}

function readersFor(format: PixelFormat): ReadJob['reader'][] {
  // Pillow reduces 16-bit colour PNGs to 8 bits; it reads 16-bit gray faithfully.
  const pil = format.bitsPerSample === 8 || format.colorModel === 'gray'
  return ['vips', 'gdal', ...(pil ? (['pil'] as const) : [])]
}

const cases: Case[] = [
  ...FORMATS.flatMap((format) =>
    SIZES.flatMap(([width, height]) =>
      (['deflate', 'none'] as const).map((compression) => ({
        format,
        width,
        height,
        compression,
        heights: unevenHeights(height, width + height),
        readers: readersFor(format),
      })),
    ),
  ),
  // Level 1 and 9, one band per row.
  {
    format: pixelFormat('rgb', 8),
    width: 61,
    height: 40,
    compression: 'deflate',
    level: 1,
    heights: new Array(40).fill(1),
    readers: ['pil', 'vips'],
  },
  { format: pixelFormat('rgba', 16), width: 61, height: 40, compression: 'deflate', level: 9, heights: [40], readers: ['vips', 'gdal'] },
  // One band whose stored data (9.6 MB) spans several IDAT chunks.
  { format: pixelFormat('rgba', 16), width: 1000, height: 1200, compression: 'none', heights: [7, 1193], readers: ['vips'] },
  // iCCP with a real sRGB profile (libspng, under vips, checks it).
  {
    format: pixelFormat('rgb', 8),
    width: 37,
    height: 23,
    compression: 'deflate',
    heights: [23],
    icc: true,
    readers: ['pil', 'vips', 'gdal'],
  },
  { format: pixelFormat('rgba', 16), width: 37, height: 23, compression: 'none', heights: [10, 13], icc: true, readers: ['vips'] },
]

const jobs = cases.flatMap((c, i) => c.readers.map((reader) => ({ i, reader })))

let dir: string
let decoded: DecodedImage[]
let srgb: Uint8Array

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-png-'))
  const carrier = await sharp({ create: { width: 1, height: 1, channels: 3, background: 'red' } })
    .withIccProfile('srgb')
    .png()
    .toBuffer()
  srgb = new Uint8Array((await sharp(carrier).metadata()).icc!)
  for (const [i, c] of cases.entries()) {
    const image = makeImage(c.width, c.height, c.format, i)
    const init = { width: c.width, height: c.height, format: c.format, ...(c.icc ? { icc: srgb } : {}) }
    const options = { compression: c.compression, ...(c.level === undefined ? {} : { level: c.level }) }
    await writeTo(join(dir, `${i}.png`), writePng(init, toBands(image, c.width, c.format, c.heights), options))
  }
  decoded = await readAll(jobs.map(({ i, reader }) => ({ reader, path: join(dir, `${i}.png`) })))
})

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('writePng read by real readers', () => {
  const title = ({ i, reader }: { i: number; reader: string }) => {
    const c = cases[i]!
    return `${label(c.format)} ${c.width}x${c.height} ${c.compression}${c.level ?? ''}${c.icc ? ' icc' : ''} ${c.heights.length} bands, read by ${reader}`
  }
  it.each(jobs.map((job, k) => ({ ...job, k, name: title(job) })))('$name', ({ i, k, reader }) => {
    const c = cases[i]!
    expectPixels(decoded[k]!, makeImage(c.width, c.height, c.format, i), c.width, c.height, c.format)
    if (c.icc && reader === 'pil') expect(decoded[k]!.info.icc).toBe(Buffer.from(srgb).toString('hex'))
  })
})

describe('writePng structure', () => {
  /** Chunk types in order, with data lengths. */
  function chunks(png: Uint8Array): Array<[string, number]> {
    const view = new DataView(png.buffer, png.byteOffset)
    const out: Array<[string, number]> = []
    for (let at = 8; at < png.length; ) {
      const length = view.getUint32(at)
      out.push([new TextDecoder().decode(png.subarray(at + 4, at + 8)), length])
      at += 12 + length
    }
    return out
  }

  it('writes IHDR, iCCP, IDATs of at most 4 MiB, IEND', async () => {
    const i = cases.findIndex((c) => c.width === 1000)
    const list = chunks(new Uint8Array(await readFile(join(dir, `${i}.png`))))
    expect(list[0]).toEqual(['IHDR', 13])
    expect(list.at(-1)).toEqual(['IEND', 0])
    const idats = list.filter(([type]) => type === 'IDAT')
    expect(idats.length).toBeGreaterThanOrEqual(3)
    expect(Math.max(...idats.map(([, n]) => n))).toBeLessThanOrEqual(4 << 20)
    const icc = cases.findIndex((c) => c.icc)
    expect(
      chunks(new Uint8Array(await readFile(join(dir, `${icc}.png`))))
        .map(([t]) => t)
        .slice(0, 3),
    ).toEqual(['IHDR', 'iCCP', 'IDAT'])
  })

  async function* none(): AsyncGenerator<Band> {}
  it.each([
    ['compression', { compression: 'lzw' }],
    ['level', { compression: 'deflate', level: 10 }],
  ])('rejects a bad %s with ERR_INVALID_ARGUMENT at call time', (_, options) => {
    const init = { width: 1, height: 1, format: pixelFormat('gray', 8) }
    expect(() => writePng(init, none(), options as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }))
  })

  it('rejects bands with too few rows', async () => {
    const format = pixelFormat('rgb', 8)
    const image = makeImage(5, 5, format)
    await expect(
      collect(writePng({ width: 5, height: 6, format }, toBands(image, 5, format, [5]), { compression: 'deflate' })),
    ).rejects.toThrow(RangeError)
  })
})
