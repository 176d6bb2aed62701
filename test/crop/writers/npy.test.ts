import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { npyHeader, writeNpy } from '../../../src/crop/writers/npy.js'
import { pixelFormat } from '../../../src/format/pixel.js'
import { type DecodedImage, readAll } from '../../helpers/readers.js'
import { collect, expectPixels, FORMATS, label, makeImage, toBands, unevenHeights, writeTo } from './images.js'

const SIZES = [
  [37, 23],
  [1, 1],
  [300, 200],
] as const

const cases = FORMATS.flatMap((format) =>
  SIZES.map(([width, height]) => ({ format, width, height, name: `${label(format)} ${width}x${height}` })),
)

let dir: string
let decoded: DecodedImage[]

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-npy-'))
  const paths = await Promise.all(
    cases.map(async ({ format, width, height }, i) => {
      const image = makeImage(width, height, format, i)
      const path = join(dir, `${i}.npy`)
      await writeTo(path, writeNpy({ width, height, format }, toBands(image, width, format, unevenHeights(height, i))))
      return path
    }),
  )
  decoded = await readAll(paths.map((path) => ({ reader: 'numpy', path })))
})

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('writeNpy read by numpy.load', () => {
  it.each(cases.map((c, i) => ({ ...c, i })))('$name', ({ format, width, height, i }) => {
    const result = decoded[i]!
    expectPixels(result, makeImage(width, height, format, i), width, height, format)
    expect(result.info).toMatchObject({
      shape: [height, width, format.channels],
      dtype: format.bitsPerSample === 8 ? '|u1' : '<u2',
      fortran: false,
    })
  })
})

describe('npyHeader', () => {
  it('pads so the data starts at a multiple of 64 and ends the header with a newline', () => {
    for (const [width, height] of [
      [1, 1],
      [123456789, 987654321],
    ] as const) {
      const header = npyHeader({ width, height, format: pixelFormat('rgba', 16) })
      expect(header.length % 64).toBe(0)
      expect(header[header.length - 1]).toBe(0x0a)
      expect(new DataView(header.buffer).getUint16(8, true)).toBe(header.length - 10)
    }
  })

  it('keeps the channel axis for one channel', () => {
    const text = new TextDecoder().decode(npyHeader({ width: 3, height: 2, format: pixelFormat('gray', 8) }))
    expect(text).toContain("'shape': (2, 3, 1)")
  })

  it('rejects bands that do not add up to the height', async () => {
    const format = pixelFormat('gray', 8)
    const image = makeImage(4, 4, format)
    await expect(collect(writeNpy({ width: 4, height: 4, format }, toBands(image.subarray(0, 12), 4, format, [3])))).rejects.toThrow(
      RangeError,
    )
  })
})
