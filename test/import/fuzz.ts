/**
 * The fuzz target of the hand-written decoders (TIFF and Netpbm, src/import/decoders/tiff.ts
 * and pnm.ts), for the harness of test/helpers/fuzz.ts: its seeds (small generated TIFFs and
 * PNMs of every kind, a few fixtures, hot ranges on their headers and IFDs) and how one input
 * is decoded. Each input must decode or fail with a Tessera code.
 *
 * Used by `npm run chaos -- --only fuzz` (bench/chaos.ts: a child process per run of inputs,
 * killed on a per-input timeout or over a memory budget; crashers are written to
 * testdata/bad/crashers/) and by test/import/fuzz.test.ts (replays the crashers, runs a slice).
 * Inputs that only libvips would decode are counted as "routed", not decoded: libvips is not
 * what this fuzzes.
 */
import { readFileSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { tesseraCode } from '../../src/errors.js'
import type { DecodedImage } from '../../src/import/decoders/interface.js'
import { isPnm, openPnm } from '../../src/import/decoders/pnm.js'
import { checkDimensions, readAt } from '../../src/import/decoders/rows.js'
import { isTiff, readTiffHeader, TiffImage, tiffRoute } from '../../src/import/decoders/tiff.js'
import { pnm, TIFF_DEFLATE, TIFF_ZSTD, tiff } from '../../testdata/bad/encoders.js'
import { type FuzzInput, type FuzzTarget, mutate, type Outcome, type Seed } from '../helpers/fuzz.js'

const TESTDATA = fileURLToPath(new URL('../../testdata/', import.meta.url))
/** Where crashers are kept, one file each, replayed by test/import/fuzz.test.ts. */
export const CRASHERS = join(TESTDATA, 'bad/crashers')

/** Limits the fuzzed decodes run with: small, so a legitimate decode of a mutated header is quick. */
export const FUZZ_LIMITS = { maxPixels: 2 ** 24, maxDecodeBytes: 64 * 2 ** 20 } as const

let seeds: Seed[] | undefined

/** The valid files mutated: small generated TIFFs and PNMs of every kind, and a few fixtures. */
export function fuzzSeeds(): readonly Seed[] {
  seeds ??= [
    ['strips-none-gray8.tif', tiff({ width: 23, height: 17, rowsPerStrip: 5 })],
    ['strips-deflate-rgb8-pred.tif', tiff({ width: 19, height: 13, samples: 3, rowsPerStrip: 4, compression: TIFF_DEFLATE, predictor: 2 })],
    [
      'tiles-zstd-rgba16.tif',
      tiff({ width: 40, height: 24, samples: 4, bits: 16, extraSamples: [2], tile: [16, 16], compression: TIFF_ZSTD }),
    ],
    ['tiles-deflate-graya8.tif', tiff({ width: 33, height: 33, samples: 2, extraSamples: [1], tile: [16, 16], compression: TIFF_DEFLATE })],
    [
      'bigtiff-be-tiles-rgb8.tif',
      tiff({ width: 20, height: 20, samples: 3, tile: [16, 16], compression: TIFF_DEFLATE, bigTiff: true, bigEndian: true }),
    ],
    ['strips-none-gray16-be.tif', tiff({ width: 9, height: 30, bits: 16, rowsPerStrip: 7, bigEndian: true })],
    ['strips-zstd-gray16-pred.tif', tiff({ width: 31, height: 9, bits: 16, rowsPerStrip: 2, compression: TIFF_ZSTD, predictor: 2 })],
    ['gray8.pgm', pnm('P5\n# a comment\n7 5\n255\n', pattern(35, 1))],
    ['rgb16.ppm', pnm('P6 6 4 65535\n', pattern(6 * 4 * 6, 2))],
    ['graya8.pam', pnm('P7\nWIDTH 5\nHEIGHT 3\nDEPTH 2\nMAXVAL 255\nTUPLTYPE GRAYSCALE_ALPHA\nENDHDR\n', pattern(30, 3))],
    ['rgba16.pam', pnm('P7\nWIDTH 3\nHEIGHT 3\nDEPTH 4\nMAXVAL 65535\nENDHDR\n', pattern(72, 4))],
    ['fixture-rgb8-tiled-zstd-be-bigtiff.tif', new Uint8Array(readFileSync(join(TESTDATA, 'rgb8-tiled-zstd-be-bigtiff.tif')))],
    ['fixture-graya8-strip-deflate.tif', new Uint8Array(readFileSync(join(TESTDATA, 'graya8-strip-deflate.tif')))],
    ['fixture-gray8.pam', new Uint8Array(readFileSync(join(TESTDATA, 'gray8.pam')))],
  ].map(([name, bytes]) => ({ name: name as string, bytes: bytes as Uint8Array, hot: hotRanges(bytes as Uint8Array) }))
  return seeds
}

function pattern(n: number, salt: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 31 + salt * 17 + (i >> 3)) & 0xff)
}

/** The header and first IFD of a TIFF, or the header of a PNM. */
export function hotRanges(bytes: Uint8Array): Array<[number, number]> {
  if (isTiff(bytes)) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length)
    const le = bytes[0] === 0x49
    const big = view.getUint16(2, le) === 43
    const ifd = big ? Number(view.getBigUint64(8, le)) : view.getUint32(4, le)
    const count = big ? Number(view.getBigUint64(ifd, le)) : view.getUint16(ifd, le)
    const end = ifd + (big ? 8 : 2) + count * (big ? 20 : 12) + (big ? 8 : 4)
    // Past the byte-order mark, which only turns the file into an unknown one.
    return [
      [2, big ? 16 : 8],
      [ifd, Math.min(end, bytes.length)],
    ]
  }
  const text = Buffer.from(bytes.subarray(0, 200)).toString('latin1')
  const end = text.indexOf('ENDHDR\n')
  return [[2, end >= 0 ? end + 7 : Math.min(24, bytes.length)]]
}

/** Input `i` of fuzz seed `seed`: a pure function of both. */
export function fuzzInput(seed: number, i: number): FuzzInput {
  return mutate(fuzzSeeds(), seed, i)
}

/**
 * Decodes `path` with the hand-written decoders only, the way openDecoder dispatches them
 * (src/import/decoders/index.ts), reading every band; a TIFF they would hand to libvips is
 * 'routed', a file of neither format 'unknown'.
 */
export async function decodeHandWritten(path: string): Promise<Outcome> {
  const handle = await open(path, 'r')
  let image: DecodedImage | undefined
  let owned = true
  try {
    const { size } = await handle.stat()
    if (size === 0) return { kind: 'unknown' }
    const head = await readAt(handle, 0, Math.min(16, size), 'header')
    if (isPnm(head)) {
      owned = false // openPnm closes it on failure, the image on close()
      image = await openPnm(handle, size, { ...FUZZ_LIMITS, tmpDir: '/nonexistent' })
    } else if (isTiff(head)) {
      const header = await readTiffHeader(handle, size)
      checkDimensions(header.width, header.height, FUZZ_LIMITS.maxPixels, 'TIFF')
      const route = tiffRoute(header, FUZZ_LIMITS.maxDecodeBytes)
      if (!route.stream) return { kind: 'routed' }
      image = new TiffImage(handle, header, route.format)
      owned = false
    } else return { kind: 'unknown' }
    for await (const _ of image.bands(64)) {
      // every band is decoded
    }
    return { kind: 'ok' }
  } catch (error) {
    const code = tesseraCode(error)
    if (code !== undefined) return { kind: 'coded', code }
    return { kind: 'crash', error: error instanceof Error ? `${error.name}: ${error.message}`.slice(0, 300) : String(error) }
  } finally {
    await image?.close()
    if (owned) await handle.close()
  }
}

/** The target's second name for the worker process (test/helpers/fuzz-child.ts). */
export const fuzzOne = decodeHandWritten

/** This fuzz target, for runFuzz. */
export const DECODERS_FUZZ: FuzzTarget = { name: 'decoders', module: fileURLToPath(import.meta.url), crashers: CRASHERS }
