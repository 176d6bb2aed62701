/**
 * Decoding one planned band: each tile payload decompressed, un-predicted where needed and
 * its slice copied into the output. Shared by the in-thread reader and the decode workers.
 */

import type { TileCodec } from '../format/interface.js'
import { TileCoder, type TileShape, tileBytes } from '../format/tile-codec.js'
import { unpredictCopy, unpredictScratch } from '../format/unpredict.js'
import type { BandPlan } from './plan.js'

// One decode buffer per tile size for the whole thread: a tile is decoded and copied out
// without an await in between, so concurrent crops can share it (64 concurrent crops would
// otherwise hold 64 of them).
const scratch = new Map<number, Uint8Array>()
const coders = new Map<string, TileCoder>()

/** The thread's TileCoder for a shape and codec. */
export function coderFor(shape: TileShape, codec: TileCodec): TileCoder {
  const key = `${shape.tileSize}/${shape.channels}/${shape.bitsPerSample}/${codec.level}/${codec.predictor}`
  let coder = coders.get(key)
  if (coder === undefined) {
    coder = new TileCoder(shape, codec)
    coders.set(key, coder)
  }
  return coder
}

/**
 * Decodes `payloads` (one per slice of `band`, in order) into `out`: exactly `band.height`
 * rows of the region, contiguous. Uses the WebAssembly kernel's scratch memory when it can
 * (decompress into it, un-predict and copy there with SIMD, one copy out per band).
 */
export function decodeBand(coder: TileCoder, band: BandPlan, payloads: readonly Uint8Array[], out: Uint8Array): void {
  const { tileSize, channels, bitsPerSample } = coder.shape
  const pixelBytes = channels * (bitsPerSample / 8)
  const last = band.slices[band.slices.length - 1]!
  const rowBytes = (last.regionX + last.width) * pixelBytes
  const bytes = tileBytes(coder.shape)
  // No await from here to the copy out: the scratch memory is shared by the whole thread.
  const wasm = unpredictScratch(bytes, band.height * rowBytes)
  let tile = wasm?.tile ?? scratch.get(bytes)
  if (tile === undefined) {
    tile = new Uint8Array(bytes)
    scratch.set(bytes, tile)
  }
  const target = wasm?.out ?? out
  for (let i = 0; i < band.slices.length; i++) {
    const slice = band.slices[i]!
    coder.decompress(payloads[i]!, tile)
    unpredictCopy(tile, target, {
      tileSize,
      channels,
      bitsPerSample,
      predictor: coder.codec.predictor,
      firstRow: band.tileY,
      rowCount: band.height,
      tileX: slice.tileX,
      width: slice.width,
      outOffset: slice.regionX * pixelBytes,
      outStride: rowBytes,
    })
  }
  if (wasm !== undefined) out.set(wasm.out)
}
