import { describe, expect, it } from 'vitest'
import { decodePredictor, encodePredictor } from '../../src/format/predictor.js'

describe('TIFF predictor 2', () => {
  it('differences 8-bit samples per channel along each row', () => {
    // Two rows of three RGB pixels.
    const data = Uint8Array.of(10, 20, 30, 11, 22, 33, 5, 0, 255, 1, 2, 3, 1, 2, 3, 0, 0, 0)
    encodePredictor(data, 3, 3, 8)
    expect([...data]).toEqual([10, 20, 30, 1, 2, 3, 250, 234, 222, 1, 2, 3, 0, 0, 0, 255, 254, 253])
    decodePredictor(data, 3, 3, 8)
    expect([...data]).toEqual([10, 20, 30, 11, 22, 33, 5, 0, 255, 1, 2, 3, 1, 2, 3, 0, 0, 0])
  })

  it('differences 16-bit samples as little-endian values with wrap-around', () => {
    const samples = Uint16Array.of(1000, 65535, 0, 2)
    const data = new Uint8Array(samples.buffer)
    encodePredictor(data, 4, 1, 16)
    expect([...new Uint16Array(data.buffer)]).toEqual([1000, 64535, 1, 2])
    decodePredictor(data, 4, 1, 16)
    expect([...new Uint16Array(data.buffer)]).toEqual([1000, 65535, 0, 2])
  })

  it('round-trips random tiles of every channel count and depth', () => {
    for (const channels of [1, 2, 3, 4]) {
      for (const bits of [8, 16] as const) {
        const data = new Uint8Array(16 * 16 * channels * (bits / 8))
        for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24
        const copy = data.slice()
        encodePredictor(data, 16, channels, bits)
        decodePredictor(data, 16, channels, bits)
        expect(data).toEqual(copy)
      }
    }
  })
})
