import { InvalidArgumentError } from '../errors.js'

/** Size of one pyramid level and its tile grid. */
export interface LevelGeometry {
  readonly width: number
  readonly height: number
  readonly columns: number
  readonly rows: number
}

/** The tile grid of a `width` x `height` level cut into `tileSize` tiles (spec/format.md, Tiles). */
export function levelGeometry(width: number, height: number, tileSize: number): LevelGeometry {
  return { width, height, columns: Math.ceil(width / tileSize), rows: Math.ceil(height / tileSize) }
}

/**
 * Sizes of every pyramid level: level 0 is the image; level k+1 is ceil(w/2) x ceil(h/2) of
 * level k; the last level is the first that fits in one tile (spec/format.md, Pyramid).
 */
export function pyramidSizes(width: number, height: number, tileSize: number): Array<[number, number]> {
  const sizes: Array<[number, number]> = [[width, height]]
  let w = width
  let h = height
  while (w > tileSize || h > tileSize) {
    w = Math.ceil(w / 2)
    h = Math.ceil(h / 2)
    sizes.push([w, h])
  }
  return sizes
}

/** Checks a tile size: a multiple of 16 from 16 to 4096. */
export function assertTileSize(tileSize: number): void {
  if (!Number.isInteger(tileSize) || tileSize < 16 || tileSize > 4096 || tileSize % 16 !== 0) {
    throw new InvalidArgumentError(`Expected a tile size that is a multiple of 16 from 16 to 4096 but received ${tileSize}`)
  }
}
