/**
 * Compression of one band of tile rows into tile payloads: the CPU-heavy step of import,
 * run in worker threads (compress-worker.ts) or inline. Pure: no I/O.
 */
import { createHash } from 'node:crypto'
import type { TileCodec } from '../format/interface.js'
import { TileCoder, tileBytes } from '../format/tile-codec.js'

/** A band of up to `tileSize` rows of a level, to be cut into tiles `firstColumn..`. */
export interface CompressJob {
  readonly band: Uint8Array
  readonly width: number
  readonly rows: number
  readonly tileSize: number
  readonly channels: number
  readonly bitsPerSample: 8 | 16
  readonly codec: TileCodec
  readonly firstColumn: number
  readonly columns: number
}

/** Each tile's payload and the sha2-256 digest of the payload. */
export interface CompressResult {
  readonly payloads: Uint8Array[]
  readonly digests: Uint8Array[]
}

const coders = new Map<string, TileCoder>()

/** Cuts columns `firstColumn .. firstColumn+columns-1` of the band into zero-padded tiles and compresses them. */
export function compressBand(job: CompressJob): CompressResult {
  const { tileSize, channels, bitsPerSample, codec } = job
  const key = `${tileSize}/${channels}/${bitsPerSample}/${codec.level}/${codec.predictor}`
  let coder = coders.get(key)
  if (coder === undefined) {
    coder = new TileCoder({ tileSize, channels, bitsPerSample }, codec)
    coders.set(key, coder)
  }
  const pixelBytes = channels * (bitsPerSample / 8)
  const rowBytes = job.width * pixelBytes
  const tileRowBytes = tileSize * pixelBytes
  const tile = new Uint8Array(tileBytes(coder.shape))
  const payloads: Uint8Array[] = []
  const digests: Uint8Array[] = []
  for (let column = job.firstColumn; column < job.firstColumn + job.columns; column++) {
    const x0 = column * tileSize * pixelBytes
    const copyBytes = Math.min(tileRowBytes, rowBytes - x0)
    // Padding (right of the image, below it) is zero: spec/format.md, Tiles.
    if (copyBytes < tileRowBytes || job.rows < tileSize) tile.fill(0)
    for (let y = 0; y < job.rows; y++) {
      const from = y * rowBytes + x0
      tile.set(job.band.subarray(from, from + copyBytes), y * tileRowBytes)
    }
    const payload = coder.encode(tile)
    payloads.push(payload)
    // A copy: digest() may return a slice of Node's shared Buffer pool, which cannot be transferred.
    digests.push(new Uint8Array(createHash('sha256').update(payload).digest()))
  }
  return { payloads, digests }
}
