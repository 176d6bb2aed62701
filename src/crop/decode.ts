/**
 * Decoding one planned band: each tile payload decompressed, un-predicted where needed and
 * its slice copied into the output. Shared by the in-thread reader and the decode workers.
 */

import { type TileCoder, tileBytes } from '../format/tile-codec.js'
import { unpredictCopy, unpredictScratch } from '../format/unpredict.js'
import type { BandPlan } from './plan.js'

// One decode buffer per tile size for the whole thread: a tile is decoded and copied out
// without an await in between, so concurrent crops can share it (64 concurrent crops would
// otherwise hold 64 of them).
const scratch = new Map<number, Uint8Array>()
// The content of a delta's reference tile, decoded just before the delta (same reasoning).
const referenceScratch = new Map<number, Uint8Array>()
/**
 * Decoded references by CID, least recently used first, up to DICTIONARY_CACHE_BYTES per
 * thread: the deltas of a series share few references (a position's plain tile serves every
 * frame until it changes a lot), so a process that crops many frames (a server, a sampler, a
 * benchmark) decompresses each reference once, not once per delta. Payloads are verified
 * against their CID before they reach decodeBand, so an entry is never stale.
 */
const dictionaries = new Map<string, Uint8Array>()
let dictionaryBytes = 0
/** 16 MiB: 64 references of 256-pixel RGBA tiles. */
export const DICTIONARY_CACHE_BYTES = 16 << 20
/**
 * Decodes `payloads` (one per slice of `band`, in order) into `out`: exactly `band.height`
 * rows of the region, contiguous. `references[i]`, when given, is the payload of the plain
 * tile that payload `i` is a delta against (spec/format.md §6.1): decompressed first, its
 * content is the delta's dictionary, so an output tile never needs more than two stored
 * tiles. Uses the WebAssembly kernel's scratch memory when it can (decompress into it,
 * un-predict and copy there with SIMD, one copy out per band).
 */
export function decodeBand(
  coder: TileCoder,
  band: BandPlan,
  payloads: readonly Uint8Array[],
  out: Uint8Array,
  references?: ReadonlyArray<Uint8Array | undefined>,
  referenceKeys?: ReadonlyArray<string | undefined>,
): void {
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
    const reference = references?.[i]
    if (reference === undefined) coder.decompress(payloads[i]!, tile)
    else coder.decompress(payloads[i]!, tile, dictionaryOf(coder, bytes, reference, referenceKeys?.[i]))
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

/** The content of reference payload `reference` (its CID `key`, when known: then cached). */
function dictionaryOf(coder: TileCoder, bytes: number, reference: Uint8Array, key: string | undefined): Uint8Array {
  if (key === undefined) {
    let dictionary = referenceScratch.get(bytes)
    if (dictionary === undefined) {
      dictionary = new Uint8Array(bytes)
      referenceScratch.set(bytes, dictionary)
    }
    return coder.decompress(reference, dictionary)
  }
  const cached = dictionaries.get(key)
  if (cached !== undefined && cached.length === bytes) {
    // Most recently used now: to the end of the Map's order.
    dictionaries.delete(key)
    dictionaries.set(key, cached)
    return cached
  }
  const dictionary = coder.decompress(reference, new Uint8Array(bytes))
  if (bytes > DICTIONARY_CACHE_BYTES) return dictionary
  if (cached !== undefined) dictionaryBytes -= cached.length
  dictionaries.set(key, dictionary)
  dictionaryBytes += bytes
  while (dictionaryBytes > DICTIONARY_CACHE_BYTES) {
    const [oldest, evicted] = dictionaries.entries().next().value!
    dictionaries.delete(oldest)
    dictionaryBytes -= evicted.length
  }
  return dictionary
}
