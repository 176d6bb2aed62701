/**
 * The crop planner: which tiles a region touches and which part of each goes where.
 * Pure: no I/O. Regions follow spec/format.md, Regions.
 */
import { InvalidRegionError } from '../errors.js'
import type { Region } from '../format/interface.js'

/** The part of one tile that lands in the output. */
export interface TileSlice {
  readonly column: number
  /** First pixel column inside the tile. */
  readonly tileX: number
  /** First pixel column inside the region. */
  readonly regionX: number
  readonly width: number
}

/** One band of output rows, all taken from one tile row. */
export interface BandPlan {
  readonly row: number
  /** First pixel row inside the tiles. */
  readonly tileY: number
  /** First pixel row inside the region. */
  readonly regionY: number
  readonly height: number
  readonly slices: readonly TileSlice[]
}

/**
 * Throws InvalidRegionError unless `region` is a non-empty rectangle of integers that lies
 * inside a `width` x `height` level (spec/format.md, Regions: no implicit clipping).
 */
export function validateRegion(region: Region, width: number, height: number): void {
  const { x, y, width: w, height: h } = region
  for (const [name, value] of [
    ['x', x],
    ['y', y],
    ['width', w],
    ['height', h],
  ] as const) {
    if (!Number.isSafeInteger(value)) throw new InvalidRegionError(`Expected an integer for region ${name} but received ${String(value)}`)
  }
  if (w < 1 || h < 1) throw new InvalidRegionError(`Region ${x},${y},${w},${h} is empty: width and height must be at least 1`)
  if (x < 0 || y < 0 || x + w > width || y + h > height) {
    throw new InvalidRegionError(`Region ${x},${y},${w},${h} extends past the ${width}x${height} image`)
  }
}

/** Intersects `region` with a `width` x `height` level; undefined if nothing is left. */
export function clipRegion(region: Region, width: number, height: number): Region | undefined {
  const x = Math.max(0, region.x)
  const y = Math.max(0, region.y)
  const right = Math.min(width, region.x + region.width)
  const bottom = Math.min(height, region.y + region.height)
  return right > x && bottom > y ? { x, y, width: right - x, height: bottom - y } : undefined
}

/** The tile rows and columns a (valid) region touches, inclusive. */
export function tileRange(region: Region, tileSize: number) {
  return {
    firstColumn: Math.floor(region.x / tileSize),
    lastColumn: Math.floor((region.x + region.width - 1) / tileSize),
    firstRow: Math.floor(region.y / tileSize),
    lastRow: Math.floor((region.y + region.height - 1) / tileSize),
  }
}

/** Bands of a (valid) region, top to bottom, one per intersecting tile row. */
export function* planCrop(region: Region, tileSize: number): Generator<BandPlan> {
  const { firstColumn, lastColumn, firstRow, lastRow } = tileRange(region, tileSize)
  const slices: TileSlice[] = []
  for (let column = firstColumn; column <= lastColumn; column++) {
    const left = Math.max(region.x, column * tileSize)
    const right = Math.min(region.x + region.width, (column + 1) * tileSize)
    slices.push({ column, tileX: left - column * tileSize, regionX: left - region.x, width: right - left })
  }
  for (let row = firstRow; row <= lastRow; row++) {
    const top = Math.max(region.y, row * tileSize)
    const bottom = Math.min(region.y + region.height, (row + 1) * tileSize)
    yield { row, tileY: top - row * tileSize, regionY: top - region.y, height: bottom - top, slices }
  }
}
