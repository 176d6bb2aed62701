import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { PnmKind } from '../../../src/crop/writers/interface.js'
import { writePnm } from '../../../src/crop/writers/pnm.js'
import type { Band, PixelFormat } from '../../../src/format/interface.js'
import { pixelFormat } from '../../../src/format/pixel.js'
import { type DecodedImage, type ReadJob, readAll } from '../../helpers/readers.js'
import { expectPixels, FORMATS, label, makeImage, toBands, unevenHeights, writeTo } from './images.js'

const SIZES = [
  [37, 23],
  [1, 1],
  [300, 200],
] as const

interface Case {
  readonly format: PixelFormat
  readonly width: number
  readonly height: number
  readonly kind: PnmKind
  readonly readers: ReadJob['reader'][]
}

const cases: Case[] = FORMATS.flatMap((format) =>
  SIZES.flatMap(([width, height]) => {
    // PAM: vips reads it through ImageMagick; netpbm is the numpy parser in readers.ts.
    const list: Case[] = [{ format, width, height, kind: 'pam', readers: ['netpbm', 'vips'] }]
    const pil = format.bitsPerSample === 8 || format.colorModel === 'gray' ? (['pil'] as const) : []
    if (format.colorModel === 'rgb') list.push({ format, width, height, kind: 'ppm', readers: ['netpbm', 'vips', ...pil] })
    if (format.colorModel === 'gray') list.push({ format, width, height, kind: 'pgm', readers: ['netpbm', 'vips', ...pil] })
    return list
  }),
)

const jobs = cases.flatMap((c, i) => c.readers.map((reader) => ({ i, reader })))
const name = (c: Case, reader: string) => `${c.kind} ${label(c.format)} ${c.width}x${c.height} read by ${reader}`

let dir: string
let decoded: DecodedImage[]

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-pnm-'))
  await Promise.all(
    cases.map(async ({ format, width, height, kind }, i) => {
      const image = makeImage(width, height, format, i)
      await writeTo(
        join(dir, `${i}.${kind}`),
        writePnm({ width, height, format }, toBands(image, width, format, unevenHeights(height, i)), kind),
      )
    }),
  )
  decoded = await readAll(jobs.map(({ i, reader }) => ({ reader, path: join(dir, `${i}.${cases[i]!.kind}`) })))
})

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('writePnm read by real readers', () => {
  it.each(jobs.map((job, k) => ({ ...job, k, name: name(cases[job.i]!, job.reader) })))('$name', ({ i, k }) => {
    const { format, width, height } = cases[i]!
    expectPixels(decoded[k]!, makeImage(width, height, format, i), width, height, format)
  })

  it('writes the PAM tuple types and maxvals', () => {
    const seen = new Set<string>()
    jobs.forEach(({ i, reader }, k) => {
      const c = cases[i]!
      if (reader !== 'netpbm' || c.kind !== 'pam') return
      seen.add(`${label(c.format)} ${decoded[k]!.info.tupltype} ${decoded[k]!.info.maxval}`)
    })
    expect([...seen].sort()).toEqual([
      'gray16 GRAYSCALE 65535',
      'gray8 GRAYSCALE 255',
      'graya16 GRAYSCALE_ALPHA 65535',
      'graya8 GRAYSCALE_ALPHA 255',
      'rgb16 RGB 65535',
      'rgb8 RGB 255',
      'rgba16 RGB_ALPHA 65535',
      'rgba8 RGB_ALPHA 255',
    ])
  })
})

describe('writePnm rejects formats the kind cannot hold', () => {
  async function* none(): AsyncGenerator<Band> {}
  it.each([
    ['ppm', 'rgba'],
    ['ppm', 'gray'],
    ['pgm', 'rgb'],
    ['pgm', 'graya'],
    ['pbm', 'gray'],
  ] as const)('%s with %s: ERR_INVALID_ARGUMENT before yielding anything', (kind, model) => {
    const init = { width: 2, height: 2, format: pixelFormat(model, 8) }
    expect(() => writePnm(init, none(), kind as PnmKind)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }))
  })
})
