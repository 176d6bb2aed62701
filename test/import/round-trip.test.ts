/**
 * Real files end to end, on the embedded pack store: every kind of input fixture imported,
 * cropped over the region table at each level against its numpy truth, and exported to files
 * that independent readers (libvips, tifffile, GDAL, numpy) read back as the same pixels.
 * Broken inputs leave the store exactly as it was.
 */
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Region } from '../../src/format/interface.js'
import { type BlockStore, cropImage, exportImage, importImage, openImage, openStore } from '../../src/image.js'
import { readNpy } from '../helpers/npy.js'
import { naiveCrop, naiveHalve, type TestImage } from '../helpers/oracle.js'
import { type ReadJob, readAll } from '../helpers/readers.js'

const testdata = new URL('../../testdata/', import.meta.url).pathname

const fixtures = [
  { file: 'rgb8.png', truth: 'rgb8' },
  { file: 'rgb8-icc.png', truth: 'rgb8' },
  { file: 'rgb8.webp', truth: 'rgb8' },
  { file: 'rgb8.jpg', truth: 'rgb8-jpeg' },
  { file: 'rgb8-strip-lzw.tif', truth: 'rgb8' },
  { file: 'rgb8-tiled-zstd.tif', truth: 'rgb8' },
  { file: 'gray8.png', truth: 'gray8' },
  { file: 'graya8.png', truth: 'graya8' },
  { file: 'rgba8.webp', truth: 'rgba8' },
  { file: 'rgb16.png', truth: 'rgb16' },
  { file: 'rgb16-tiled-zstd.tif', truth: 'rgb16' },
  { file: 'gray16.pgm', truth: 'gray16' },
  { file: 'graya8.pam', truth: 'graya8' },
]

let dir: string
let store: BlockStore
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-round-trip-'))
  store = await openStore(join(dir, 'store'))
})
afterAll(async () => {
  await store.close()
  await rm(dir, { recursive: true, force: true })
})

function truthImage(name: string): TestImage {
  const npy = readNpy(join(testdata, 'truth', `${name}.npy`))
  const [height, width, channels = 1] = npy.shape as [number, number, number?]
  return { width, height, channels, bits: npy.bitsPerSample, data: npy.data }
}

async function bytesOf(chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = []
  for await (const chunk of chunks) parts.push(chunk)
  return Buffer.concat(parts)
}

describe.each(fixtures)('$file', ({ file, truth }) => {
  const source = truthImage(truth)
  let cid: string

  beforeAll(async () => {
    cid = (await importImage(store, join(testdata, file), { tileSize: 32, pyramid: true, workers: 0 })).cid.toString()
  })

  it('crops every region of every level exactly', async () => {
    const image = await openImage(store, cid)
    let level = source
    for (let index = 0; index < image.manifest.levels.length; index++) {
      const regions: Region[] = [
        { x: 0, y: 0, width: level.width, height: level.height },
        { x: Math.min(31, level.width - 1), y: Math.min(30, level.height - 1), width: 1, height: 1 },
        {
          x: Math.floor(level.width / 3),
          y: Math.floor(level.height / 4),
          width: Math.ceil(level.width / 2),
          height: Math.ceil(level.height / 2),
        },
      ]
      for (const region of regions) {
        const got = await bytesOf(await cropImage(image, region, { level: index, format: 'raw' }))
        expect(Buffer.compare(got, naiveCrop(level, region)), `level ${index} ${JSON.stringify(region)}`).toBe(0)
      }
      level = naiveHalve(level)
    }
  })

  it('exports files that libvips, tifffile, GDAL and numpy read as the source pixels', async () => {
    const image = await openImage(store, cid)
    const jobs: ReadJob[] = []
    const outputs: Array<[string, string, ReadJob['reader']]> = [
      ['tiff', 'zstd', 'vips'],
      ['tiff', 'deflate', 'gdal'],
      ['tiff', 'zstd', 'tifffile'],
      ['png', 'deflate', 'vips'],
      ['npy', 'none', 'numpy'],
    ]
    for (const [format, compression, reader] of outputs) {
      const path = join(dir, `${file}.${reader}.${compression}.${format}`)
      await writeFile(path, await bytesOf(await exportImage(image, { format: format as 'tiff', compression: compression as 'zstd' })))
      jobs.push({ reader, path })
    }
    for (const decoded of await readAll(jobs)) {
      expect([decoded.width, decoded.height, decoded.channels, decoded.bitsPerSample]).toEqual([
        source.width,
        source.height,
        source.channels,
        source.bits,
      ])
      expect(Buffer.compare(decoded.data, source.data)).toBe(0)
    }
  })
})

describe('broken inputs', () => {
  const broken = [
    ['truncated.png', 'ERR_CORRUPT_INPUT'],
    ['truncated.jpg', 'ERR_CORRUPT_INPUT'],
    ['truncated-tiled.tif', 'ERR_CORRUPT_INPUT'],
    ['corrupt-tile-zstd.tif', 'ERR_CORRUPT_INPUT'],
    ['bad-crc.png', 'ERR_CORRUPT_INPUT'],
    ['text.png', 'ERR_UNSUPPORTED_FORMAT'],
    ['cmyk.jpg', 'ERR_UNSUPPORTED_FORMAT'],
    ['vector.svg', 'ERR_UNSUPPORTED_FORMAT'],
    ['huge.png', 'ERR_LIMIT'],
  ] as const
  for (const [file, code] of broken) {
    it(`rejects ${file} with ${code} and leaves the store unchanged`, async () => {
      const packs = async () => (await readdir(join(dir, 'store', 'packs'))).sort()
      const pins = async () => {
        const all: string[] = []
        for await (const pin of store.pins()) all.push(pin.cid.toString())
        return all
      }
      const [packsBefore, pinsBefore, bytesBefore] = [await packs(), await pins(), await store.storedBytes()]
      await expect(importImage(store, join(testdata, 'bad', file), { maxPixels: 100_000_000, workers: 0 })).rejects.toMatchObject({ code })
      expect(await packs()).toEqual(packsBefore)
      expect(await pins()).toEqual(pinsBefore)
      expect(await store.storedBytes()).toBe(bytesBefore)
    })
  }
})
