/**
 * The PNG writer's parallel deflate: segments on worker threads (and on libuv's pool), chunk
 * boundaries anywhere in a row, the Adler-32 combined from the pieces, the SIMD filter kernel
 * against its JS twin, and the output size against libvips' default PNG.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import zlib from 'node:zlib'
import sharp from 'sharp'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { adler32Combine, InOrder, retainDeflateThreads } from '../../../src/crop/writers/deflate.js'
import { type PngWriteOptions, writePng } from '../../../src/crop/writers/png.js'
import type { PixelFormat } from '../../../src/format/interface.js'
import { bytesPerPixel, pixelFormat } from '../../../src/format/pixel.js'
import { adler32, type PngFilterType, pngFilter, pngFilterJs } from '../../../src/format/unpredict.js'
import { type DecodedImage, type ReadJob, readAll } from '../../helpers/readers.js'
import { collect, expectPixels, FORMATS, label, makeImage, random, toBands, unevenHeights, writeTo } from './images.js'

/** zlib's own Adler-32 of `data`: the trailer of a stored zlib stream. */
function zlibAdler(data: Uint8Array): number {
  const stream = zlib.deflateSync(data, { level: 0 })
  return stream.readUInt32BE(stream.length - 4)
}

function randomBytes(length: number, seed: number): Uint8Array {
  const next = random(seed)
  return Uint8Array.from({ length }, () => (next() < 0.3 ? 255 : Math.floor(next() * 256)))
}

describe('adler32 and adler32Combine', () => {
  it.each([0, 1, 15, 16, 17, 255, 5551, 5552, 5553, 65521, 100_003, 3 << 20])('adler32 of %i bytes is zlib’s', (length) => {
    const data = randomBytes(length, length + 1)
    expect(adler32(data)).toBe(zlibAdler(data))
  })

  it('combines the Adler-32s of pieces cut anywhere into zlib’s Adler-32 of the whole', () => {
    const next = random(42)
    for (let trial = 0; trial < 40; trial++) {
      const data = randomBytes(Math.floor(next() * 300_000), trial)
      const cuts = Array.from({ length: Math.floor(next() * 6) }, () => Math.floor(next() * (data.length + 1))).sort((a, b) => a - b)
      let combined = 1
      let start = 0
      for (const end of [...cuts, data.length]) {
        const piece = data.subarray(start, end)
        combined = adler32Combine(combined, zlibAdler(piece), piece.length)
        start = end
      }
      expect(combined).toBe(zlibAdler(data))
    }
    // Lengths past 65521 and a second piece of all 0xff (both sums near the modulus).
    const a = randomBytes(70_000, 1)
    const b = new Uint8Array(200_000).fill(0xff)
    expect(adler32Combine(zlibAdler(a), zlibAdler(b), b.length)).toBe(zlibAdler(new Uint8Array([...a, ...b])))
    expect(adler32Combine(zlibAdler(a), 1, 0)).toBe(zlibAdler(a))
  })
})

describe('pngFilter (WebAssembly SIMD) against its JS twin', () => {
  it('writes the same bytes, rows and zero counts for every bpp, width, filter type and byte order', () => {
    const next = random(3)
    let cases = 0
    for (const bpp of [1, 2, 3, 4, 6, 8]) {
      for (const width of [1, 2, 3, 5, 15, 16, 17, 33, 171, 700, 1500]) {
        for (const type of [0, 1, 2, 3, 4, 5] as PngFilterType[]) {
          for (const wide of bpp % 2 === 0 ? [false, true] : [false]) {
            const stride = width * bpp
            const count = 1 + Math.floor(next() * 4)
            // Smooth runs, noise and extremes, so that every filter type wins somewhere.
            const rows = Uint8Array.from({ length: stride * count }, (_, i) =>
              i % 3 === 0 ? (i >> 4) & 255 : next() < 0.2 ? 0 : Math.floor(next() * 256),
            )
            const above = next() < 0.5 ? undefined : randomBytes(stride, cases)
            const simd = new Uint8Array(count * (stride + 1))
            const plain = new Uint8Array(count * (stride + 1))
            const lastSimd = new Uint8Array(stride)
            const lastPlain = new Uint8Array(stride)
            const zeros = pngFilter(rows, above, simd, { stride, bpp, wide, type }, lastSimd)
            const swapped = wide ? rows.map((_, i) => rows[i ^ 1]!) : rows
            const shift = stride >= 2048 ? 2 : stride >= 512 ? 1 : 0
            expect(pngFilterJs(swapped, above ?? new Uint8Array(stride), plain, stride, bpp, type, shift, lastPlain)).toBe(zeros)
            expect(Buffer.compare(simd, plain)).toBe(0)
            expect(Buffer.compare(lastSimd, lastPlain)).toBe(0)
            cases++
          }
        }
      }
    }
    expect(cases).toBeGreaterThan(500)
  })
})

interface Case {
  readonly format: PixelFormat
  readonly width: number
  readonly height: number
  readonly options: PngWriteOptions
  readonly heights: readonly number[]
  readonly flat?: boolean
}

/** A drawn image: flat areas and repeated shapes, where the writer should pick filter None and LZ77. */
function makeFlat(width: number, height: number, format: PixelFormat): Uint8Array {
  const bytes = bytesPerPixel(format)
  const out = new Uint8Array(width * height * bytes)
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const v = (Math.floor(x / 24) + Math.floor(y / 10)) % 3 === 0 ? 40 : x % 24 < 3 ? 200 : 230
      out.fill(v, (y * width + x) * bytes, (y * width + x + 1) * bytes)
    }
  }
  return out
}

// Bigger than one segment at the default size (64 KiB), with threads and without; segments cut
// mid-row at odd offsets (`chunkBytes` 777, 4099); explicit levels and stored blocks; drawn content.
const cases: Case[] = [
  ...FORMATS.flatMap((format) => [
    { format, width: 300, height: 250, options: { compression: 'deflate' as const, threads: 1 }, heights: unevenHeights(250, 3) },
    { format, width: 211, height: 97, options: { compression: 'deflate' as const, chunkBytes: 777, threads: 1 }, heights: [97] },
    {
      format,
      width: 211,
      height: 97,
      options: { compression: 'deflate' as const, chunkBytes: 4099, threads: 0 },
      heights: unevenHeights(97, 5),
    },
  ]),
  {
    format: pixelFormat('rgb', 8),
    width: 400,
    height: 300,
    options: { compression: 'deflate', level: 9, chunkBytes: 50_001, threads: 1 },
    heights: [300],
  },
  {
    format: pixelFormat('rgba', 16),
    width: 300,
    height: 200,
    options: { compression: 'none', chunkBytes: 10_007, threads: 1 },
    heights: [77, 123],
  },
  { format: pixelFormat('rgb', 8), width: 640, height: 400, options: { compression: 'deflate', threads: 1 }, heights: [400], flat: true },
  {
    format: pixelFormat('gray', 16),
    width: 333,
    height: 222,
    options: { compression: 'deflate', chunkBytes: 9999, threads: 1 },
    heights: [222],
    flat: true,
  },
]

function readersFor(format: PixelFormat): ReadJob['reader'][] {
  // Pillow reduces 16-bit colour PNGs to 8 bits; it reads 16-bit gray faithfully.
  return format.bitsPerSample === 8 || format.colorModel === 'gray' ? ['vips', 'pil'] : ['vips']
}

function pixelsOf(c: Case, i: number): Uint8Array {
  return c.flat ? makeFlat(c.width, c.height, c.format) : makeImage(c.width, c.height, c.format, 100 + i)
}

const jobs = cases.flatMap((c, i) => readersFor(c.format).map((reader) => ({ i, reader })))

let dir: string
let decoded: DecodedImage[]
let releaseThreads: () => Promise<void>

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-png-deflate-'))
  // As a server would: keep the deflate threads for the whole file, not one start per output.
  releaseThreads = retainDeflateThreads()
  for (const [i, c] of cases.entries()) {
    const init = { width: c.width, height: c.height, format: c.format }
    await writeTo(join(dir, `${i}.png`), writePng(init, toBands(pixelsOf(c, i), c.width, c.format, c.heights), c.options))
  }
  decoded = await readAll(jobs.map(({ i, reader }) => ({ reader, path: join(dir, `${i}.png`) })))
})

afterAll(async () => {
  await releaseThreads()
  await rm(dir, { recursive: true, force: true })
})

/**
 * The pixels as sharp decodes them, in Tessera's layout: sharp's pipeline makes colour of gray
 * unless told the colourspace, and for 8-bit gray+alpha gives only RGBA (gray is its R).
 */
async function readWithSharp(path: string, format: PixelFormat): Promise<Uint8Array> {
  const wide = format.bitsPerSample === 16
  const space = format.colorModel.startsWith('gray') ? (wide ? 'grey16' : 'b-w') : wide ? 'rgb16' : 'srgb'
  const graya8 = format.colorModel === 'graya' && !wide
  const { data, info } = await (graya8 ? sharp(path) : sharp(path).toColourspace(space))
    .raw(wide ? { depth: 'ushort' } : {})
    .toBuffer({ resolveWithObject: true })
  if (!graya8) {
    expect(info.channels).toBe(format.channels)
    return new Uint8Array(data)
  }
  expect(info.channels).toBe(4)
  return Uint8Array.from({ length: (data.length / 4) * 2 }, (_, i) => data[(i >> 1) * 4 + (i & 1) * 3]!)
}

/** The IDAT data of a PNG, and the filter type byte of each row after inflating it (which checks its Adler-32). */
function idat(png: Uint8Array, c: Case): { chunks: number; filters: number[] } {
  const view = new DataView(png.buffer, png.byteOffset)
  const parts: Uint8Array[] = []
  for (let at = 8; at < png.length; ) {
    const length = view.getUint32(at)
    if (new TextDecoder().decode(png.subarray(at + 4, at + 8)) === 'IDAT') parts.push(png.subarray(at + 8, at + 8 + length))
    at += 12 + length
  }
  const stride = c.width * bytesPerPixel(c.format) + 1
  const rows = zlib.inflateSync(Buffer.concat(parts))
  expect(rows.length).toBe(stride * c.height)
  return { chunks: parts.length, filters: Array.from({ length: c.height }, (_, r) => rows[r * stride]!) }
}

describe('writePng in parallel segments, read by real readers', () => {
  const title = ({ i, reader }: { i: number; reader: string }) => {
    const c = cases[i]!
    const o = c.options
    return `${label(c.format)} ${c.width}x${c.height} ${o.compression}${o.level ?? ''} chunk ${o.chunkBytes ?? 'auto'} threads ${o.threads}${c.flat ? ' flat' : ''}, read by ${reader}`
  }
  it.each(jobs.map((job, k) => ({ ...job, k, name: title(job) })))('$name', ({ i, k }) => {
    const c = cases[i]!
    expectPixels(decoded[k]!, pixelsOf(c, i), c.width, c.height, c.format)
  })

  it.each(
    cases.map((c, i) => ({ i, name: `${label(c.format)} ${c.width}x${c.height} chunk ${c.options.chunkBytes ?? 'auto'}` })),
  )('sharp reads $name exactly, and the zlib stream checks out', async ({ i }) => {
    const c = cases[i]!
    const path = join(dir, `${i}.png`)
    expect(Buffer.compare(await readWithSharp(path, c.format), pixelsOf(c, i))).toBe(0)
    const { chunks, filters } = idat(new Uint8Array(await readFile(path)), c)
    const stride = c.width * bytesPerPixel(c.format) + 1
    const piece = c.options.chunkBytes
    if (piece !== undefined) expect(chunks).toBe(Math.ceil(stride / piece) * Math.ceil(c.height / Math.max(1, Math.floor(piece / stride))))
    else expect(chunks).toBeGreaterThan(1)
    if (c.options.compression === 'none') expect(new Set(filters)).toEqual(new Set([0]))
    else if (c.flat) expect(filters.filter((f) => f === 0).length).toBeGreaterThan(c.height * 0.9)
    else expect(new Set(filters).size).toBeGreaterThan(1) // chosen per row
  })
})

describe('writePng size', () => {
  it('is at most 1.1x libvips’ default PNG of the same photograph, in 512x512 crops', async () => {
    const { data, info } = await sharp('testdata/dragonfly.png').raw().toBuffer({ resolveWithObject: true })
    const format = pixelFormat(info.channels === 4 ? 'rgba' : 'rgb', 8)
    const stride = info.width * info.channels
    let ours = 0
    let theirs = 0
    for (const [x, y] of [
      [0, 0],
      [info.width - 512, info.height - 512],
      [Math.floor(info.width / 3), Math.floor(info.height / 4)],
    ] as const) {
      const crop = new Uint8Array(512 * 512 * info.channels)
      for (let r = 0; r < 512; r++)
        crop.set(data.subarray((y + r) * stride + x * info.channels, (y + r) * stride + (x + 512) * info.channels), r * 512 * info.channels)
      const png = await collect(
        writePng({ width: 512, height: 512, format }, toBands(crop, 512, format, [200, 312]), { compression: 'deflate' }),
      )
      ours += png.length
      theirs += (
        await sharp(crop, { raw: { width: 512, height: 512, channels: info.channels } })
          .png()
          .toBuffer()
      ).length
    }
    expect(ours / theirs).toBeLessThanOrEqual(1.1)
  })
})

describe('writePng segments by default', () => {
  // Two segments below 2 MiB of filtered rows: each costs a zlib stream and its set-up.
  it('cuts a 512x512 RGB crop into two segments of 256 rows, the same bytes on threads and on libuv’s pool', async () => {
    const format = pixelFormat('rgb', 8)
    const pixels = makeImage(512, 512, format, 7)
    const write = (threads: number) =>
      collect(writePng({ width: 512, height: 512, format }, toBands(pixels, 512, format, [200, 312]), { compression: 'deflate', threads }))
    const [here, there] = [await write(0), await write(1)]
    expect(Buffer.compare(here, there)).toBe(0)
    const view = new DataView(here.buffer, here.byteOffset)
    const lengths: number[] = []
    for (let at = 8; at < here.length; at += 12 + view.getUint32(at)) {
      if (new TextDecoder().decode(here.subarray(at + 4, at + 8)) === 'IDAT') lengths.push(view.getUint32(at))
    }
    expect(lengths).toHaveLength(2)
    const { filters } = idat(here, { format, width: 512, height: 512, options: { compression: 'deflate' }, heights: [512] })
    expect(filters).toHaveLength(512)
  })
})

describe('InOrder', () => {
  // A server keeps the deflate threads, whose limit is many pieces: an output must still stream.
  it('yields the oldest results once done, in order, before `limit` are in flight', async () => {
    const order = new InOrder<number>(8)
    let finish: (n: number) => void = () => {}
    order.push(Promise.resolve(1))
    order.push(new Promise((resolve) => (finish = resolve)))
    order.push(Promise.resolve(3))
    await Promise.resolve()
    const taken: number[] = []
    for await (const n of order.ready()) taken.push(n)
    expect(taken).toEqual([1])
    finish(2)
    await Promise.resolve()
    for await (const n of order.ready()) taken.push(n)
    expect(taken).toEqual([1, 2, 3])
  })
})
