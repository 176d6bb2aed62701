/**
 * The codec of an image imported with `zstdLevel` or `predictor` set to `auto` (the dataset
 * defaults), chosen from a few of its tiles (sampleRows), compressed at level 1 with each
 * predictor allowed. Screens, drawings and text compress best without the predictor (400
 * screenshots: 14.9 MB against 18.4 MB with it), and level 9 takes another 8% off at little
 * cost, their tiles being mostly flat (1.5 ms a 256-pixel RGBA tile, against 0.3 ms at
 * level 3). Level 17 would take 24% off but costs 9 ms a tile: a screenshot
 * archive then imports at 9 frames/s instead of 32. Photographs need predictor 2, and a
 * higher level would cost 2x (level 9) to 15x (level 17) the time of level 3 for 5-10%.
 * The choice depends on the file alone (its pixels, and whether it is decoded whole), so it
 * is deterministic.
 * Measured in bench/README.md#screenshot-archive.
 */
import type { TileCodec } from '../format/interface.js'
import { threadCoder, tileBytes } from '../format/tile-codec.js'
import { cutTile, type TileRowBand } from './compress.js'
import { AUTO_CODEC, type CodecSetting } from './options.js'

/**
 * The tile rows the choice looks at: the first, middle and last when the decoder holds the
 * whole image (`pixels`: a small image decoded in memory), else the first, which is all a
 * streamed import has before it must compress it. The first row alone can mislead: a
 * desktop's top row is mostly wallpaper (a gradient, where the predictor pays) above the
 * windows' text (where it does not).
 */
export function sampleRows(first: TileRowBand, pixels: Uint8Array | undefined, height: number): TileRowBand[] {
  if (pixels === undefined) return [first]
  const { tileSize, width, channels, bitsPerSample } = first
  const rowBytes = width * channels * (bitsPerSample / 8)
  const tileRows = Math.ceil(height / tileSize)
  const picked = [
    ...new Set(
      Array.from({ length: AUTO_CODEC.sampleRows }, (_, i) => Math.floor((i * (tileRows - 1)) / Math.max(1, AUTO_CODEC.sampleRows - 1))),
    ),
  ]
  return picked.map((r) => {
    const rows = Math.min(tileSize, height - r * tileSize)
    const at = r * tileSize * rowBytes
    return { band: pixels.subarray(at, at + rows * rowBytes), width, rows, tileSize, channels, bitsPerSample }
  })
}

/** `setting` with its `auto` parts chosen from up to AUTO_CODEC.sampleColumns tiles of each of `rows` (sampleRows). */
export function chooseCodec(setting: CodecSetting, rows: readonly TileRowBand[]): TileCodec {
  const { level, predictor } = setting
  if (level !== 'auto' && predictor !== 'auto') return { name: 'zstd', level, predictor }
  const shape = rows[0]!
  const columns = Math.ceil(shape.width / shape.tileSize)
  const samples = Math.min(columns, AUTO_CODEC.sampleColumns)
  const tiles = rows.flatMap((row) =>
    Array.from({ length: samples }, (_, i) => {
      const tile = new Uint8Array(tileBytes(shape))
      cutTile(row, Math.floor((i * columns) / samples), tile)
      return tile
    }),
  )
  // Screen-like content, most of the tiles compressing 8-fold without the predictor, is
  // stored without it: text and flat colour compress better so (400 screenshots: 14.9
  // against 18.4 MB), though gradients among them (a wallpaper, stored once and never
  // changing) would favour the predictor if bytes were summed. Otherwise each tile votes
  // for the predictor that compresses it smaller (predictor 2, the single-image default, on
  // a tie). The high level is for content most of whose tiles compress 8-fold with the
  // predictor chosen.
  const candidates = predictor === 'auto' ? ([2, 1] as const) : [predictor]
  const sizes = new Map(
    candidates.map((candidate) => {
      const coder = threadCoder(shape, { name: 'zstd', level: AUTO_CODEC.probeLevel, predictor: candidate })
      return [candidate, tiles.map((tile) => coder.encode(tile).length)] as const
    }),
  )
  const small = tileBytes(shape) * AUTO_CODEC.compressibleRatio
  const most = (lengths: readonly number[]) => 2 * lengths.filter((length) => length <= small).length > lengths.length
  let chosen: 1 | 2
  if (predictor !== 'auto') chosen = predictor
  else if (most(sizes.get(1)!)) chosen = 1
  else {
    const [two, one] = [sizes.get(2)!, sizes.get(1)!]
    const forOne = one.filter((length, t) => length < two[t]!).length
    chosen = 2 * forOne > tiles.length ? 1 : 2
  }
  return {
    name: 'zstd',
    level: level !== 'auto' ? level : most(sizes.get(chosen)!) ? AUTO_CODEC.compressibleLevel : AUTO_CODEC.level,
    predictor: chosen,
  }
}
