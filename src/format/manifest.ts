/**
 * The image manifest (spec/format.md, Manifest; schema in spec/schema.ipldsch): a root block
 * naming the pixel format, tile grid, codec and pyramid levels, and one index block per tile
 * row listing that row's tile CIDs and payload lengths.
 */
import { IntegrityError } from '../errors.js'
import { type Block, type CID, cborBlock, DAG_CBOR, decodeCbor, RAW } from './block.js'
import { fieldChecks } from './fields.js'
import { pyramidSizes } from './grid.js'
import type { BitDepth, ColorModel, TileCodec } from './interface.js'

const { invalid, record, int, link } = fieldChecks('manifest')

/** Format version of images whose tiles are all plain (`tessera` field): what every reader reads. */
export const FORMAT_VERSION = 1

/**
 * Format version of images with at least one delta tile (spec/format.md §6.1). A reader of
 * version 1 alone refuses these roots ("Unsupported format version 2") instead of decoding a
 * delta as a plain tile; images without deltas keep version 1, so their CIDs do not change.
 */
export const DELTA_FORMAT_VERSION = 2

/** The format versions this reader decodes. */
const VERSIONS: readonly number[] = [FORMAT_VERSION, DELTA_FORMAT_VERSION]

/** Where an image came from. */
export interface SourceInfo {
  /** Input format as detected at import: png, jpeg, tiff, webp, pnm, ... */
  readonly format: string
  /** File name without directories, if known. */
  readonly name?: string
}

/** Descriptive metadata; none of it affects pixels. */
export interface ImageMetadata {
  readonly source?: SourceInfo
  /** Raw block holding the embedded ICC profile. */
  readonly icc?: CID
  /** The image this one was derived from (ipld-image design). */
  readonly derivedFrom?: CID
  /** The canonical version of this image (ipld-image design). */
  readonly canonicalVersion?: CID
}

/** One pyramid level: its size and one index block per tile row. */
export interface LevelEntry {
  readonly width: number
  readonly height: number
  readonly rows: readonly CID[]
}

/** The decoded root block of an image. */
export interface ImageManifest {
  readonly tessera: number
  readonly width: number
  readonly height: number
  readonly colorModel: ColorModel
  readonly channels: 1 | 2 | 3 | 4
  readonly bitsPerSample: BitDepth
  readonly tileSize: number
  readonly codec: TileCodec
  readonly levels: readonly LevelEntry[]
  readonly metadata: ImageMetadata
}

/** The decoded index block of one tile row. */
export interface TileRowIndex {
  readonly tiles: readonly CID[]
  readonly lengths: readonly number[]
  /**
   * Per tile, the plain tile its payload is a delta against, or null for a plain tile
   * (spec/format.md §6.1); absent when every tile of the row is plain.
   */
  readonly refs?: ReadonlyArray<CID | null>
}

/** Encodes a tile row index block (`refs` only when a tile of the row is a delta). */
export function encodeTileRow(row: TileRowIndex): Block {
  if (row.refs?.some((ref) => ref !== null)) {
    return cborBlock({ tiles: row.tiles, lengths: row.lengths, refs: row.refs })
  }
  return cborBlock({ tiles: row.tiles, lengths: row.lengths })
}

/** Encodes an image root block (keys are sorted by dag-cbor; absent options are omitted). */
export function encodeManifest(manifest: ImageManifest): Block {
  const metadata: Record<string, unknown> = {}
  const m = manifest.metadata
  if (m.source !== undefined) {
    metadata.source = m.source.name === undefined ? { format: m.source.format } : { format: m.source.format, name: m.source.name }
  }
  if (m.icc !== undefined) metadata.icc = m.icc
  if (m.derivedFrom !== undefined) metadata.derivedFrom = m.derivedFrom
  if (m.canonicalVersion !== undefined) metadata.canonicalVersion = m.canonicalVersion
  return cborBlock({
    tessera: manifest.tessera,
    width: manifest.width,
    height: manifest.height,
    colorModel: manifest.colorModel,
    channels: manifest.channels,
    bitsPerSample: manifest.bitsPerSample,
    tileSize: manifest.tileSize,
    codec: { name: manifest.codec.name, level: manifest.codec.level, predictor: manifest.codec.predictor },
    levels: manifest.levels.map((level) => ({ width: level.width, height: level.height, rows: level.rows })),
    metadata,
  })
}

const CHANNELS = { gray: 1, graya: 2, rgb: 3, rgba: 4 } as const

/** Decodes and validates an image root block. Throws IntegrityError if it is not one. */
export function decodeManifest(bytes: Uint8Array): ImageManifest {
  const value = record(decodeCbor(bytes), 'image root')
  const tessera = int(value.tessera, 'tessera', 1)
  if (!VERSIONS.includes(tessera)) {
    throw new IntegrityError(
      `Unsupported format version ${tessera}: this Tessera reads versions ${VERSIONS.join(' and ')}; a newer one wrote it`,
    )
  }
  const width = int(value.width, 'width', 1)
  const height = int(value.height, 'height', 1)
  const colorModel = value.colorModel
  if (typeof colorModel !== 'string' || !(colorModel in CHANNELS)) throw invalid('colorModel')
  const channels = int(value.channels, 'channels', 1, 4) as 1 | 2 | 3 | 4
  if (CHANNELS[colorModel as ColorModel] !== channels) throw invalid('channels')
  const bitsPerSample = int(value.bitsPerSample, 'bitsPerSample', 8, 16)
  if (bitsPerSample !== 8 && bitsPerSample !== 16) throw invalid('bitsPerSample')
  const tileSize = int(value.tileSize, 'tileSize', 16, 4096)
  if (tileSize % 16 !== 0) throw invalid('tileSize')
  const codecValue = record(value.codec, 'codec')
  if (codecValue.name !== 'zstd') throw invalid('codec.name')
  const predictor = int(codecValue.predictor, 'codec.predictor', 1, 2) as 1 | 2
  const codec: TileCodec = { name: 'zstd', level: int(codecValue.level, 'codec.level', 1, 22), predictor }
  if (!Array.isArray(value.levels)) throw invalid('levels')
  const expected = pyramidSizes(width, height, tileSize)
  if (value.levels.length < 1 || value.levels.length > expected.length) throw invalid('levels')
  const levels = value.levels.map((entry: unknown, index: number): LevelEntry => {
    const level = record(entry, `levels[${index}]`)
    const [w, h] = expected[index]!
    if (level.width !== w || level.height !== h) throw invalid(`levels[${index}] size`)
    if (!Array.isArray(level.rows) || level.rows.length !== Math.ceil(h / tileSize)) throw invalid(`levels[${index}].rows`)
    return { width: w, height: h, rows: level.rows.map((row: unknown) => link(row, DAG_CBOR, `levels[${index}].rows`)) }
  })
  const meta = record(value.metadata ?? {}, 'metadata')
  const metadata: {
    source?: SourceInfo
    icc?: CID
    derivedFrom?: CID
    canonicalVersion?: CID
  } = {}
  if (meta.source !== undefined) {
    const source = record(meta.source, 'metadata.source')
    if (typeof source.format !== 'string') throw invalid('metadata.source.format')
    if (source.name !== undefined && typeof source.name !== 'string') throw invalid('metadata.source.name')
    metadata.source = source.name === undefined ? { format: source.format } : { format: source.format, name: source.name }
  }
  if (meta.icc !== undefined) metadata.icc = link(meta.icc, RAW, 'metadata.icc')
  if (meta.derivedFrom !== undefined) metadata.derivedFrom = link(meta.derivedFrom, DAG_CBOR, 'metadata.derivedFrom')
  if (meta.canonicalVersion !== undefined) {
    metadata.canonicalVersion = link(meta.canonicalVersion, DAG_CBOR, 'metadata.canonicalVersion')
  }
  return { tessera, width, height, colorModel: colorModel as ColorModel, channels, bitsPerSample, tileSize, codec, levels, metadata }
}

/**
 * Decodes and validates a tile row index block with `columns` tiles of an image of format
 * `version` (refs are refused in version 1; undefined: either).
 */
export function decodeTileRow(bytes: Uint8Array, columns: number, version?: number): TileRowIndex {
  const value = record(decodeCbor(bytes), 'tile row index')
  if (!Array.isArray(value.tiles) || value.tiles.length !== columns) throw invalid('tiles')
  if (!Array.isArray(value.lengths) || value.lengths.length !== columns) throw invalid('lengths')
  const tiles = value.tiles.map((tile: unknown) => link(tile, RAW, 'tiles'))
  const lengths = value.lengths.map((length: unknown) => int(length, 'lengths', 1, 1 << 20))
  if (value.refs === undefined) return { tiles, lengths }
  if (version === FORMAT_VERSION || !Array.isArray(value.refs) || value.refs.length !== columns) throw invalid('refs')
  let deltas = 0
  const refs = value.refs.map((ref: unknown, i: number) => {
    if (ref === null) return null
    const cid = link(ref, RAW, 'refs')
    // §6.1: a tile is never its own reference (it could not be decoded).
    if (cid.equals(tiles[i]!)) throw invalid('refs')
    deltas++
    return cid
  })
  // §6.1: `refs` is written only when the row has a delta, so that each row has one encoding.
  if (deltas === 0) throw invalid('refs')
  return { tiles, lengths, refs }
}
