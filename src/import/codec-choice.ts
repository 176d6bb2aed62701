/**
 * The codec of an image imported with `zstdLevel` or `predictor` set to `auto` (the dataset
 * defaults), chosen from its first tile row: a few of its tiles are compressed at level 1
 * with each predictor allowed. Screens, drawings and text compress best without the
 * predictor (400 screenshots: 14.9 MB against 18.4 MB with it), and level 9 takes another 8%
 * off at little cost, their tiles being mostly flat (1.5 ms a 256-pixel RGBA tile, against
 * 0.3 ms at level 3). Level 17 would take 24% off but costs 9 ms a tile: a screenshot
 * archive then imports at 9 frames/s instead of 32. Photographs need predictor 2, and a
 * higher level would cost 2x (level 9) to 15x (level 17) the time of level 3 for 5-10%.
 * The choice depends on the pixels alone, so it is deterministic.
 * Measured in bench/README.md#screenshot-archive.
 */
import type { TileCodec } from '../format/interface.js'
import { tileBytes } from '../format/tile-codec.js'
import { coderOf, cutTile, type TileRowBand } from './compress.js'
import { AUTO_CODEC, type CodecSetting } from './options.js'

/** The first tile row of an image: `rows` rows of `width` pixels (fewer than a tile only when the image is). */
export type FirstTileRow = TileRowBand

/** `setting` with its `auto` parts chosen from the image's first tile row. */
export function chooseCodec(setting: CodecSetting, row: FirstTileRow): TileCodec {
  const { level, predictor } = setting
  if (level !== 'auto' && predictor !== 'auto') return { name: 'zstd', level, predictor }
  const columns = Math.ceil(row.width / row.tileSize)
  const samples = Math.min(columns, AUTO_CODEC.sampleTiles)
  const sampled = Array.from({ length: samples }, (_, i) => Math.floor((i * columns) / samples))
  const tiles = sampled.map((column) => {
    const tile = new Uint8Array(tileBytes(row))
    cutTile(row, column, tile)
    return tile
  })
  const probe = (candidate: 1 | 2): number => {
    const coder = coderOf(row, { name: 'zstd', level: AUTO_CODEC.probeLevel, predictor: candidate })
    return tiles.reduce((bytes, tile) => bytes + coder.encode(tile).length, 0)
  }
  const candidates = predictor === 'auto' ? ([2, 1] as const) : [predictor]
  let chosen = candidates[0]
  let bytes = probe(chosen)
  for (const candidate of candidates.slice(1)) {
    const other = probe(candidate)
    if (other < bytes) [chosen, bytes] = [candidate, other]
  }
  const raw = samples * tileBytes(row)
  const compressible = bytes <= raw * AUTO_CODEC.compressibleRatio
  return {
    name: 'zstd',
    level: level !== 'auto' ? level : compressible ? AUTO_CODEC.compressibleLevel : AUTO_CODEC.level,
    predictor: chosen,
  }
}
