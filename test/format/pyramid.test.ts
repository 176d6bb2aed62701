import { describe, expect, it } from 'vitest'
import { pyramidSizes } from '../../src/format/grid.js'
import { halveBand } from '../../src/format/pyramid.js'
import { naiveHalve } from '../helpers/oracle.js'

describe('pyramid', () => {
  it('lists levels down to the first that fits one tile', () => {
    expect(pyramidSizes(1000, 300, 256)).toEqual([
      [1000, 300],
      [500, 150],
      [250, 75],
    ])
    expect(pyramidSizes(256, 256, 256)).toEqual([[256, 256]])
    expect(pyramidSizes(257, 1, 256)).toEqual([
      [257, 1],
      [129, 1],
    ])
  })

  for (const [width, height, channels, bits] of [
    [7, 5, 3, 8],
    [8, 6, 1, 8],
    [1, 1, 4, 8],
    [9, 3, 2, 16],
    [2, 7, 4, 16],
  ] as const) {
    it(`halves a ${width}x${height} ${channels}-channel ${bits}-bit band like the definition`, () => {
      const count = width * height * channels
      const values = Array.from({ length: count }, (_, i) => ((i * 2654435761) >>> 8) % (bits === 8 ? 256 : 65536))
      const data = bits === 8 ? Uint8Array.from(values) : new Uint8Array(Uint16Array.from(values).buffer)
      const out = halveBand({ y: 0, height, data }, width, channels, bits)
      expect(out.height).toBe(Math.ceil(height / 2))
      expect(out.data).toEqual(naiveHalve({ width, height, channels, bits, data }).data)
    })
  }

  it('rounds half up', () => {
    const out = halveBand({ y: 0, height: 2, data: Uint8Array.of(0, 1, 1, 1) }, 2, 1, 8)
    expect([...out.data]).toEqual([1]) // (3 + 2) >> 2
    const pair = halveBand({ y: 0, height: 1, data: Uint8Array.of(0, 1) }, 2, 1, 8)
    expect([...pair.data]).toEqual([1]) // (1 + 1) >> 1
  })
})
