/** The per-image codec choice of `auto` (dataset defaults): screen-like content vs photographic content. */
import { describe, expect, it } from 'vitest'
import { chooseCodec, sampleRows } from '../../src/import/codec-choice.js'
import type { TileRowBand } from '../../src/import/compress.js'
import { AUTO_CODEC } from '../../src/import/options.js'
import { random } from '../helpers/random.js'

const width = 300
const rows = 64
const tileSize = 64

/** A window-like band: flat panels, a few lines of blocky "text" (runs of pixels copied exactly). */
function screenBand(): TileRowBand {
  const band = new Uint8Array(width * rows * 3).fill(238)
  for (let y = 8; y < rows; y += 12)
    for (let x = 4; x < width - 4; x++) {
      const on = ((x * 7) ^ (y * 3)) % 5 === 0
      if (on) band.set([30, 30, 30], (y * width + x) * 3)
    }
  return { band, width, rows, tileSize, channels: 3, bitsPerSample: 8 }
}

/** A photograph-like band: smooth gradients with sensor noise (predictor 2 pays, nothing compresses 8x). */
function photoBand(): TileRowBand {
  const next = random(3)
  const band = new Uint8Array(width * rows * 3)
  for (let y = 0; y < rows; y++)
    for (let x = 0; x < width; x++)
      for (let c = 0; c < 3; c++)
        band[(y * width + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(x * 0.6 + y * 0.9 + c * 20 + (next() - 0.5) * 24)))
  return { band, width, rows, tileSize, channels: 3, bitsPerSample: 8 }
}

describe('chooseCodec', () => {
  it('stores screen-like content without the predictor, at the high level', () => {
    expect(chooseCodec({ name: 'zstd', level: 'auto', predictor: 'auto' }, [screenBand()])).toEqual({
      name: 'zstd',
      level: AUTO_CODEC.compressibleLevel,
      predictor: 1,
    })
  })

  it('stores photograph-like content with the predictor, at the usual level', () => {
    expect(chooseCodec({ name: 'zstd', level: 'auto', predictor: 'auto' }, [photoBand()])).toEqual({
      name: 'zstd',
      level: AUTO_CODEC.level,
      predictor: 2,
    })
  })

  it('keeps what is fixed and chooses only the rest', () => {
    expect(chooseCodec({ name: 'zstd', level: 5, predictor: 2 }, [screenBand()])).toEqual({ name: 'zstd', level: 5, predictor: 2 })
    expect(chooseCodec({ name: 'zstd', level: 9, predictor: 'auto' }, [screenBand()])).toEqual({ name: 'zstd', level: 9, predictor: 1 })
    expect(chooseCodec({ name: 'zstd', level: 'auto', predictor: 2 }, [photoBand()])).toEqual({ name: 'zstd', level: 3, predictor: 2 })
  })

  it('works on a row shorter than a tile and narrower than the sample', () => {
    const band = new Uint8Array(5 * 3 * 3).fill(7)
    expect(
      chooseCodec({ name: 'zstd', level: 'auto', predictor: 'auto' }, [
        { band, width: 5, rows: 3, tileSize, channels: 3, bitsPerSample: 8 },
      ]).level,
    ).toBe(AUTO_CODEC.compressibleLevel)
  })

  it('looks across the whole image when the decoder holds it: a photographic top row over screen content', () => {
    // Tile rows: a photograph-like one on top, then four screen-like ones.
    const photo = photoBand()
    const screen = screenBand()
    const pixels = new Uint8Array(photo.band.length + 4 * screen.band.length)
    pixels.set(photo.band)
    for (let i = 0; i < 4; i++) pixels.set(screen.band, photo.band.length + i * screen.band.length)
    const height = 5 * rows
    const first = { ...photo, band: pixels.subarray(0, photo.band.length) }
    const auto = { name: 'zstd', level: 'auto', predictor: 'auto' } as const
    expect(sampleRows(first, undefined, height)).toEqual([first])
    const sampled = sampleRows(first, pixels, height)
    expect(sampled.map((row) => row.band.byteOffset / photo.band.length)).toEqual([0, 2, 4])
    expect(chooseCodec(auto, [first]).predictor).toBe(2)
    expect(chooseCodec(auto, sampled).predictor).toBe(1)
    // One tile row: sampled once.
    expect(sampleRows(photo, photo.band, rows)).toHaveLength(1)
  })
})
