/**
 * Images with known duplicate tiles, for dedup and garbage-collection tests: an image is a
 * grid of tiles, each tile's pixels chosen by a seed, so equal seeds make equal tiles (and
 * equal tile CIDs), whatever image they are in.
 */
import { writeFile } from 'node:fs/promises'
import { makeImage, type TestImage, writePam } from '../helpers/oracle.js'

/** An RGB 8-bit image of `seeds.length` rows by `seeds[0].length` columns of `tile`-pixel tiles. */
export function tiledImage(tile: number, seeds: readonly (readonly number[])[]): TestImage {
  const rows = seeds.length
  const columns = seeds[0]!.length
  const width = columns * tile
  const height = rows * tile
  const data = new Uint8Array(width * height * 3)
  const cache = new Map<number, TestImage>()
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < columns; c++) {
      const seed = seeds[r]![c]!
      let block = cache.get(seed)
      if (block === undefined) {
        block = makeImage(tile, tile, 3, 8, seed)
        cache.set(seed, block)
      }
      for (let y = 0; y < tile; y++) {
        data.set(block.data.subarray(y * tile * 3, (y + 1) * tile * 3), ((r * tile + y) * width + c * tile) * 3)
      }
    }
  }
  return { width, height, channels: 3, bits: 8, data }
}

/** Writes `image` as PAM to `path`. */
export async function writeTiled(path: string, image: TestImage): Promise<void> {
  await writePam(path, image)
}

/** Writes bytes that look like nothing Tessera reads (an unsupported file). */
export async function writeJunk(path: string): Promise<void> {
  await writeFile(path, 'not an image at all, just text\n')
}
