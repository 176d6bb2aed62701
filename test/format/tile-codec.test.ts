import { execFileSync } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { maxPayloadBytes, TileCoder, tileBytes } from '../../src/format/tile-codec.js'
import { makeImage } from '../helpers/oracle.js'

describe('tile codec', () => {
  for (const channels of [1, 2, 3, 4]) {
    for (const bits of [8, 16] as const) {
      for (const predictor of [1, 2] as const) {
        it(`round-trips ${channels}x${bits}-bit tiles with predictor ${predictor}`, () => {
          const coder = new TileCoder({ tileSize: 32, channels, bitsPerSample: bits }, { name: 'zstd', level: 3, predictor })
          const tile = makeImage(32, 32, channels, bits, predictor).data
          const copy = tile.slice()
          const payload = coder.encode(tile)
          expect(tile).toEqual(copy)
          expect(coder.decode(payload)).toEqual(tile)
        })
      }
    }
  }

  it('writes frames like a stream: no content size in the header, as libtiff does', () => {
    const coder = new TileCoder({ tileSize: 16, channels: 1, bitsPerSample: 8 }, { name: 'zstd', level: 3, predictor: 2 })
    const payload = coder.encode(new Uint8Array(256).fill(9))
    expect([...payload.subarray(0, 4)]).toEqual([0x28, 0xb5, 0x2f, 0xfd])
    expect(payload[4]! >> 6).toBe(0) // Frame_Content_Size_flag 0 and not single-segment: size unknown
    expect((payload[4]! >> 5) & 1).toBe(0)
  })

  it('rejects payloads that are not exactly one frame of the tile size', () => {
    const shape = { tileSize: 16, channels: 1, bitsPerSample: 8 as const }
    const coder = new TileCoder(shape, { name: 'zstd', level: 3, predictor: 1 })
    const payload = coder.encode(new Uint8Array(256).fill(1))
    expect(() => coder.decode(new Uint8Array([...payload, ...payload]))).toThrow(expect.objectContaining({ code: 'ERR_INTEGRITY' }))
    expect(() => coder.decode(payload.subarray(0, payload.length - 2))).toThrow(expect.objectContaining({ code: 'ERR_INTEGRITY' }))
    const other = new TileCoder({ ...shape, tileSize: 32 }, { name: 'zstd', level: 3, predictor: 1 })
    expect(() => coder.decode(other.encode(new Uint8Array(1024)))).toThrow(expect.objectContaining({ code: 'ERR_INTEGRITY' }))
  })

  it('bounds payloads by zstd compressBound', () => {
    expect(maxPayloadBytes({ tileSize: 256, channels: 4, bitsPerSample: 16 })).toBeGreaterThan(
      tileBytes({ tileSize: 256, channels: 4, bitsPerSample: 16 }),
    )
    expect(maxPayloadBytes({ tileSize: 512, channels: 4, bitsPerSample: 8 })).toBeGreaterThan(1 << 20)
  })

  it('produces payloads byte-identical to libtiff tiles (Compression 50000, Predictor 2)', async () => {
    // libtiff from Debian (through vips tiffsave) with the same level. Its libzstd is another
    // release than the one zstd-napi bundles; level 1's output is the same in both.
    const dir = await mkdtemp(join(tmpdir(), 'tessera-libtiff-'))
    try {
      const image = makeImage(512, 256, 3, 8, 5)
      await writeFile(join(dir, 'in.ppm'), Buffer.concat([Buffer.from('P6\n512 256\n255\n'), image.data]))
      execFileSync('vips', [
        'tiffsave',
        join(dir, 'in.ppm'),
        join(dir, 'out.tif'),
        '--tile',
        '--tile-width',
        '256',
        '--tile-height',
        '256',
        '--compression',
        'zstd',
        '--predictor',
        'horizontal',
        '--level',
        '1',
      ])
      const tiff = await readFile(join(dir, 'out.tif'))
      const ifd = tiff.readUInt32LE(4)
      const entries = new Map<number, number>()
      for (let i = 0; i < tiff.readUInt16LE(ifd); i++)
        entries.set(tiff.readUInt16LE(ifd + 2 + i * 12), tiff.readUInt32LE(ifd + 10 + i * 12))
      const offsets = entries.get(324)!
      const counts = entries.get(325)!
      const coder = new TileCoder({ tileSize: 256, channels: 3, bitsPerSample: 8 }, { name: 'zstd', level: 1, predictor: 2 })
      for (let column = 0; column < 2; column++) {
        const tile = new Uint8Array(256 * 256 * 3)
        for (let y = 0; y < 256; y++)
          tile.set(image.data.subarray((y * 512 + column * 256) * 3, (y * 512 + column * 256 + 256) * 3), y * 768)
        const theirs = tiff.subarray(
          tiff.readUInt32LE(offsets + 4 * column),
          tiff.readUInt32LE(offsets + 4 * column) + tiff.readUInt32LE(counts + 4 * column),
        )
        expect(Buffer.compare(Buffer.from(coder.encode(tile)), theirs)).toBe(0)
      }
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
