/**
 * Crops from a remote store (S3): the whole crop planned first, then read in two waves of
 * requests instead of two per tile row. Every index block the region needs is asked for at
 * once, then every tile (the store merges what one turn of the event loop asks for into one
 * ranged request per run of neighbouring blocks, src/store/object-store.ts), so a 512x512 crop
 * costs two round trips whatever the number of tile rows it spans. A local store reads
 * synchronously and gains nothing: the reader does not call this for one.
 */
import type { CID } from '../format/block.js'
import type { Region } from '../format/interface.js'
import type { ImageReader, ReadOptions } from './engine.js'
import { tileRange } from './plan.js'

/** Tiles read ahead of the band being decoded, at most (their compressed bytes are held). */
export const PREFETCH_TILES = 64
/** Index blocks read at once, at most (fewer than the reader keeps decoded). */
export const PREFETCH_ROWS = 64

/** What a band's decoder gets: the payloads of its tiles, and of the references of its deltas. */
type BandTiles = Awaited<ReturnType<ImageReader['readTiles']>>

/** The tiles of each band of a region, read ahead; `take` hands a band's over once. */
export interface Prefetched {
  /** The band of tile row `row`, or undefined when it was not read ahead. */
  take(row: number): Promise<BandTiles> | undefined
}

/**
 * Reads the index blocks of every tile row `region` touches (one wave), then, when `tiles`
 * and the region has at most PREFETCH_TILES tiles, starts reading all its tiles (a second
 * wave, not awaited). Regions beyond the limits get what fits: the bands read the rest.
 */
export async function prefetchRegion(
  reader: ImageReader,
  level: number,
  region: Region,
  tiles: boolean,
  options: ReadOptions,
): Promise<Prefetched | undefined> {
  const { firstColumn, lastColumn, firstRow, lastRow } = tileRange(region, reader.manifest.tileSize)
  const rowCount = lastRow - firstRow + 1
  if (rowCount > PREFETCH_ROWS) return undefined
  const rows = Array.from({ length: rowCount }, (_, i) => firstRow + i)
  const indexes = await Promise.all(rows.map((row) => reader.tileRow(level, row, options)))
  if (!tiles || rowCount * (lastColumn - firstColumn + 1) > PREFETCH_TILES) return undefined
  const reads = new Map<number, Promise<BandTiles>>()
  indexes.forEach((index, i) => {
    const columns = Array.from({ length: lastColumn - firstColumn + 1 }, (_, j) => firstColumn + j)
    const cids: CID[] = columns.map((column) => index.tiles[column]!)
    const refs = columns.map((column) => index.refs?.[column] ?? null)
    const read = reader.readTiles(cids, refs, options)
    // Awaited by the band that takes it; one abandoned by a consumer that stopped early must
    // not be reported as unhandled.
    read.catch(() => {})
    reads.set(rows[i]!, read)
  })
  return {
    take(row) {
      const read = reads.get(row)
      reads.delete(row)
      return read
    },
  }
}
