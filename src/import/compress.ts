/**
 * Compression of one band of tile rows into tile payloads: the CPU-heavy step of import,
 * run in worker threads (compress-worker.ts) or inline. Pure: no I/O.
 */
import { createHash } from 'node:crypto'
import type { TileCodec } from '../format/interface.js'
import { isReferenceContent, type TileCoder, threadCoder, tileBytes } from '../format/tile-codec.js'

/** The rows of one tile row of a level: up to `tileSize` rows of `width` pixels. */
export interface TileRowBand {
  readonly band: Uint8Array
  readonly width: number
  readonly rows: number
  readonly tileSize: number
  readonly channels: number
  readonly bitsPerSample: 8 | 16
}

/** A tile row's band, to be cut into tiles `firstColumn..` and compressed. */
export interface CompressJob extends TileRowBand {
  readonly codec: TileCodec
  readonly firstColumn: number
  readonly columns: number
  /** Delta tiles (spec/format.md §6.1): one slot per column of the job, and the policy. */
  readonly delta?: DeltaJob
}

/**
 * What a delta import knows of one tile position, in shared memory: the content of the tile
 * there in the last image and of its reference, and the references it may be a delta
 * against. Only the job of the position's row touches it (the import's order, DeltaTicket,
 * sees to that).
 */
export interface DeltaSlot {
  readonly last: Uint8Array
  readonly hasLast: boolean
  /** The position's reference content, which the job rewrites when the reference changes. */
  readonly ref: Uint8Array
  /** What the tile may be a delta against: the position's reference first, then earlier ones. */
  readonly refs: readonly DeltaReference[]
}

/**
 * A plain tile a delta may reference: the position's own (its content, in shared memory) or
 * an earlier one of the position (its payload, in shared memory: decompressed when tried).
 */
export interface DeltaReference {
  readonly content?: Uint8Array
  readonly payload?: Uint8Array
  /** Its size as a plain tile at the job's probe level (compressBand): what a changed tile like it costs. */
  readonly length: number
}

/** The delta part of a CompressJob. */
export interface DeltaJob {
  readonly slots: readonly DeltaSlot[]
  /** A delta is stored when at most this fraction of the plain payload's bytes. */
  readonly maxRatio: number
}

/** How a tile of a delta job is stored. */
export const TileKind = {
  /** The same content as the last tile at its position: stored as that one is. */
  last: 0,
  /** The same content as a reference: that plain tile. */
  ref: 1,
  /** A new plain tile, now the position's reference. */
  plain: 2,
  /** A delta against a reference. */
  delta: 3,
  /** A new plain tile that cannot be a reference (isReferenceContent). */
  plainOnly: 4,
} as const

/** Each tile's payload and the sha2-256 digest of the payload (empty for kinds `last` and `ref`). */
export interface CompressResult {
  readonly payloads: Uint8Array[]
  readonly digests: Uint8Array[]
  /** With a delta job: each tile's TileKind, and for kinds `ref` and `delta` the index of its reference in its slot's `refs`. */
  readonly kinds?: number[]
  readonly refs?: number[]
  /** With a delta job: for kind `plain`, the tile's size at the probe level (its DeltaReference.length later); else 0. */
  readonly estimates?: number[]
}

/**
 * A delta job compares its candidates at this level at most: at level 9 (what codec-choice.ts
 * picks for screens) each comparison costs about 5x as much, and they rank alike. Only the
 * chosen payload is compressed at the codec's level.
 */
export const PROBE_LEVEL = 3

/** Cuts columns `firstColumn .. firstColumn+columns-1` of the band into zero-padded tiles and compresses them. */
export function compressBand(job: CompressJob): CompressResult {
  const { tileSize, channels, bitsPerSample, codec } = job
  const coder = threadCoder({ tileSize, channels, bitsPerSample }, codec)
  const probe = job.delta === undefined || codec.level <= PROBE_LEVEL ? coder : threadCoder(coder.shape, { ...codec, level: PROBE_LEVEL })
  const tile = new Uint8Array(tileBytes(coder.shape))
  const payloads: Uint8Array[] = []
  const digests: Uint8Array[] = []
  const kinds: number[] = []
  const refs: number[] = []
  const estimates: number[] = []
  for (let column = job.firstColumn; column < job.firstColumn + job.columns; column++) {
    cutTile(job, column, tile)
    const slot = job.delta?.slots[column - job.firstColumn]
    const [kind, payload, ref, estimate] =
      slot === undefined ? [TileKind.plain, coder.encode(tile), -1, 0] : deltaTile(coder, probe, tile, slot, job.delta!.maxRatio)
    kinds.push(kind)
    refs.push(ref)
    estimates.push(estimate)
    payloads.push(payload)
    // A copy: digest() may return a slice of Node's shared Buffer pool, which cannot be transferred.
    digests.push(payload.length === 0 ? payload : new Uint8Array(createHash('sha256').update(payload).digest()))
  }
  return job.delta === undefined ? { payloads, digests } : { payloads, digests, kinds, refs, estimates }
}

/** Copies tile `column` of the band into `tile` (`tileBytes` long), zero-padded. */
export function cutTile(row: TileRowBand, column: number, tile: Uint8Array): void {
  const { tileSize } = row
  const pixelBytes = row.channels * (row.bitsPerSample / 8)
  const rowBytes = row.width * pixelBytes
  const tileRowBytes = tileSize * pixelBytes
  const x0 = column * tileRowBytes
  const copyBytes = Math.min(tileRowBytes, rowBytes - x0)
  // Padding (right of the image, below it) is zero: spec/format.md, Tiles.
  if (copyBytes < tileRowBytes || row.rows < tileSize) tile.fill(0)
  for (let y = 0; y < row.rows; y++) {
    const from = y * rowBytes + x0
    tile.set(row.band.subarray(from, from + copyBytes), y * tileRowBytes)
  }
}

const NONE = new Uint8Array(0)

/**
 * One tile of a delta job (spec/format.md §6.1, Writing): the cheapest way to store it, and
 * the slot updated (`last`; `ref` when the position's reference changes: a new plain tile,
 * or an earlier reference the tile is closer to). Equal content is found by comparing
 * bytes, before compressing anything. The delta against the position's own reference is
 * tried first: when it is under `maxRatio` of that reference's plain size the plain payload
 * is not computed (a changed tile is usually about as large as the tile it replaced). Else
 * the earlier references are tried too (a window switched back to), and the smallest delta
 * is kept if it is under `maxRatio` of the tile's own plain payload. Sizes are compared as
 * `probe` compresses; the payload stored is `coder`'s. Returns the kind, the payload, the
 * reference's index in the slot's refs (or -1) and, for a new plain tile, its probe size.
 */
function deltaTile(
  coder: TileCoder,
  probe: TileCoder,
  pixels: Uint8Array,
  slot: DeltaSlot,
  maxRatio: number,
): [number, Uint8Array, number, number] {
  const content = coder.content(pixels)
  if (slot.hasLast && equalBytes(content, slot.last)) return [TileKind.last, NONE, -1, 0]
  slot.last.set(content)
  const own = slot.refs[0]?.content
  if (own !== undefined && equalBytes(content, own)) return [TileKind.ref, NONE, 0, 0]
  const final = (payload: Uint8Array, dictionary: Uint8Array): Uint8Array =>
    probe === coder ? payload : coder.encodeDelta(content, dictionary)
  let best: Uint8Array | undefined
  let bestRef = -1
  for (const [i, ref] of slot.refs.entries()) {
    const dictionary = ref.content ?? coder.decompress(ref.payload!, earlierScratch(content.length))
    if (i > 0 && equalBytes(content, dictionary)) {
      slot.ref.set(dictionary)
      return [TileKind.ref, NONE, i, 0]
    }
    const delta = probe.encodeDelta(content, dictionary)
    if (i === 0 && delta.length <= ref.length * maxRatio) return [TileKind.delta, final(delta, dictionary), 0, 0]
    if (best === undefined || delta.length < best.length) {
      best = delta
      bestRef = i
    }
  }
  const plain = probe.encodeContent(content)
  if (best !== undefined && best.length <= plain.length * maxRatio) {
    // An earlier reference did better than the position's own: it is the position's again.
    if (bestRef > 0) slot.ref.set(coder.decompress(slot.refs[bestRef]!.payload!, earlierScratch(content.length)))
    return [TileKind.delta, final(best, slot.ref), bestRef, 0]
  }
  const stored = probe === coder ? plain : coder.encodeContent(content)
  if (!isReferenceContent(content)) return [TileKind.plainOnly, stored, -1, 0]
  slot.ref.set(content)
  return [TileKind.plain, stored, -1, plain.length]
}

const earlier = new Map<number, Uint8Array>()

/** This thread's buffer for an earlier reference's content. */
function earlierScratch(bytes: number): Uint8Array {
  let buffer = earlier.get(bytes)
  if (buffer === undefined) {
    buffer = new Uint8Array(bytes)
    earlier.set(bytes, buffer)
  }
  return buffer
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length))
}
