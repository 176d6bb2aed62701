/**
 * The tile codec: one zstd frame of a whole (padded) tile, optionally after TIFF Predictor 2
 * (spec/format.md, Tile payload). This file is the one importer of zstd-napi; it uses the
 * low-level binding so tiles decompress straight into caller-owned buffers.
 */
import { createRequire } from 'node:module'
import { CorruptInputError, IntegrityError } from '../errors.js'
import type { TileCodec } from './interface.js'
import { decodePredictor, encodePredictor } from './predictor.js'

interface ZstdCCtx {
  compress(dst: Uint8Array, src: Uint8Array, level: number): number
  compressUsingDict(dst: Uint8Array, src: Uint8Array, dict: Uint8Array, level: number): number
  setParameter(param: number, value: number): void
  reset(directive: number): void
  /** [bytes left to flush, bytes produced, bytes consumed] */
  compressStream2(dst: Uint8Array, src: Uint8Array, endOp: number): [number, number, number]
}

interface ZstdBinding {
  CCtx: new () => ZstdCCtx
  DCtx: new () => {
    decompress(dst: Uint8Array, src: Uint8Array): number
    decompressUsingDict(dst: Uint8Array, src: Uint8Array, dict: Uint8Array): number
  }
  compressBound(size: number): number
  getFrameContentSize(frame: Uint8Array): number | null
  findFrameCompressedSize(frame: Uint8Array): number
  CParameter: { compressionLevel: number }
  EndDirective: { continue: number; end: number }
  ResetDirective: { sessionOnly: number }
}

const require = createRequire(import.meta.url)
const zstd = require('zstd-napi/binding.js') as ZstdBinding

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  // 16-bit samples are handled through native typed arrays, which must be little-endian.
  throw new Error('Tessera requires a little-endian platform')
}

/** Geometry of the tiles a codec instance handles. */
export interface TileShape {
  readonly tileSize: number
  readonly channels: number
  readonly bitsPerSample: 8 | 16
}

/** Bytes of one decoded tile. */
export function tileBytes(shape: TileShape): number {
  return shape.tileSize * shape.tileSize * shape.channels * (shape.bitsPerSample / 8)
}

/**
 * Encodes and decodes tiles of one shape with one codec. Holds reusable zstd contexts and
 * scratch buffers, so keep one per thread and do not share it between concurrent users.
 */
export class TileCoder {
  readonly shape: TileShape
  readonly codec: TileCodec
  readonly #bytes: number
  #cctx: ZstdCCtx | undefined
  #deltaCctx: ZstdCCtx | undefined
  #dctx: InstanceType<ZstdBinding['DCtx']> | undefined
  #scratch: Uint8Array | undefined
  #out: Uint8Array | undefined

  constructor(shape: TileShape, codec: TileCodec) {
    this.shape = shape
    this.codec = codec
    this.#bytes = tileBytes(shape)
  }

  /**
   * Compresses one whole tile of pixels (`tileBytes(shape)` bytes, padding included).
   * Returns a new buffer holding exactly the payload; `pixels` is not modified.
   */
  encode(pixels: Uint8Array): Uint8Array {
    return this.encodeContent(this.content(pixels))
  }

  /**
   * The tile's content: the bytes its zstd frame holds (spec/format.md §3), i.e. `pixels`
   * after the predictor. Returns `pixels` itself under predictor 1, else a scratch buffer
   * that the next call overwrites. `pixels` is not modified.
   */
  content(pixels: Uint8Array): Uint8Array {
    if (pixels.length !== this.#bytes) throw new RangeError(`Expected ${this.#bytes} tile bytes but received ${pixels.length}`)
    if (this.codec.predictor !== 2) return pixels
    this.#scratch ??= new Uint8Array(this.#bytes)
    this.#scratch.set(pixels)
    encodePredictor(this.#scratch, this.shape.tileSize, this.shape.channels, this.shape.bitsPerSample)
    return this.#scratch
  }

  /** A plain payload of `content` (see content()): one frame written as libtiff writes it. */
  encodeContent(content: Uint8Array): Uint8Array {
    if (content.length !== this.#bytes) throw new RangeError(`Expected ${this.#bytes} tile bytes but received ${content.length}`)
    if (this.#cctx === undefined) {
      this.#cctx = new zstd.CCtx()
      this.#cctx.setParameter(zstd.CParameter.compressionLevel, this.codec.level)
    }
    this.#out ??= new Uint8Array(zstd.compressBound(this.#bytes))
    return streamFrame(this.#cctx, content, this.#out)
  }

  /**
   * A delta payload of `content` against the content of its reference tile (spec/format.md
   * §6.1): one zstd frame compressed with `reference` as a raw-content dictionary. The
   * reference must be usable as one (isReferenceContent).
   */
  encodeDelta(content: Uint8Array, reference: Uint8Array): Uint8Array {
    if (content.length !== this.#bytes || reference.length !== this.#bytes) {
      throw new RangeError(`Expected ${this.#bytes} tile bytes`)
    }
    if (!isReferenceContent(reference)) throw new RangeError('The reference starts with the zstd dictionary magic number')
    this.#deltaCctx ??= new zstd.CCtx()
    this.#out ??= new Uint8Array(zstd.compressBound(this.#bytes))
    const length = this.#deltaCctx.compressUsingDict(this.#out, content, reference, this.codec.level)
    return this.#out.slice(0, length)
  }

  /**
   * Decompresses one payload into `target` (a new buffer if omitted), which receives the
   * whole tile's pixels, padding included; a delta payload needs its reference's content
   * (spec/format.md §6.1). Throws IntegrityError on a malformed payload.
   */
  decode(payload: Uint8Array, target: Uint8Array = new Uint8Array(this.#bytes), reference?: Uint8Array): Uint8Array {
    this.decompress(payload, target, reference)
    if (this.codec.predictor === 2) {
      decodePredictor(target.subarray(0, this.#bytes), this.shape.tileSize, this.shape.channels, this.shape.bitsPerSample)
    }
    return target
  }

  /**
   * Decompresses one payload into `target` without undoing the predictor: the tile's content,
   * for readers that undo it only where they need pixels (decodePredictorRows), and the
   * dictionary of the deltas that reference it. `reference`: the content of a delta's
   * reference tile. Throws IntegrityError on a malformed payload or an unusable reference.
   */
  decompress(payload: Uint8Array, target: Uint8Array, reference?: Uint8Array): Uint8Array {
    if (target.length < this.#bytes) throw new RangeError(`Tile target must hold ${this.#bytes} bytes`)
    this.#dctx ??= new zstd.DCtx()
    let length: number
    try {
      if (reference === undefined) length = this.#dctx.decompress(target, payload)
      else {
        // §6.1: a reference whose content zstd would parse as a dictionary is never valid.
        if (reference.length !== this.#bytes || !isReferenceContent(reference)) throw new IntegrityError('Invalid reference tile')
        length = this.#dctx.decompressUsingDict(target, payload, reference)
      }
    } catch (cause) {
      if (cause instanceof IntegrityError) throw cause
      throw new IntegrityError('Tile payload is not a valid zstd frame', { cause })
    }
    if (length !== this.#bytes) throw new IntegrityError(`Tile payload decoded to ${length} bytes, expected ${this.#bytes}`)
    if (zstd.findFrameCompressedSize(payload) !== payload.length) throw new IntegrityError('Tile payload is not exactly one zstd frame')
    return target
  }
}

const coders = new Map<string, TileCoder>()

/**
 * This thread's coder of a shape and codec, kept for the next caller: the importer's
 * compression jobs and the crop engine's decoding share it, as neither awaits while using it.
 */
export function threadCoder(shape: TileShape, codec: TileCodec): TileCoder {
  const key = `${shape.tileSize}/${shape.channels}/${shape.bitsPerSample}/${codec.level}/${codec.predictor}`
  let coder = coders.get(key)
  if (coder === undefined) {
    coder = new TileCoder(shape, codec)
    coders.set(key, coder)
  }
  return coder
}

/** The first four bytes of a zstd dictionary (ZSTD_MAGIC_DICTIONARY, little-endian). */
const DICTIONARY_MAGIC = [0x37, 0xa4, 0x30, 0xec]

/**
 * Whether a tile's content can be a reference (spec/format.md §6.1): zstd-napi's dictionary
 * calls load in ZSTD_dct_auto mode, which would parse content starting with the dictionary
 * magic number as a trained dictionary instead of raw content; such tiles are stored plain
 * and never referenced, so every reader agrees on what a delta means.
 */
export function isReferenceContent(content: Uint8Array): boolean {
  return !(
    content[0] === DICTIONARY_MAGIC[0] &&
    content[1] === DICTIONARY_MAGIC[1] &&
    content[2] === DICTIONARY_MAGIC[2] &&
    content[3] === DICTIONARY_MAGIC[3]
  )
}

/**
 * Compresses `source` into one frame the way libtiff's ZSTD codec does (tif_zstd.c: a stream
 * begun with the level, the whole tile fed with ZSTD_compressStream, then ZSTD_endStream):
 * no pledged size, so the frame header has no content size and zstd picks the parameters of
 * an unknown-size stream. With the same libzstd, payloads are byte-identical to libtiff's.
 */
function streamFrame(cctx: ZstdCCtx, source: Uint8Array, out: Uint8Array): Uint8Array {
  cctx.reset(zstd.ResetDirective.sessionOnly)
  let produced = 0
  let consumed = 0
  while (consumed < source.length) {
    const [, wrote, read] = cctx.compressStream2(out.subarray(produced), source.subarray(consumed), zstd.EndDirective.continue)
    produced += wrote
    consumed += read
  }
  for (;;) {
    const [left, wrote] = cctx.compressStream2(out.subarray(produced), EMPTY, zstd.EndDirective.end)
    produced += wrote
    if (left === 0) break
    if (produced >= out.length) throw new RangeError('zstd output exceeded its bound')
  }
  return out.slice(0, produced)
}

const EMPTY = new Uint8Array(0)

/** The largest payload a tile of `shape` can have (zstd's compressBound of the tile bytes). */
export function maxPayloadBytes(shape: TileShape): number {
  return zstd.compressBound(tileBytes(shape))
}

/** One-shot zstd compression of arbitrary bytes (used by writers that re-encode). */
export function zstdCompress(data: Uint8Array, level: number): Uint8Array {
  const out = new Uint8Array(zstd.compressBound(data.length))
  const length = new zstd.CCtx().compress(out, data, level)
  return out.slice(0, length)
}

/** One-shot zstd decompression of a frame that records its content size. */
export function zstdDecompress(frame: Uint8Array, expectedSize?: number): Uint8Array {
  const size = expectedSize ?? zstd.getFrameContentSize(frame)
  if (size === null || size === undefined) throw new CorruptInputError('zstd frame does not record its size')
  const out = new Uint8Array(size)
  let length: number
  try {
    length = new zstd.DCtx().decompress(out, frame)
  } catch (cause) {
    throw new CorruptInputError('Invalid zstd data', { cause })
  }
  return length === size ? out : out.subarray(0, length)
}
