/** The per-image codec choice of `auto` (dataset defaults): screen-like content vs photographic content. */
import { describe, expect, it } from 'vitest'
import { chooseCodec, type FirstTileRow } from '../../src/import/codec-choice.js'
import { AUTO_CODEC } from '../../src/import/options.js'
import { random } from '../helpers/random.js'

const width = 300
const rows = 64
const tileSize = 64

/** A window-like band: flat panels, a few lines of blocky "text" (runs of pixels copied exactly). */
function screenBand(): FirstTileRow {
  const band = new Uint8Array(width * rows * 3).fill(238)
  for (let y = 8; y < rows; y += 12)
    for (let x = 4; x < width - 4; x++) {
      const on = ((x * 7) ^ (y * 3)) % 5 === 0
      if (on) band.set([30, 30, 30], (y * width + x) * 3)
    }
  return { band, width, rows, tileSize, channels: 3, bitsPerSample: 8 }
}

/** A photograph-like band: smooth gradients with sensor noise (predictor 2 pays, nothing compresses 8x). */
function photoBand(): FirstTileRow {
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
    expect(chooseCodec({ name: 'zstd', level: 'auto', predictor: 'auto' }, screenBand())).toEqual({
      name: 'zstd',
      level: AUTO_CODEC.compressibleLevel,
      predictor: 1,
    })
  })

  it('stores photograph-like content with the predictor, at the usual level', () => {
    expect(chooseCodec({ name: 'zstd', level: 'auto', predictor: 'auto' }, photoBand())).toEqual({
      name: 'zstd',
      level: AUTO_CODEC.level,
      predictor: 2,
    })
  })

  it('keeps what is fixed and chooses only the rest', () => {
    expect(chooseCodec({ name: 'zstd', level: 5, predictor: 2 }, screenBand())).toEqual({ name: 'zstd', level: 5, predictor: 2 })
    expect(chooseCodec({ name: 'zstd', level: 9, predictor: 'auto' }, screenBand())).toEqual({ name: 'zstd', level: 9, predictor: 1 })
    expect(chooseCodec({ name: 'zstd', level: 'auto', predictor: 2 }, photoBand())).toEqual({ name: 'zstd', level: 3, predictor: 2 })
  })

  it('works on a row shorter than a tile and narrower than the sample', () => {
    const band = new Uint8Array(5 * 3 * 3).fill(7)
    expect(
      chooseCodec({ name: 'zstd', level: 'auto', predictor: 'auto' }, { band, width: 5, rows: 3, tileSize, channels: 3, bitsPerSample: 8 })
        .level,
    ).toBe(AUTO_CODEC.compressibleLevel)
  })
})
