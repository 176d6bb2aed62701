/**
 * Issue 10's hostile inputs, one rule per test, in process and small (the full-size bombs, with
 * their memory and disk measured, are in bad-inputs.test.ts): overlapping and absurd TIFF byte
 * ranges (finding 4), interlaced and other whole-image decodes over a memory budget (5),
 * temporary disk (6), per-chunk cost (8), stale temporary files (13), and inputs that would
 * need their samples converted (14).
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { openDecoder } from '../../src/import/decoders/index.js'
import type { DecodedImage, DecodeOptions } from '../../src/import/decoders/interface.js'
import { removeStaleTempFiles } from '../../src/import/decoders/sharp.js'
import { importImage } from '../../src/import/importer.js'
import { DEFAULT_MAX_PIXELS, DEFAULT_UPLOAD_MAX_PIXELS } from '../../src/import/limits.js'
import { MemoryBlockStore } from '../../src/store/memory.js'
import { png, TIFF_DEFLATE, tiff, tiffFromChunks, zeroZlib } from '../../testdata/bad/encoders.js'

const DATA = fileURLToPath(new URL('../../testdata/', import.meta.url))
const root = mkdtempSync(join(tmpdir(), 'tessera-hostile-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

let counter = 0
/** Writes `bytes` to a fresh folder; returns the file's path and a fresh temp dir beside it. */
function put(bytes: Uint8Array, name = 'input'): { path: string; tmpDir: string } {
  const dir = mkdtempSync(join(root, `case-${counter++}-`))
  const path = join(dir, name)
  writeFileSync(path, bytes)
  const tmpDir = join(dir, 'tmp')
  mkdirSync(tmpDir)
  return { path, tmpDir }
}

/** Opens and reads every band; resolves to the error on the way (undefined: it decoded). */
async function decode(
  path: string,
  options: Partial<DecodeOptions> & { tmpDir: string },
): Promise<{ code?: string; message?: string } | undefined> {
  let image: DecodedImage | undefined
  try {
    image = await openDecoder(path, { maxPixels: DEFAULT_MAX_PIXELS, ...options })
    for await (const _ of image.bands(64)) {
      // read
    }
    return undefined
  } catch (error) {
    return error as { code?: string }
  } finally {
    await image?.close()
  }
}

const tiled = (w: number, h: number, t: number) => ({ width: w, height: h, tile: [t, t] as const, compression: TIFF_DEFLATE })

describe('finding 4: TIFF byte ranges are checked before anything is read', () => {
  it.each([
    ['every tile claims the same range', tiff({ ...tiled(128, 128, 16), ranges: (r) => r.map(() => r[0]!) })],
    [
      'each tile range runs into the next',
      tiff({ ...tiled(64, 64, 16), ranges: (r) => r.map(([o, n], i) => [o, i + 1 < r.length ? n + 8 : n]) }),
    ],
    [
      'a 16x16 deflate tile claims 512 KB',
      tiff({ ...tiled(32, 16, 16), pad: 600_000, ranges: (r) => r.map(([o, n], i) => [o, i === 1 ? 512_000 : n]) }),
    ],
    [
      'an uncompressed 16x16 tile claims 40 KB',
      tiff({ ...tiled(32, 16, 16), compression: 1, pad: 50_000, ranges: (r) => r.map(([o, n], i) => [o, i === 0 ? 40_000 : n]) }),
    ],
    [
      'strips share a range',
      tiff({ width: 40, height: 40, rowsPerStrip: 8, compression: TIFF_DEFLATE, ranges: (r) => r.map((x, i) => (i === 4 ? r[0]! : x)) }),
    ],
  ])('%s: ERR_CORRUPT_INPUT when opened', async (_, bytes) => {
    const { path, tmpDir } = put(bytes)
    await expect(openDecoder(path, { maxPixels: DEFAULT_MAX_PIXELS, tmpDir })).rejects.toMatchObject({ code: 'ERR_CORRUPT_INPUT' })
  })

  it('1024 tiles claiming all 2 MB of tile data are refused without reading them', async () => {
    const data = new Uint8Array(2_100_000)
    data.set(zeroZlib(256))
    const chunks = [data, ...Array<Uint8Array>(1023).fill(new Uint8Array(0))]
    const bytes = tiffFromChunks({ ...tiled(16384, 16, 16), ranges: (r, a) => r.map(() => [a.start, a.end - a.start]) }, chunks, 16, 16)
    const { path, tmpDir } = put(bytes)
    const before = process.memoryUsage().rss
    expect(await decode(path, { tmpDir })).toMatchObject({ code: 'ERR_CORRUPT_INPUT' })
    expect(process.memoryUsage().rss - before).toBeLessThan(200 * 2 ** 20)
  })

  it('a valid tiled TIFF with the same ranges in a different order still decodes', async () => {
    // Ranges need not be in tile order, only disjoint: tile i gets the bytes of tile n-1-i.
    const bytes = tiff({ ...tiled(64, 64, 16), ranges: (r) => r.map((_, i) => r[r.length - 1 - i]!) })
    const { path, tmpDir } = put(bytes)
    expect(await decode(path, { tmpDir })).toBeUndefined()
  })

  it('a row of tiles larger than maxDecodeBytes is ERR_LIMIT', async () => {
    const { path, tmpDir } = put(tiff(tiled(256, 64, 64)))
    expect(await decode(path, { tmpDir, maxDecodeBytes: 256 * 64 - 1 })).toMatchObject({ code: 'ERR_LIMIT' })
    expect(await decode(path, { tmpDir, maxDecodeBytes: 256 * 64 })).toBeUndefined()
  })
})

describe('finding 5: loaders that decode the whole image are held to maxDecodeBytes', () => {
  it('an interlaced PNG over the budget is ERR_LIMIT, telling to de-interlace; under it, it imports', async () => {
    const big = put(png({ width: 1200, height: 1000, colorType: 0, interlace: true }))
    const error = await decode(big.path, { tmpDir: big.tmpDir, maxDecodeBytes: 1_000_000 })
    expect(error).toMatchObject({ code: 'ERR_LIMIT' })
    expect(error?.message).toMatch(/interlace/i)
    expect(readdirSync(big.tmpDir)).toEqual([])
    expect(await decode(big.path, { tmpDir: big.tmpDir, maxDecodeBytes: 1_200_000 })).toBeUndefined()
  })

  it('the default budget refuses a 400 MB interlaced PNG from its header', async () => {
    const { path, tmpDir } = put(png({ width: 20000, height: 20000, colorType: 0, interlace: true, idat: zeroZlib(10) }))
    const started = performance.now()
    expect(await decode(path, { tmpDir, maxTempBytes: 2 ** 40 })).toMatchObject({ code: 'ERR_LIMIT' })
    expect(performance.now() - started).toBeLessThan(2000)
  })
})

describe('finding 6: temporary disk is budgeted before decoding', () => {
  it('a PNG whose decode exceeds maxTempBytes is ERR_LIMIT and writes nothing', async () => {
    const { path, tmpDir } = put(png({ width: 1000, height: 1000, colorType: 2, idat: zeroZlib(1000 * 3001) }))
    expect(await decode(path, { tmpDir, maxTempBytes: 2_999_999 })).toMatchObject({ code: 'ERR_LIMIT' })
    expect(readdirSync(tmpDir)).toEqual([])
    expect(await decode(path, { tmpDir, maxTempBytes: 3_000_064 })).toBeUndefined()
  })

  it('a decode larger than the free space of the temp dir is ERR_LIMIT', async () => {
    // 1e6 x 1e6 RGBA16 = 8 TB: more than any test machine's free space.
    const { path, tmpDir } = put(png({ width: 1_000_000, height: 1_000_000, colorType: 6, bitDepth: 16, idat: zeroZlib(10) }))
    const error = await decode(path, { tmpDir, maxPixels: Number.POSITIVE_INFINITY, maxDecodeBytes: Number.POSITIVE_INFINITY })
    expect(error).toMatchObject({ code: 'ERR_LIMIT' })
    expect(error?.message).toMatch(/free/)
  })

  it("a wide image's tile rows are refused from the header, before libvips writes anything", async () => {
    const { path, tmpDir } = put(png({ width: 4_000_000, height: 40, colorType: 0, idat: zeroZlib(40 * 4_000_001) }))
    const store = new MemoryBlockStore()
    const started = performance.now()
    await expect(importImage(store, path, { tmpDir, workers: 0 })).rejects.toMatchObject({ code: 'ERR_LIMIT' })
    expect(performance.now() - started).toBeLessThan(2000)
    expect(readdirSync(tmpDir)).toEqual([])
    // A smaller tile size needs smaller rows: 4e6 x 16 = 64 MB.
    await expect(importImage(store, path, { tmpDir, workers: 0, tileSize: 16, maxDecodeBytes: 64_000_000 })).rejects.toMatchObject({
      code: 'ERR_LIMIT', // 250,000 columns: too many for one index block
    })
    expect(await store.storedBytes()).toBe(0)
  })

  it('exports a lower pixel limit for uploads', () => {
    expect(DEFAULT_UPLOAD_MAX_PIXELS).toBe(2 ** 28)
  })

  it('the importer validates and passes maxTempBytes and maxDecodeBytes', async () => {
    const { path, tmpDir } = put(png({ width: 300, height: 300, colorType: 0 }))
    const store = new MemoryBlockStore()
    await expect(importImage(store, path, { tmpDir, workers: 0, maxTempBytes: 0 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
    await expect(importImage(store, path, { tmpDir, workers: 0, maxTempBytes: 1000 })).rejects.toMatchObject({ code: 'ERR_LIMIT' })
    // Not interlaced: it streams, and needs only its tile row of 300 x 256 bytes.
    await expect(importImage(store, path, { tmpDir, workers: 0, maxDecodeBytes: 300 * 256 - 1 })).rejects.toMatchObject({
      code: 'ERR_LIMIT',
    })
    await expect(importImage(store, path, { tmpDir, workers: 0, maxDecodeBytes: 300 * 256 })).resolves.toBeDefined()
    expect(await store.storedBytes()).toBeGreaterThan(0)
  })
})

describe('finding 8: strips and tiles are charged per chunk', () => {
  it('2 million 1x1 tiles are ERR_LIMIT within a second', async () => {
    const n = 1414
    const one = new Uint8Array(1)
    const bytes = tiffFromChunks(
      { width: n, height: n, tile: [1, 1] },
      Array.from({ length: n * n }, () => one),
      1,
      1,
    )
    const { path, tmpDir } = put(bytes)
    const started = performance.now()
    expect(await decode(path, { tmpDir })).toMatchObject({ code: 'ERR_LIMIT' })
    expect(performance.now() - started).toBeLessThan(1000)
  }, 20_000)

  it('many chunks of a reasonable size still decode', async () => {
    // 20000 strips of one 256-pixel row: at the per-chunk floor.
    const bytes = tiff({ width: 256, height: 20000, rowsPerStrip: 1 })
    const { path, tmpDir } = put(bytes)
    expect(await decode(path, { tmpDir })).toBeUndefined()
  })
})

describe('finding 13: stale libvips temporary files are removed', () => {
  it('removes tessera-decode files older than an hour whose process is gone, and nothing else', async () => {
    const { path, tmpDir } = put(new Uint8Array(0))
    rmSync(path)
    const dead = spawnSync(process.execPath, ['-e', 'process.pid']).pid!
    const old = (Date.now() - 2 * 3600_000) / 1000
    const files = {
      staleDead: `tessera-decode-p${dead}-0f0e.v`,
      staleLegacy: 'tessera-decode-1b4e28ba-2fa1-11d2-883f-0016d3cca427.v',
      oldAlive: `tessera-decode-p${process.pid}-aaaa.v`,
      freshDead: `tessera-decode-p${dead}-bbbb.v`,
      other: 'tessera-spool-1234.tmp',
    }
    for (const name of Object.values(files)) writeFileSync(join(tmpDir, name), 'x')
    for (const name of [files.staleDead, files.staleLegacy, files.oldAlive, files.other]) utimesSync(join(tmpDir, name), old, old)
    expect(await removeStaleTempFiles(tmpDir)).toBe(2)
    expect(readdirSync(tmpDir).sort()).toEqual([files.freshDead, files.oldAlive, files.other].sort())
  })

  it('an import through libvips cleans its temp dir first, and names its own file with its pid', async () => {
    const { path, tmpDir } = put(png({ width: 40, height: 30, colorType: 2 }))
    const stale = join(tmpDir, 'tessera-decode-p999999999-dead.v')
    writeFileSync(stale, 'x')
    const old = (Date.now() - 2 * 3600_000) / 1000
    utimesSync(stale, old, old)
    const image = await openDecoder(path, { maxPixels: DEFAULT_MAX_PIXELS, tmpDir })
    await image.close()
    expect(readdirSync(tmpDir)).toEqual([])
  })
})

describe('finding 14: samples are stored as encoded or refused', () => {
  it.each([
    ['1-bit gray PNG', 'ERR_UNSUPPORTED_FORMAT', png({ width: 33, height: 20, colorType: 0, bitDepth: 1 })],
    ['2-bit gray PNG', 'ERR_UNSUPPORTED_FORMAT', png({ width: 33, height: 20, colorType: 0, bitDepth: 2 })],
    ['1-bit gray TIFF', 'ERR_UNSUPPORTED_FORMAT', tiff({ width: 40, height: 30, bits: 1 })],
    ['Lab TIFF', 'ERR_UNSUPPORTED_FORMAT', tiff({ width: 20, height: 20, samples: 3, photometric: 8 })],
    [
      'ITULab TIFF, deflate',
      'ERR_UNSUPPORTED_FORMAT',
      tiff({ width: 20, height: 20, samples: 3, photometric: 10, compression: TIFF_DEFLATE }),
    ],
    ['12-bit TIFF', 'ERR_UNSUPPORTED_FORMAT', tiff({ width: 20, height: 20, bits: 12 })],
    ['palette TIFF without ColorMap', 'ERR_CORRUPT_INPUT', tiff({ width: 40, height: 30, photometric: 3 })],
  ])('%s: %s', async (_, code, bytes) => {
    const { path, tmpDir } = put(bytes)
    expect(await decode(path, { tmpDir })).toMatchObject({ code })
  })

  it.each([
    ['1-bit palette PNG', png({ width: 33, height: 20, colorType: 3, bitDepth: 1 })],
    ['4-bit palette TIFF with its ColorMap', tiff({ width: 40, height: 30, bits: 4, photometric: 3, colorMap: true })],
  ])('%s still imports (palette indices are not samples)', async (_, bytes) => {
    const { path, tmpDir } = put(bytes)
    expect(await decode(path, { tmpDir })).toBeUndefined()
  })

  it('the committed 1-bit fixture is refused', async () => {
    const { tmpDir } = put(new Uint8Array(0))
    expect(await decode(join(DATA, 'gray1.png'), { tmpDir })).toMatchObject({ code: 'ERR_UNSUPPORTED_FORMAT' })
  })
})
