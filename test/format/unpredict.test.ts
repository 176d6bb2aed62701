import { describe, expect, it } from 'vitest'
import { encodePredictor } from '../../src/format/predictor.js'
import { type UnpredictOptions, unpredictCopy, unpredictScratch } from '../../src/format/unpredict.js'

type Layout = Pick<UnpredictOptions, 'tileSize' | 'channels' | 'bitsPerSample' | 'predictor'>
type Window = Omit<UnpredictOptions, keyof Layout>

/** The oracle: decode whole rows sample by sample (TIFF 6.0 section 14), then copy byte by byte. */
function naive(tile: Uint8Array, out: Uint8Array, o: UnpredictOptions): void {
  const bytes = o.bitsPerSample / 8
  const pixel = o.channels * bytes
  const rowBytes = o.tileSize * pixel
  const decoded = tile.slice()
  const read = (i: number) => (bytes === 1 ? decoded[i]! : decoded[i]! + decoded[i + 1]! * 256)
  const write = (i: number, v: number) => {
    decoded[i] = v % 256
    if (bytes === 2) decoded[i + 1] = Math.floor(v / 256)
  }
  if (o.predictor === 2) {
    for (let y = o.firstRow; y < o.firstRow + o.rowCount; y++) {
      for (let x = 1; x < o.tileSize; x++) {
        for (let c = 0; c < o.channels; c++) {
          const at = y * rowBytes + x * pixel + c * bytes
          write(at, (read(at) + read(at - pixel)) % 2 ** o.bitsPerSample)
        }
      }
    }
  }
  for (let r = 0; r < o.rowCount; r++) {
    for (let k = 0; k < o.width * pixel; k++) {
      out[o.outOffset + r * o.outStride + k] = decoded[(o.firstRow + r) * rowBytes + o.tileX * pixel + k]!
    }
  }
}

/** xorshift32, so failures reproduce. */
function random(seed: number): () => number {
  let s = seed >>> 0 || 1
  return () => {
    s ^= s << 13
    s ^= s >>> 17
    s ^= s << 5
    return (s >>> 0) / 4294967296
  }
}

/** Random bytes (every sum wraps around), or all 0xff, or photo-like (small differences after the predictor). */
function makeTile(layout: Layout, kind: 'random' | 'ones' | 'smooth', rand: () => number): Uint8Array {
  const pixel = layout.channels * (layout.bitsPerSample / 8)
  const tile = new Uint8Array(layout.tileSize * layout.tileSize * pixel)
  if (kind === 'ones') tile.fill(255)
  else if (kind === 'random') for (let i = 0; i < tile.length; i++) tile[i] = Math.floor(rand() * 256)
  else {
    for (let i = 0; i < tile.length; i++) tile[i] = Math.floor(128 + 100 * Math.sin(i / 97) + rand() * 8)
    encodePredictor(tile, layout.tileSize, layout.channels, layout.bitsPerSample)
  }
  return tile
}

/**
 * Runs unpredictCopy on ordinary buffers (the JS loops) and on unpredictScratch's (the wasm
 * kernel), and checks every byte of `out`, around the window too, against the oracle.
 */
function check(tile: Uint8Array, layout: Layout, window: Window, outBytes: number): void {
  const options = { ...layout, ...window }
  const expected = new Uint8Array(outBytes).fill(0xa5)
  naive(tile, expected, options)
  for (const path of ['js', 'wasm']) {
    let actualTile: Uint8Array
    let out: Uint8Array
    if (path === 'wasm') {
      const scratch = unpredictScratch(tile.length, outBytes)!
      scratch.tile.set(tile)
      actualTile = scratch.tile
      out = scratch.out
    } else {
      actualTile = tile.slice()
      out = new Uint8Array(outBytes)
    }
    out.fill(0xa5)
    unpredictCopy(actualTile, out, options)
    const label = JSON.stringify({ path, ...options })
    if (Buffer.compare(out, expected) !== 0) expect.fail(`mismatch for ${label}`)
    // The wasm kernel (1 to 4 channels) only reads the tile; the JS loops may undo it in place.
    if (path === 'wasm' && layout.channels <= 4 && Buffer.compare(actualTile, tile) !== 0) expect.fail(`tile modified for ${label}`)
  }
}

const DEPTHS = [8, 16] as const
const PREDICTORS = [1, 2] as const

describe('unpredictCopy', () => {
  it('has the WebAssembly kernel on Node', () => {
    expect(unpredictScratch(16, 16)).toBeDefined()
  })

  it('matches the oracle for every column window of a 16-pixel tile', () => {
    const rand = random(1)
    for (const channels of [1, 2, 3, 4, 5]) {
      for (const bitsPerSample of DEPTHS) {
        for (const predictor of PREDICTORS) {
          const layout: Layout = { tileSize: 16, channels, bitsPerSample, predictor }
          const pixel = channels * (bitsPerSample / 8)
          const tile = makeTile(layout, 'random', rand)
          for (const [firstRow, rowCount] of [
            [0, 16],
            [5, 2],
            [15, 1],
          ] as const) {
            for (let tileX = 0; tileX < 16; tileX++) {
              for (let width = 1; tileX + width <= 16; width++) {
                const pad = (tileX + width) % 3
                const outStride = width * pixel + pad
                const outOffset = pad * 2
                check(tile, layout, { firstRow, rowCount, tileX, width, outOffset, outStride }, outOffset + rowCount * outStride + pad)
              }
            }
          }
        }
      }
    }
  })

  it('matches the oracle on random windows of 32- and 256-pixel tiles, odd offsets included', () => {
    const rand = random(2)
    const int = (n: number) => Math.floor(rand() * n)
    for (const tileSize of [32, 256]) {
      for (const channels of [1, 2, 3, 4, 5]) {
        for (const bitsPerSample of DEPTHS) {
          for (const predictor of PREDICTORS) {
            const layout: Layout = { tileSize, channels, bitsPerSample, predictor }
            const pixel = channels * (bitsPerSample / 8)
            for (const kind of ['random', 'ones', 'smooth'] as const) {
              const tile = makeTile(layout, kind, rand)
              const windows: Window[] = [
                // Whole tile; 1x1 at each corner; the last column; the last row.
                { firstRow: 0, rowCount: tileSize, tileX: 0, width: tileSize, outOffset: 0, outStride: tileSize * pixel },
                { firstRow: 0, rowCount: 1, tileX: 0, width: 1, outOffset: 0, outStride: pixel },
                { firstRow: tileSize - 1, rowCount: 1, tileX: tileSize - 1, width: 1, outOffset: 1, outStride: pixel },
                { firstRow: 0, rowCount: tileSize, tileX: tileSize - 1, width: 1, outOffset: 3, outStride: pixel + 5 },
                { firstRow: tileSize - 1, rowCount: 1, tileX: 0, width: tileSize, outOffset: 0, outStride: tileSize * pixel },
              ]
              for (let i = 0; i < (tileSize === 256 ? 5 : 12); i++) {
                const firstRow = int(tileSize)
                const tileX = int(tileSize)
                const width = 1 + int(tileSize - tileX)
                const outStride = width * pixel + int(3) * int(40)
                windows.push({ firstRow, rowCount: 1 + int(tileSize - firstRow), tileX, width, outOffset: int(3) * int(20), outStride })
              }
              for (const w of windows) {
                const outBytes = w.outOffset + (w.rowCount - 1) * w.outStride + w.width * pixel + int(2) * 7
                check(tile, layout, w, outBytes)
              }
            }
          }
        }
      }
    }
  })

  it('handles 16-bit samples in buffers that are not 2-byte aligned', () => {
    const rand = random(3)
    for (const channels of [1, 3]) {
      const layout: Layout = { tileSize: 32, channels, bitsPerSample: 16, predictor: 2 }
      const tile = makeTile(layout, 'random', rand)
      const window = { firstRow: 3, rowCount: 20, tileX: 7, width: 21, outOffset: 0, outStride: 21 * channels * 2 }
      const outBytes = 20 * window.outStride
      const expected = new Uint8Array(outBytes)
      naive(tile, expected, { ...layout, ...window })
      const odd = new Uint8Array(tile.length + 1).subarray(1)
      odd.set(tile)
      const out = new Uint8Array(outBytes + 1).subarray(1)
      unpredictCopy(odd, out, { ...layout, ...window })
      expect(Buffer.compare(out, expected)).toBe(0)
    }
  })

  it('rejects windows outside the tile or the output', () => {
    const layout: Layout = { tileSize: 16, channels: 3, bitsPerSample: 8, predictor: 2 }
    const tile = new Uint8Array(16 * 16 * 3)
    const ok: Window = { firstRow: 0, rowCount: 16, tileX: 0, width: 16, outOffset: 0, outStride: 48 }
    const out = new Uint8Array(16 * 48)
    expect(() => unpredictCopy(tile, out, { ...layout, ...ok })).not.toThrow()
    for (const bad of [
      { firstRow: 1 },
      { tileX: 1 },
      { firstRow: -1, rowCount: 1 },
      { outOffset: 1 },
      { outStride: 47 },
      { outOffset: -1, rowCount: 1 },
    ]) {
      expect(() => unpredictCopy(tile, out, { ...layout, ...ok, ...bad })).toThrow(RangeError)
    }
    expect(() => unpredictCopy(tile.subarray(1), out, { ...layout, ...ok })).toThrow(RangeError)
  })
})

describe('unpredictScratch', () => {
  it('hands out views of the requested sizes, reused while the sizes stay the same', () => {
    const a = unpredictScratch(1000, 2000)!
    expect([a.tile.length, a.out.length]).toEqual([1000, 2000])
    expect(unpredictScratch(1000, 2000)).toBe(a)
    const big = unpredictScratch(256 * 256 * 8, 4 * 2 ** 20)!
    expect(big.tile.byteOffset + big.tile.length).toBeLessThanOrEqual(big.out.byteOffset)
    expect(big.out.byteOffset + big.out.length).toBeLessThanOrEqual(big.out.buffer.byteLength)
  })

  it('declines sizes above its limit', () => {
    expect(unpredictScratch(1 << 20, 64 * 2 ** 20)).toBeUndefined()
  })
})
