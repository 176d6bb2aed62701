import { describe, expect, it } from 'vitest'
import { clipRegion, planCrop, tileRange, validateRegion } from '../../src/crop/plan.js'

describe('crop planner', () => {
  it('touches only the tiles a region intersects', () => {
    expect(tileRange({ x: 0, y: 0, width: 1, height: 1 }, 256)).toEqual({ firstColumn: 0, lastColumn: 0, firstRow: 0, lastRow: 0 })
    expect(tileRange({ x: 255, y: 256, width: 2, height: 256 }, 256)).toEqual({ firstColumn: 0, lastColumn: 1, firstRow: 1, lastRow: 1 })
    expect(tileRange({ x: 17464, y: 6190, width: 512, height: 512 }, 256)).toEqual({
      firstColumn: 68,
      lastColumn: 70,
      firstRow: 24,
      lastRow: 26,
    })
  })

  it('maps each tile slice to its place in the region', () => {
    const bands = [...planCrop({ x: 10, y: 20, width: 30, height: 20 }, 16)]
    expect(bands.map((b) => [b.row, b.tileY, b.regionY, b.height])).toEqual([
      [1, 4, 0, 12],
      [2, 0, 12, 8],
    ])
    expect(bands[0]!.slices).toEqual([
      { column: 0, tileX: 10, regionX: 0, width: 6 },
      { column: 1, tileX: 0, regionX: 6, width: 16 },
      { column: 2, tileX: 0, regionX: 22, width: 8 },
    ])
  })

  const bad: Array<[string, { x: number; y: number; width: number; height: number }]> = [
    ['empty', { x: 0, y: 0, width: 0, height: 5 }],
    ['negative origin', { x: -1, y: 0, width: 5, height: 5 }],
    ['past the right edge', { x: 296, y: 0, width: 5, height: 5 }],
    ['past the bottom edge', { x: 0, y: 199, width: 5, height: 2 }],
    ['fractional', { x: 0.5, y: 0, width: 5, height: 5 }],
    ['not a number', { x: Number.NaN, y: 0, width: 5, height: 5 }],
  ]
  for (const [what, region] of bad) {
    it(`rejects a region ${what} with ERR_INVALID_REGION`, () => {
      expect(() => validateRegion(region, 300, 200)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_REGION' }))
    })
  }

  it('names an empty region as it was given (not as "0x5", which reads as a hex number)', () => {
    expect(() => validateRegion({ x: 3, y: 4, width: 0, height: 5 }, 300, 200)).toThrow('Region 3,4,0,5 is empty')
  })

  it('accepts the full image and clips on request', () => {
    expect(() => validateRegion({ x: 0, y: 0, width: 300, height: 200 }, 300, 200)).not.toThrow()
    expect(clipRegion({ x: -5, y: 190, width: 20, height: 20 }, 300, 200)).toEqual({ x: 0, y: 190, width: 15, height: 10 })
    expect(clipRegion({ x: 400, y: 0, width: 20, height: 20 }, 300, 200)).toBeUndefined()
  })
})
