/**
 * The bad-input corpus (issue 10): hostile and broken inputs for the importer, generated at
 * test time (nothing large is committed: bombs are made from a few bytes, by patching a tiny
 * valid file's header or by repeating one deflate block). Each case says which coded error
 * the importer must give (or 'ok': a control that must import), and why.
 *
 *   node --import tsx testdata/bad/make.ts OUTDIR     # writes every case + index.json
 *
 * test/import/bad-inputs.test.ts imports each case into a fresh store in a child process and
 * checks the code, time, peak memory, temporary disk and that the store is unchanged.
 * See README.md in this folder.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import sharp from 'sharp'
import {
  concat,
  png,
  pngRawBytes,
  pnm,
  TIFF_DEFLATE,
  TIFF_NONE,
  TIFF_ZSTD,
  type TiffSpec,
  tiff,
  tiffEncode,
  tiffFromChunks,
  zeroZlib,
} from './encoders.js'

const TESTDATA = fileURLToPath(new URL('../', import.meta.url))

/** What the importer must answer. */
export type Expect = 'ok' | 'ERR_CORRUPT_INPUT' | 'ERR_UNSUPPORTED_FORMAT' | 'ERR_LIMIT' | 'ERR_NOT_FOUND'

/** Importer options a case runs with (on top of the corpus defaults, CORPUS_OPTIONS). */
export interface CaseOptions {
  readonly maxPixels?: number
  readonly maxTempBytes?: number
  readonly maxDecodeBytes?: number
}

/** One input of the corpus. */
export interface BadInput {
  /** Unique, ASCII: the file name unless `fileName` says otherwise. */
  readonly name: string
  readonly expect: Expect
  readonly why: string
  /** The issue 10 finding it reproduces, if any. */
  readonly finding?: number
  readonly make: () => Uint8Array | Promise<Uint8Array>
  /** An odd file name (a string, or raw bytes that need not be UTF-8). */
  readonly fileName?: string | Uint8Array
  readonly options?: CaseOptions
  /** Time budget in seconds (default 10). */
  readonly seconds?: number
}

/** The options every case is imported with: a temp-disk budget the test also measures. */
export const CORPUS_OPTIONS = { maxTempBytes: 64 * 2 ** 20 } as const satisfies CaseOptions

const fixture = (name: string): Uint8Array => new Uint8Array(readFileSync(join(TESTDATA, name)))

// ---------------------------------------------------------------------------------------------
// Truncations of valid fixtures, at offsets spread over each file. A cut before a format's
// signature is complete leaves an unknown file (ERR_UNSUPPORTED_FORMAT); every later cut
// must be ERR_CORRUPT_INPUT, never a success with made-up pixels.

const TRUNCATED: ReadonlyArray<readonly [file: string, signature: number, trailer?: number]> = [
  // PNG's last 12 bytes are IEND and GIF's last byte its trailer: a cut there loses no pixel,
  // and libvips stops reading before them, so those cuts import.
  ['rgb8.png', 8, 12],
  ['gray16.png', 8, 12],
  ['rgb8.jpg', 3],
  ['rgb8.webp', 12],
  ['palette.gif', 4, 1],
  ['rgb8-strip-none.tif', 4],
  ['rgb8-strip-deflate.tif', 4],
  ['rgb8-strip-lzw.tif', 4],
  ['rgb8-tiled-zstd.tif', 4],
  ['rgb8-tiled-zstd-be-bigtiff.tif', 4],
  ['rgb16-strip-deflate-be.tif', 4],
  ['rgb8.ppm', 3],
  ['gray16.pgm', 3],
  ['rgba8.pam', 3],
]
const CUTS = [1, 0.02, 0.1, 0.25, 0.4, 0.55, 0.7, 0.85, 0.97, -1]

function truncations(): BadInput[] {
  const out: BadInput[] = []
  for (const [file, signature, trailer = 0] of TRUNCATED) {
    const size = fixture(file).length
    const offsets = [...new Set(CUTS.map((f) => (f === 1 ? 1 : f < 0 ? size - 1 : Math.max(2, Math.floor(size * f)))))]
    for (const at of offsets) {
      out.push({
        name: `trunc-${at}-${file}`,
        expect: at < signature ? 'ERR_UNSUPPORTED_FORMAT' : at >= size - trailer ? 'ok' : 'ERR_CORRUPT_INPUT',
        why: `${file} cut to ${at} of ${size} bytes${at >= size - trailer ? ' (inside the end marker)' : ''}`,
        make: () => fixture(file).subarray(0, at),
      })
    }
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// Small images and helpers for the structural cases.

const gray = (w: number, h: number, extra: Partial<TiffSpec> = {}): TiffSpec => ({ width: w, height: h, ...extra })
const tiled = (w: number, h: number, t: number, extra: Partial<TiffSpec> = {}): TiffSpec => ({
  width: w,
  height: h,
  tile: [t, t],
  compression: TIFF_DEFLATE,
  ...extra,
})

/** Sets a 16-bit big-endian field of a JPEG's first SOFn segment (height at +5, width at +7). */
function patchJpegSize(jpeg: Uint8Array, width: number, height: number): Uint8Array {
  const out = jpeg.slice()
  for (let i = 2; i + 9 < out.length; i++) {
    if (out[i] === 0xff && out[i + 1]! >= 0xc0 && out[i + 1]! <= 0xc2) {
      const view = new DataView(out.buffer)
      view.setUint16(i + 5, height)
      view.setUint16(i + 7, width)
      return out
    }
  }
  throw new Error('no SOF marker')
}

/** A tiny solid image encoded by sharp (libvips), for patching. */
async function solid(format: 'jpeg' | 'webp', options: object): Promise<Uint8Array> {
  const image = sharp({ create: { width: 16, height: 16, channels: 3, background: { r: 9, g: 90, b: 200 } } })
  return new Uint8Array(await image[format](options).toBuffer())
}

/**
 * A lossless WebP of any size from a 16x16 solid one: with one colour every Huffman code has a
 * single symbol, so pixels take 0 bits and only the 14-bit dimensions (VP8L header) change.
 */
async function webpBomb(width: number, height: number): Promise<Uint8Array> {
  const out = (await solid('webp', { lossless: true })).slice()
  const at = Buffer.from(out).indexOf('VP8L') + 8 // chunk header, then the 0x2f signature
  const view = new DataView(out.buffer)
  const bits = view.getUint32(at + 1, true)
  view.setUint32(at + 1, ((bits & ~0xfffffff) | ((width - 1) & 0x3fff) | (((height - 1) & 0x3fff) << 14)) >>> 0, true)
  return out
}

/** A GIF whose one frame is width x height with almost no LZW data (libnsgif fills the rest). */
function gifBomb(width: number, height: number): Uint8Array {
  const le = (n: number): number[] => [n & 0xff, n >> 8]
  return Uint8Array.from([
    ...Buffer.from('GIF89a'),
    ...le(width),
    ...le(height),
    0x80,
    0,
    0,
    ...[0, 0, 0, 255, 255, 255],
    0x2c,
    0,
    0,
    0,
    0,
    ...le(width),
    ...le(height),
    0,
    ...[2, 2, 0x4c, 0x01, 0],
    0x3b,
  ])
}

/** A PNG of zeros of any size, made in milliseconds (see zeroZlib). */
function zeroPng(width: number, height: number, colorType: number, interlace = false, bitDepth = 8): Uint8Array {
  const channels = { 0: 1, 2: 3, 4: 2, 6: 4 }[colorType as 0 | 2 | 4 | 6]
  return png({ width, height, colorType, bitDepth, interlace, idat: zeroZlib(pngRawBytes(width, height, bitDepth, channels, interlace)) })
}

// ---------------------------------------------------------------------------------------------

const UPLOAD_MAX_PIXELS = 2 ** 28

function structural(): BadInput[] {
  const cases: BadInput[] = [
    // ---- controls: each must import (proves the refusals below are precise)
    { name: 'ok-tiled-deflate.tif', expect: 'ok', why: 'valid tiled deflate TIFF', make: () => tiff(tiled(100, 70, 32)) },
    {
      name: 'ok-strips-zstd-pred.tif',
      expect: 'ok',
      why: 'valid zstd strips, predictor 2',
      make: () => tiff(gray(90, 60, { rowsPerStrip: 7, compression: TIFF_ZSTD, predictor: 2 })),
    },
    {
      name: 'ok-bigtiff-be.tif',
      expect: 'ok',
      why: 'valid big-endian BigTIFF, 16-bit RGB tiles',
      make: () => tiff(tiled(70, 50, 32, { samples: 3, bits: 16, bigTiff: true, bigEndian: true })),
    },
    {
      name: 'ok-palette8.tif',
      expect: 'ok',
      why: 'palette TIFF with its colour map',
      make: () => tiff(gray(40, 30, { photometric: 3, colorMap: true })),
    },
    {
      name: 'ok-palette4.tif',
      expect: 'ok',
      why: '4-bit palette TIFF with its colour map',
      make: () => tiff(gray(40, 30, { bits: 4, photometric: 3, colorMap: true })),
    },
    {
      name: 'ok-palette1.png',
      expect: 'ok',
      why: '1-bit palette PNG (indices, not samples: expanded through the palette)',
      make: () => png({ width: 33, height: 20, colorType: 3, bitDepth: 1 }),
    },
    {
      name: 'ok-interlaced-small.png',
      expect: 'ok',
      why: 'a small Adam7 PNG (whole decode within budget)',
      make: () => png({ width: 97, height: 67, interlace: true }),
    },
    {
      name: 'ok-sparse-ifd-chain.tif',
      expect: 'ok',
      why: 'valid TIFF whose next-IFD offset is 0',
      make: () => tiff(gray(20, 20, { nextIfd: 0 })),
    },

    // ---- TIFF structure
    {
      name: 'tiff-ifd-loop.tif',
      expect: 'ERR_CORRUPT_INPUT',
      why: 'next-IFD offset points at the IFD itself',
      make: () => tiff(gray(20, 20, { nextIfd: 'self' })),
    },
    {
      name: 'tiff-ifd-loop-lzwroute.tif',
      expect: 'ERR_CORRUPT_INPUT',
      why: 'IFD loop in a TIFF routed to libvips (planar)',
      make: () => tiff(gray(20, 20, { samples: 3, planar: 2, compression: TIFF_DEFLATE, nextIfd: 'self' })),
    },
    {
      name: 'tiff-next-ifd-past-eof.tif',
      expect: 'ERR_CORRUPT_INPUT',
      why: 'next-IFD offset beyond the end of the file',
      make: () => tiff(gray(20, 20, { nextIfd: 0x7fffff00 })),
    },
    {
      name: 'tiff-ifd-past-eof.tif',
      expect: 'ERR_CORRUPT_INPUT',
      why: 'first IFD offset beyond the end of the file',
      make: () => {
        const out = tiff(gray(20, 20))
        new DataView(out.buffer).setUint32(4, 0xfffffff0, true)
        return out
      },
    },
    {
      name: 'tiff-ifd-zero-entries.tif',
      expect: 'ERR_CORRUPT_INPUT',
      why: 'IFD with 0 entries',
      make: () => concat([Uint8Array.of(0x49, 0x49, 42, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0)]),
    },
    {
      name: 'tiff-strip-past-eof.tif',
      expect: 'ERR_CORRUPT_INPUT',
      why: 'a strip offset beyond the end of the file',
      make: () => tiff(gray(20, 20, { rowsPerStrip: 5, ranges: (r) => r.map(([o, n], i) => [i === 2 ? 0x7ffffff0 : o, n]) })),
    },
    {
      name: 'tiff-tile-count-past-eof.tif',
      expect: 'ERR_CORRUPT_INPUT',
      why: 'a tile byte count of 2^32-1',
      make: () => tiff(tiled(64, 64, 32, { ranges: (r) => r.map(([o, n], i) => [o, i === 1 ? 0xffffffff : n]) })),
    },
    {
      name: 'tiff-tiles-claim-whole-file.tif',
      expect: 'ERR_CORRUPT_INPUT',
      finding: 4,
      why: '1024 tiles across, each claiming the whole 2.1 MB of tile data (read at once: 2 GB)',
      make: () => {
        // One real 16x16 deflate tile, then 2 MB of padding the ranges also cover.
        const tile = tiffEncode(new Uint8Array(256), TIFF_DEFLATE)
        const data = concat([tile, new Uint8Array(2_100_000)])
        const spec = tiled(16384, 16, 16)
        const chunks = [data, ...Array<Uint8Array>(1023).fill(new Uint8Array(0))]
        return tiffFromChunks({ ...spec, ranges: (r, area) => r.map(() => [area.start, area.end - area.start]) }, chunks, 16, 16)
      },
    },
    {
      name: 'tiff-tiles-shared-range.tif',
      expect: 'ERR_CORRUPT_INPUT',
      finding: 4,
      why: 'every tile points at the same (valid) tile',
      make: () => tiff(tiled(128, 128, 16, { ranges: (r) => r.map(() => r[0]!) })),
    },
    {
      name: 'tiff-tiles-overlap.tif',
      expect: 'ERR_CORRUPT_INPUT',
      finding: 4,
      why: 'each tile range also covers the next tile',
      make: () => tiff(tiled(64, 64, 16, { ranges: (r) => r.map(([o, n], i) => [o, i + 1 < r.length ? n + 8 : n]) })),
    },
    {
      name: 'tiff-tile-count-absurd.tif',
      expect: 'ERR_CORRUPT_INPUT',
      finding: 4,
      why: 'a 16x16 deflate tile (256 bytes of pixels) claiming 512 KB',
      make: () => tiff(tiled(32, 16, 16, { pad: 600_000, ranges: (r) => r.map(([o], i) => [o, i === 1 ? 512_000 : r[i]![1]]) })),
    },
    {
      name: 'tiff-strip-count-absurd-none.tif',
      expect: 'ERR_CORRUPT_INPUT',
      finding: 4,
      why: 'an uncompressed 16x16 tile claiming 40 KB',
      make: () => tiff(tiled(32, 16, 16, { compression: TIFF_NONE, pad: 50_000, ranges: (r) => r.map(([o, n], i) => [o, i === 0 ? 40_000 : n]) })),
    },
    {
      name: 'tiff-2m-1x1-tiles.tif',
      expect: 'ERR_LIMIT',
      finding: 8,
      seconds: 2,
      why: '2 million 1x1 tiles (16 MB of offsets): per-tile cost, refused from the header',
      make: () => {
        const n = 1414
        const chunks = Array.from({ length: n * n }, () => ONE_BYTE)
        return tiffFromChunks({ width: n, height: n, tile: [1, 1] }, chunks, 1, 1)
      },
    },
    {
      name: 'tiff-1m-strips.tif',
      expect: 'ERR_LIMIT',
      finding: 8,
      seconds: 2,
      why: '1 million one-row strips of a 4-pixel-wide image',
      make: () => tiffFromChunks({ width: 4, height: 1 << 20, rowsPerStrip: 1 }, Array.from({ length: 1 << 20 }, () => FOUR_BYTES), 4, 1),
    },
    {
      name: 'tiff-too-few-tiles.tif',
      expect: 'ERR_CORRUPT_INPUT',
      why: 'fewer tile offsets than the grid needs',
      make: () => tiff(tiled(64, 64, 16, { ranges: (r) => r.slice(0, 5) })),
    },
    {
      name: 'tiff-counts-mismatch.tif',
      expect: 'ERR_CORRUPT_INPUT',
      why: 'TileByteCounts has fewer values than TileOffsets',
      make: () => {
        const spec = tiled(32, 32, 16)
        return tiff({ ...spec, extra: [[325, 4, [100, 100]]] })
      },
    },
    {
      name: 'tiff-empty-tile.tif',
      expect: 'ERR_CORRUPT_INPUT',
      why: 'a tile with byte count 0',
      make: () => tiff(tiled(64, 64, 16, { ranges: (r) => r.map(([o, n], i) => [o, i === 3 ? 0 : n]) })),
    },
    {
      name: 'tiff-garbage-deflate.tif',
      expect: 'ERR_CORRUPT_INPUT',
      why: 'tile data that is not deflate',
      make: () => tiff(tiled(64, 64, 16, { encode: (raw) => raw.subarray(0, 40) })),
    },
    {
      name: 'tiff-zero-tile-size.tif',
      expect: 'ERR_CORRUPT_INPUT',
      why: 'TileWidth 0',
      make: () => tiff({ ...tiled(32, 32, 16), extra: [[322, 4, [0]]] }),
    },
    {
      name: 'tiff-huge-tile.tif',
      expect: 'ERR_LIMIT',
      why: 'one 60000x60000 tile for a 100x100 image: 3.4 GB to decode at once',
      make: () => tiffFromChunks({ ...tiled(100, 100, 60000) }, [zeroZlib(1000)], 60000, 60000),
    },
    {
      name: 'tiff-declared-huge.tif',
      expect: 'ERR_LIMIT',
      why: '4294967295 x 4294967295 pixels declared',
      make: () => tiffFromChunks({ width: 0xffffffff, height: 0xffffffff }, [ONE_BYTE], 0xffffffff, 1),
    },
    {
      name: 'tiff-zero-width.tif',
      expect: 'ERR_CORRUPT_INPUT',
      why: 'ImageWidth 0',
      make: () => tiffFromChunks({ width: 0, height: 10 }, [ONE_BYTE], 0, 10),
    },
    {
      name: 'tiff-bomb-deflate-strips.tif',
      expect: 'ERR_LIMIT',
      why: '20000x20000 gray zeros in 100-row deflate strips, ~400 KB: over the upload pixel limit',
      options: { maxPixels: UPLOAD_MAX_PIXELS },
      make: () => {
        const strip = zeroZlib(20000 * 100)
        return tiffFromChunks({ width: 20000, height: 20000, rowsPerStrip: 100, compression: TIFF_DEFLATE }, Array(200).fill(strip), 20000, 100)
      },
    },
    {
      name: 'tiff-bomb-single-strip.tif',
      expect: 'ERR_LIMIT',
      why: 'one 16000x16000 deflate strip of zeros (256 MB decoded at once), 250 KB',
      make: () => tiffFromChunks({ width: 16000, height: 16000, compression: TIFF_DEFLATE }, [zeroZlib(16000 * 16000)], 16000, 16000),
    },
    {
      name: 'bigtiff-offset-2-63.tif',
      expect: 'ERR_CORRUPT_INPUT',
      why: 'BigTIFF tile offset above 2^53',
      make: () => {
        const out = tiff(tiled(32, 32, 16, { bigTiff: true }))
        // The IFD is last: find TileOffsets (324) and make its first value 2^63.
        return patchBigTiffValue(out, 324, 2n ** 63n)
      },
    },
    {
      name: 'bigtiff-bad-offset-size.tif',
      expect: 'ERR_CORRUPT_INPUT',
      why: 'BigTIFF header with offset size 4',
      make: () => {
        const out = tiff(tiled(32, 32, 16, { bigTiff: true }))
        out[4] = 4
        return out
      },
    },
    {
      name: 'bigtiff-tiles-overlap.tif',
      expect: 'ERR_CORRUPT_INPUT',
      why: 'BigTIFF, big-endian, two tiles share a range',
      make: () => tiff(tiled(64, 32, 16, { bigTiff: true, bigEndian: true, compression: TIFF_ZSTD, ranges: (r) => r.map((x, i) => (i === 3 ? r[2]! : x)) })),
    },
    {
      name: 'bigtiff-ifd-count-huge.tif',
      expect: 'ERR_CORRUPT_INPUT',
      why: 'BigTIFF IFD claiming 2^40 entries',
      make: () => {
        const out = tiff(gray(8, 8, { bigTiff: true }))
        const view = new DataView(out.buffer)
        const ifd = Number(view.getBigUint64(8, true))
        view.setBigUint64(ifd, 2n ** 40n, true)
        return out
      },
    },

    // ---- sample formats and colour spaces
    { name: 'tiff-1bit.tif', expect: 'ERR_UNSUPPORTED_FORMAT', finding: 14, why: '1-bit gray: stored would mean rescaling 0/1', make: () => tiff(gray(40, 30, { bits: 1 })) },
    { name: 'tiff-4bit.tif', expect: 'ERR_UNSUPPORTED_FORMAT', finding: 14, why: '4-bit gray', make: () => tiff(gray(40, 30, { bits: 4 })) },
    { name: 'png-1bit-gray.png', expect: 'ERR_UNSUPPORTED_FORMAT', finding: 14, why: '1-bit gray PNG', make: () => png({ width: 33, height: 20, colorType: 0, bitDepth: 1 }) },
    { name: 'png-2bit-gray.png', expect: 'ERR_UNSUPPORTED_FORMAT', finding: 14, why: '2-bit gray PNG', make: () => png({ width: 33, height: 20, colorType: 0, bitDepth: 2 }) },
    { name: 'png-4bit-gray.png', expect: 'ERR_UNSUPPORTED_FORMAT', finding: 14, why: '4-bit gray PNG', make: () => png({ width: 33, height: 20, colorType: 0, bitDepth: 4 }) },
    { name: 'tiff-uint32.tif', expect: 'ERR_UNSUPPORTED_FORMAT', why: '32-bit unsigned samples', make: () => tiff(gray(20, 20, { bits: 32 })) },
    { name: 'tiff-float32.tif', expect: 'ERR_UNSUPPORTED_FORMAT', why: '32-bit float samples', make: () => tiff(gray(20, 20, { bits: 32, sampleFormat: 3 })) },
    { name: 'tiff-float16.tif', expect: 'ERR_UNSUPPORTED_FORMAT', why: '16-bit float samples', make: () => tiff(gray(20, 20, { bits: 16, sampleFormat: 3 })) },
    { name: 'tiff-int16.tif', expect: 'ERR_UNSUPPORTED_FORMAT', why: 'signed 16-bit samples', make: () => tiff(gray(20, 20, { bits: 16, sampleFormat: 2 })) },
    { name: 'tiff-int8-deflate.tif', expect: 'ERR_UNSUPPORTED_FORMAT', why: 'signed 8-bit samples, deflate', make: () => tiff(gray(20, 20, { sampleFormat: 2, compression: TIFF_DEFLATE })) },
    { name: 'tiff-12bit.tif', expect: 'ERR_UNSUPPORTED_FORMAT', why: '12-bit samples', make: () => tiff(gray(20, 20, { bits: 12 })) },
    { name: 'tiff-cmyk.tif', expect: 'ERR_UNSUPPORTED_FORMAT', why: 'CMYK (Photometric 5)', make: () => tiff(gray(20, 20, { samples: 4, photometric: 5 })) },
    { name: 'tiff-cmyk-deflate.tif', expect: 'ERR_UNSUPPORTED_FORMAT', why: 'CMYK, deflate', make: () => tiff(gray(20, 20, { samples: 4, photometric: 5, compression: TIFF_DEFLATE })) },
    { name: 'tiff-lab.tif', expect: 'ERR_UNSUPPORTED_FORMAT', finding: 14, why: 'CIELab (Photometric 8)', make: () => tiff(gray(20, 20, { samples: 3, photometric: 8 })) },
    { name: 'tiff-icclab.tif', expect: 'ERR_UNSUPPORTED_FORMAT', finding: 14, why: 'ICCLab (Photometric 9)', make: () => tiff(gray(20, 20, { samples: 3, photometric: 9 })) },
    { name: 'tiff-itulab-deflate.tif', expect: 'ERR_UNSUPPORTED_FORMAT', finding: 14, why: 'ITULab (Photometric 10), deflate', make: () => tiff(gray(20, 20, { samples: 3, photometric: 10, compression: TIFF_DEFLATE })) },
    { name: 'tiff-logluv.tif', expect: 'ERR_UNSUPPORTED_FORMAT', why: 'LogLuv (Photometric 32845)', make: () => tiff(gray(20, 20, { samples: 3, photometric: 32845 })) },
    { name: 'tiff-mask.tif', expect: 'ERR_UNSUPPORTED_FORMAT', why: 'transparency mask (Photometric 4)', make: () => tiff(gray(24, 20, { bits: 1, photometric: 4 })) },
    { name: 'tiff-5-samples.tif', expect: 'ERR_UNSUPPORTED_FORMAT', why: '5 samples per pixel', make: () => tiff(gray(20, 20, { samples: 5, photometric: 2, extraSamples: [0, 0] })) },
    { name: 'tiff-palette-no-map.tif', expect: 'ERR_CORRUPT_INPUT', finding: 14, why: 'palette TIFF without its ColorMap', make: () => tiff(gray(40, 30, { photometric: 3 })) },
    { name: 'tiff-palette-16bit-no-map.tif', expect: 'ERR_CORRUPT_INPUT', finding: 14, why: '16-bit palette TIFF without ColorMap', make: () => tiff(gray(40, 30, { bits: 16, photometric: 3 })) },
    { name: 'cmyk.jpg', expect: 'ERR_UNSUPPORTED_FORMAT', why: 'CMYK JPEG (committed, made by PIL)', make: () => fixture('bad/cmyk.jpg') },

    // ---- bombs by declared size
    {
      name: 'png-declared-100000.png',
      expect: 'ERR_LIMIT',
      why: '100000x100000 declared (over 2^31 pixels), no data',
      make: () => png({ width: 100000, height: 100000, colorType: 0, idat: zeroZlib(10) }),
    },
    {
      name: 'png-declared-46000-rgba16.png',
      expect: 'ERR_LIMIT',
      finding: 6,
      why: '46000x46000 RGBA16 (under 2^31 pixels, 16.9 GB to decode to disk), no data',
      make: () => png({ width: 46000, height: 46000, colorType: 6, bitDepth: 16, idat: zeroZlib(10) }),
    },
    {
      name: 'jpeg-declared-65000.jpg',
      expect: 'ERR_LIMIT',
      why: 'a 16x16 JPEG with SOF patched to 65000x65000',
      make: async () => patchJpegSize(await solid('jpeg', {}), 65000, 65000),
    },
    {
      name: 'jpeg-declared-40000.jpg',
      expect: 'ERR_LIMIT',
      finding: 6,
      why: 'a 16x16 JPEG patched to 40000x40000: 4.8 GB temp file under the pixel limit',
      make: async () => patchJpegSize(await solid('jpeg', {}), 40000, 40000),
    },
    { name: 'pnm-declared-huge.ppm', expect: 'ERR_LIMIT', why: 'P6 999999999x999999999', make: () => pnm('P6\n999999999 999999999\n255\n') },
    { name: 'pnm-declared-short.pgm', expect: 'ERR_CORRUPT_INPUT', why: 'P5 40000x40000 with 10 bytes of raster', make: () => pnm('P5\n40000 40000\n255\n', new Uint8Array(10)) },

    // ---- bombs by ratio (tiny files, huge decodes)
    {
      name: 'png-bomb-zeros.png',
      expect: 'ERR_LIMIT',
      finding: 6,
      why: '8192x8192 RGB of zeros, ~200 KB: 201 MB temp file, over the 64 MiB budget',
      make: () => zeroPng(8192, 8192, 2),
    },
    {
      name: 'png-wide-zeros.png',
      expect: 'ERR_LIMIT',
      finding: 6,
      why: '4000000x40 gray zeros, ~160 KB: the importer would hold a 160 MB tile row',
      options: { maxTempBytes: 2 ** 40 },
      make: () => zeroPng(4_000_000, 40, 0),
    },
    {
      name: 'tiff-wide-strips.tif',
      expect: 'ERR_LIMIT',
      finding: 6,
      why: '2000000x100 RGB16 in deflate strips of one row (12 MB each, zeros): 1.2 GB of tile row',
      make: () => {
        const strip = zeroZlib(2_000_000 * 6)
        return tiffFromChunks(
          { width: 2_000_000, height: 100, samples: 3, bits: 16, rowsPerStrip: 1, compression: TIFF_DEFLATE },
          Array(100).fill(strip),
          2_000_000,
          1,
        )
      },
    },
    {
      name: 'png-bomb-interlaced.png',
      expect: 'ERR_LIMIT',
      finding: 5,
      why: '20000x20000 gray interlaced zeros, ~400 KB: decoded whole (400 MB)',
      options: { maxTempBytes: 2 ** 40 },
      make: () => zeroPng(20000, 20000, 0, true),
    },
    {
      name: 'jpeg-bomb-progressive.jpg',
      expect: 'ERR_LIMIT',
      finding: 5,
      why: 'progressive 16x16 JPEG patched to 16000x16000: libjpeg allocates every coefficient',
      options: { maxTempBytes: 2 ** 40 },
      make: async () => patchJpegSize(await solid('jpeg', { progressive: true }), 16000, 16000),
    },
    {
      name: 'webp-bomb.webp',
      expect: 'ERR_LIMIT',
      why: '38-byte lossless WebP of 16000x16000 (decoded whole: 2 GB)',
      options: { maxTempBytes: 2 ** 40 },
      make: () => webpBomb(16000, 16000),
    },
    {
      name: 'gif-bomb.gif',
      expect: 'ERR_LIMIT',
      why: '35-byte GIF of 16000x16000 (decoded whole: 1 GB)',
      options: { maxTempBytes: 2 ** 40 },
      make: () => gifBomb(16000, 16000),
    },

    // ---- PNG
    { name: 'png-bad-crc-ihdr.png', expect: 'ERR_CORRUPT_INPUT', why: 'IHDR CRC wrong', make: () => png({ width: 30, height: 20, badCrc: 'IHDR' }) },
    { name: 'png-bad-crc-idat.png', expect: 'ERR_CORRUPT_INPUT', why: 'IDAT CRC wrong', make: () => png({ width: 30, height: 20, badCrc: 'IDAT' }) },
    { name: 'png-zero-width.png', expect: 'ERR_CORRUPT_INPUT', why: 'width 0', make: () => png({ width: 0, height: 20, idat: zeroZlib(20) }) },
    { name: 'png-bit-depth-3.png', expect: 'ERR_CORRUPT_INPUT', why: 'bit depth 3', make: () => png({ width: 8, height: 8, colorType: 0, bitDepth: 3, idat: zeroZlib(32) }) },
    // libpng reports it as a warning and decodes around it (testdata/bad/libpng-warnings/ has more).
    {
      name: 'png-bad-crc-text.png',
      expect: 'ERR_CORRUPT_INPUT',
      why: 'an ancillary chunk CRC wrong',
      make: () => png({ width: 30, height: 20, badTextCrc: true }),
    },
    { name: 'png-short-idat.png', expect: 'ERR_CORRUPT_INPUT', why: 'zlib stream ends rows early', make: () => png({ width: 64, height: 64, colorType: 0, idat: zeroZlib(65 * 10) }) },
    { name: 'png-no-idat.png', expect: 'ERR_CORRUPT_INPUT', why: 'IHDR then IEND', make: () => png({ width: 8, height: 8, idat: new Uint8Array(0) }) },

    // ---- PNM
    { name: 'pnm-maxval-1.pgm', expect: 'ERR_UNSUPPORTED_FORMAT', why: 'MAXVAL 1 (bilevel as P5)', make: () => pnm('P5\n4 4\n1\n', new Uint8Array(16)) },
    { name: 'pnm-maxval-0.pgm', expect: 'ERR_UNSUPPORTED_FORMAT', why: 'MAXVAL 0', make: () => pnm('P5\n4 4\n0\n', new Uint8Array(16)) },
    { name: 'pnm-p4.pbm', expect: 'ERR_UNSUPPORTED_FORMAT', why: '1-bit P4', make: () => pnm('P4\n8 2\n', new Uint8Array(2)) },
    { name: 'pnm-width-0.ppm', expect: 'ERR_CORRUPT_INPUT', why: 'width 0', make: () => pnm('P6\n0 4\n255\n', new Uint8Array(0)) },
    { name: 'pnm-16-digits.pgm', expect: 'ERR_CORRUPT_INPUT', why: 'a 16-digit width', make: () => pnm('P5\n1234567890123456 1\n255\n') },
    { name: 'pnm-long-comment.pgm', expect: 'ERR_CORRUPT_INPUT', why: 'a 70 KB comment in the header', make: () => pnm(`P5\n#${'x'.repeat(70_000)}\n4 4\n255\n`, new Uint8Array(16)) },
    { name: 'pam-depth-5.pam', expect: 'ERR_UNSUPPORTED_FORMAT', why: 'PAM DEPTH 5', make: () => pnm('P7\nWIDTH 2\nHEIGHT 2\nDEPTH 5\nMAXVAL 255\nENDHDR\n', new Uint8Array(20)) },
    { name: 'pam-tupltype-mismatch.pam', expect: 'ERR_CORRUPT_INPUT', why: 'TUPLTYPE RGB with DEPTH 1', make: () => pnm('P7\nWIDTH 2\nHEIGHT 2\nDEPTH 1\nMAXVAL 255\nTUPLTYPE RGB\nENDHDR\n', new Uint8Array(4)) },
    { name: 'pam-no-endhdr.pam', expect: 'ERR_CORRUPT_INPUT', why: 'no ENDHDR', make: () => pnm('P7\nWIDTH 2\nHEIGHT 2\nDEPTH 1\nMAXVAL 255\n') },
  ]
  return cases
}

const ONE_BYTE = new Uint8Array(1)
const FOUR_BYTES = new Uint8Array(4)

/** Sets the first value of BigTIFF tag `tag` (out of line) to `value`. */
function patchBigTiffValue(file: Uint8Array, tag: number, value: bigint): Uint8Array {
  const out = file.slice()
  const view = new DataView(out.buffer)
  const ifd = Number(view.getBigUint64(8, true))
  const count = Number(view.getBigUint64(ifd, true))
  for (let i = 0; i < count; i++) {
    const at = ifd + 8 + i * 20
    if (view.getUint16(at, true) !== tag) continue
    const n = Number(view.getBigUint64(at + 4, true))
    if (n === 1) view.setBigUint64(at + 12, value, true)
    else view.setBigUint64(Number(view.getBigUint64(at + 12, true)), value, true)
    return out
  }
  throw new Error(`tag ${tag} not found`)
}

// ---------------------------------------------------------------------------------------------
// Odd file names: the content is a small valid PNG (read by libvips, which gets the path) or PPM.

function oddNames(): BadInput[] {
  const pngFile = (): Uint8Array => fixture('gray8.png')
  const names: Array<[string, string | Uint8Array]> = [
    ['name-nfc.png', 'caf\u00e9-nfc.png'],
    ['name-nfd.png', 'cafe\u0301-nfd.png'],
    ['name-long.png', `${'\u00e9'.repeat(124)}.png`], // 252 bytes of UTF-8 + 4: 252 < 255
    ['name-spaces.png', ' lead and trail .png'],
    ['name-newline.png', 'line\nbreak.png'],
    ['name-dash.png', '-rf.png'],
    ['name-emoji.png', '\u{1f5bc}\u{fe0f} picture.png'],
    ['name-quotes.png', `it's "quoted" \\ back.png`],
    ['name-latin1.png', Uint8Array.from([...Buffer.from('caf'), 0xe9, ...Buffer.from('-latin1.png')])],
    ['name-invalid-utf8.png', Uint8Array.from([0x66, 0xff, 0xfe, 0x80, ...Buffer.from('.png')])],
  ]
  return names.map(([name, fileName]) => ({
    name,
    expect: 'ok' as const,
    why: `file name ${JSON.stringify(typeof fileName === 'string' ? fileName : Buffer.from(fileName).toString('latin1'))}`,
    fileName,
    make: pngFile,
  }))
}

/** Every case of the corpus, in a stable order. */
export function corpus(): BadInput[] {
  const all = [...structural(), ...oddNames(), ...truncations()]
  const names = new Set<string>()
  for (const c of all) {
    if (names.has(c.name)) throw new Error(`duplicate case ${c.name}`)
    names.add(c.name)
  }
  return all
}

/** What writeCorpus wrote for one case. */
export interface WrittenCase {
  readonly name: string
  /** The file's path; base64 of its bytes when the name is not valid UTF-8 (`pathBytes`). */
  readonly path: string
  readonly pathBytes?: string
  readonly expect: Expect
  readonly why: string
  readonly finding?: number
  readonly options: CaseOptions
  readonly seconds: number
  readonly bytes: number
}

/** Writes the cases (all, or those `filter` keeps) into `dir`, one subfolder each. */
export async function writeCorpus(dir: string, filter: (c: BadInput) => boolean = () => true): Promise<WrittenCase[]> {
  const out: WrittenCase[] = []
  for (const c of corpus().filter(filter)) {
    const bytes = await c.make()
    const folder = join(dir, c.name)
    mkdirSync(folder, { recursive: true })
    let path = join(folder, c.name)
    let pathBytes: string | undefined
    if (typeof c.fileName === 'string') path = join(folder, c.fileName)
    if (c.fileName instanceof Uint8Array) {
      const raw = Buffer.concat([Buffer.from(`${folder}/`), c.fileName])
      writeFileSync(raw, bytes)
      pathBytes = raw.toString('base64')
      path = raw.toString('utf8')
    } else writeFileSync(path, bytes)
    out.push({
      name: c.name,
      path,
      ...(pathBytes === undefined ? {} : { pathBytes }),
      expect: c.expect,
      why: c.why,
      ...(c.finding === undefined ? {} : { finding: c.finding }),
      options: { ...CORPUS_OPTIONS, ...c.options },
      seconds: c.seconds ?? 10,
      bytes: bytes.length,
    })
  }
  writeFileSync(join(dir, 'index.json'), `${JSON.stringify(out, null, 1)}\n`)
  return out
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const dir = process.argv[2]
  if (dir === undefined) {
    console.error('usage: node --import tsx testdata/bad/make.ts OUTDIR')
    process.exit(2)
  }
  const written = await writeCorpus(dir)
  console.log(`${written.length} cases in ${dir} (index.json)`)
}
