/**
 * The facade every front end uses (CLI, HTTP): open a store, import, open an image by CID,
 * crop or export it in any output format, describe it and verify it.
 */
import { tmpdir } from 'node:os'
import { type CropStats, ImageReader } from './crop/engine.js'
import { clipRegion, validateRegion } from './crop/plan.js'
import type { OutputFormat, RasterInit, TiffCompression } from './crop/writers/interface.js'
import { writeNpy } from './crop/writers/npy.js'
import { writePng } from './crop/writers/png.js'
import { writePnm } from './crop/writers/pnm.js'
import { writeRaw } from './crop/writers/raw.js'
import { writeTiffFromBands, writeTiffFromPayloads } from './crop/writers/tiff.js'
import { InvalidArgumentError, InvalidCidError, InvalidRegionError, NotFoundError, TesseraError } from './errors.js'
import { type CID, DAG_CBOR, parseCid, RAW } from './format/block.js'
import { levelGeometry } from './format/grid.js'
import type { Region } from './format/interface.js'
import { decodeManifest, decodeTileRow, type ImageManifest } from './format/manifest.js'
import { pixelFormat } from './format/pixel.js'
import type { ImportOptions, ImportResult } from './import/importer.js'
import type { AbortOptions, BlockStore } from './store/interface.js'
import { defaultStoreDir } from './store/location.js'
import { openPackStore, type PackStoreInit } from './store/pack-store.js'

export { type CropStats, emptyStats } from './crop/engine.js'
export type { OutputFormat, TiffCompression } from './crop/writers/interface.js'
export type { Region } from './format/interface.js'
export { DEFAULT_MAX_PIXELS } from './import/limits.js'
export type { BlockStore } from './store/interface.js'
export type { ImportOptions, ImportResult }
export { defaultStoreDir }

/**
 * Imports the image file at `path` into `store`, returning its CID (see ImportOptions).
 * The importer (and sharp, which it loads) is loaded on first use: crops never need it.
 */
export async function importImage(store: BlockStore, path: string, options?: ImportOptions): Promise<ImportResult> {
  const importer = await import('./import/importer.js')
  return importer.importImage(store, path, options)
}

/** Opens the embedded store in `dir` (default: defaultStoreDir()). */
export function openStore(dir: string = defaultStoreDir(), init?: PackStoreInit): Promise<BlockStore> {
  return openPackStore(dir, init)
}

/** An image opened from a store: its CID, manifest and a reader. */
export interface TesseraImage {
  readonly cid: CID
  readonly manifest: ImageManifest
  readonly reader: ImageReader
}

/** Opens the image whose root is `cid` (a CID or its string form). */
export async function openImage(store: BlockStore, cid: CID | string, options?: AbortOptions): Promise<TesseraImage> {
  const root = typeof cid === 'string' ? parseCid(cid) : cid
  if (root.code !== DAG_CBOR) throw new InvalidCidError(`${root} is not an image root (expected a dag-cbor CID)`)
  const manifest = decodeManifest(await store.get(root, options))
  return { cid: root, manifest, reader: new ImageReader(store, manifest) }
}

/** How to crop. */
export interface CropOptions extends AbortOptions {
  /** Output file format (default tiff). */
  readonly format?: OutputFormat
  /** Pyramid level (default 0). */
  readonly level?: number
  /** tiff: zstd (default), deflate or none; png: deflate (default) or none. */
  readonly compression?: TiffCompression
  /** Clip a region that extends past the image instead of failing (default false). */
  readonly clip?: boolean
  /** Incremented with the blocks read. */
  readonly stats?: CropStats
  /** Where large TIFF re-encodes spool (default the OS temp dir). */
  readonly tmpDir?: string
}

/** The region actually cropped: `region` validated, or clipped when `clip` is set. */
export function resolveRegion(image: TesseraImage, region: Region, options: CropOptions = {}): Region {
  if (options.clip !== true) return region
  const { width, height } = image.reader.level(options.level ?? 0)
  const clipped = clipRegion(region, width, height)
  if (clipped === undefined)
    throw new InvalidRegionError(
      `Region ${region.x},${region.y},${region.width},${region.height} does not intersect the ${width}x${height} image`,
    )
  return clipped
}

/**
 * Crops `region` (of `options.level`) to an output file's bytes, streamed. A TIFF whose
 * origin lies on the tile grid copies the stored payloads without decompressing them.
 */
export async function cropImage(image: TesseraImage, region: Region, options: CropOptions = {}): Promise<AsyncIterable<Uint8Array>> {
  const format = options.format ?? 'tiff'
  const level = options.level ?? 0
  const target = resolveRegion(image, region, options)
  const { manifest, reader } = image
  // Validate before returning: callers open their output only once this has succeeded.
  const { width, height } = reader.level(level)
  validateRegion(target, width, height)
  const icc = manifest.metadata.icc === undefined ? undefined : await reader.store.get(manifest.metadata.icc, options)
  const init: RasterInit = {
    width: target.width,
    height: target.height,
    format: pixelFormat(manifest.colorModel, manifest.bitsPerSample),
    ...(icc === undefined ? {} : { icc }),
  }
  const readOptions = { level, signal: options.signal, stats: options.stats }
  switch (format) {
    case 'tiff': {
      const compression = options.compression ?? 'zstd'
      const tiff = {
        ...init,
        tileSize: manifest.tileSize,
        compression,
        predictor: compression === 'none' ? (1 as const) : manifest.codec.predictor,
        zstdLevel: manifest.codec.level,
      }
      const aligned = target.x % manifest.tileSize === 0 && target.y % manifest.tileSize === 0
      if (compression === 'zstd' && aligned) {
        const { lengths, payloads } = await reader.payloads(target, readOptions)
        return writeTiffFromPayloads(tiff, lengths, payloads)
      }
      return writeTiffFromBands(tiff, reader.bands(target, readOptions), { tmpDir: options.tmpDir ?? tmpdir(), signal: options.signal })
    }
    case 'png': {
      const compression = options.compression ?? 'deflate'
      if (compression !== 'deflate' && compression !== 'none')
        throw new InvalidArgumentError(`PNG compression must be deflate or none, not ${compression}`)
      return writePng(init, reader.bands(target, readOptions), { compression })
    }
    case 'npy':
      return writeNpy(init, reader.bands(target, readOptions))
    case 'pam':
    case 'ppm':
    case 'pgm':
      return writePnm(init, reader.bands(target, readOptions), format)
    case 'raw':
      return writeRaw(init, reader.bands(target, readOptions))
    default:
      throw new InvalidArgumentError(`Unknown output format ${String(format)}`)
  }
}

/** The whole image (of `options.level`) as an output file's bytes. */
export function exportImage(image: TesseraImage, options: CropOptions = {}): Promise<AsyncIterable<Uint8Array>> {
  const { width, height } = image.reader.level(options.level ?? 0)
  return cropImage(image, { x: 0, y: 0, width, height }, { ...options, clip: false })
}

/** A description of a stored image. */
export interface ImageInfo {
  readonly cid: string
  readonly width: number
  readonly height: number
  readonly colorModel: string
  readonly channels: number
  readonly bitsPerSample: number
  readonly tileSize: number
  readonly codec: { name: string; level: number; predictor: number }
  readonly levels: Array<{ width: number; height: number; columns: number; rows: number; tiles: number; tileBytes: number }>
  readonly source?: { format: string; name?: string }
  readonly icc?: string
  /** Bytes of every distinct block reachable from the root (tiles shared within the image count once). */
  readonly storedBytes: number
  /** Number of distinct blocks reachable from the root. */
  readonly blocks: number
  /** Uncompressed pixel bytes of level 0. */
  readonly pixelBytes: number
}

/** Describes an image, reading its index blocks (not its tiles). */
export async function imageInfo(image: TesseraImage, options?: AbortOptions): Promise<ImageInfo> {
  const { manifest, reader } = image
  const seen = new Map<string, number>()
  seen.set(image.cid.toString(), (await reader.store.size(image.cid, options)) ?? 0)
  if (manifest.metadata.icc) seen.set(manifest.metadata.icc.toString(), (await reader.store.size(manifest.metadata.icc, options)) ?? 0)
  const levels = []
  for (let level = 0; level < manifest.levels.length; level++) {
    const entry = manifest.levels[level]!
    const geometry = levelGeometry(entry.width, entry.height, manifest.tileSize)
    let tileBytes = 0
    for (let row = 0; row < geometry.rows; row++) {
      const rowCid = entry.rows[row]!
      const index = await reader.tileRow(level, row, options)
      seen.set(rowCid.toString(), (await reader.store.size(rowCid, options)) ?? 0)
      for (let i = 0; i < index.tiles.length; i++) {
        seen.set(index.tiles[i]!.toString(), index.lengths[i]!)
        tileBytes += index.lengths[i]!
      }
    }
    levels.push({ ...geometry, tiles: geometry.columns * geometry.rows, tileBytes })
  }
  let storedBytes = 0
  for (const size of seen.values()) storedBytes += size
  return {
    cid: image.cid.toString(),
    width: manifest.width,
    height: manifest.height,
    colorModel: manifest.colorModel,
    channels: manifest.channels,
    bitsPerSample: manifest.bitsPerSample,
    tileSize: manifest.tileSize,
    codec: { ...manifest.codec },
    levels,
    ...(manifest.metadata.source ? { source: { ...manifest.metadata.source } } : {}),
    ...(manifest.metadata.icc ? { icc: manifest.metadata.icc.toString() } : {}),
    storedBytes,
    blocks: seen.size,
    pixelBytes: manifest.width * manifest.height * manifest.channels * (manifest.bitsPerSample / 8),
  }
}

/** A problem found by verifyImage. */
export interface VerifyProblem {
  readonly cid: string
  readonly code: string
  readonly message: string
}

/** Result of verifyImage. */
export interface VerifyResult {
  readonly blocks: number
  readonly bytes: number
  readonly problems: VerifyProblem[]
}

/**
 * Re-hashes every block reachable from the image root: root, ICC profile, every index block
 * and every tile of every level. Keeps going past bad blocks and reports each one.
 */
export async function verifyImage(store: BlockStore, cid: CID | string, options?: AbortOptions): Promise<VerifyResult> {
  const problems: VerifyProblem[] = []
  let blocks = 0
  let bytes = 0
  const seen = new Set<string>()
  const check = async (block: CID): Promise<Uint8Array | undefined> => {
    const key = block.toString()
    if (seen.has(key)) return undefined
    seen.add(key)
    try {
      const data = await store.get(block, options)
      blocks++
      bytes += data.length
      return data
    } catch (error) {
      if (!(error instanceof TesseraError)) throw error
      problems.push({ cid: key, code: error.code, message: error.message })
      return undefined
    }
  }
  const root = typeof cid === 'string' ? parseCid(cid) : cid
  if (root.code !== DAG_CBOR) throw new InvalidCidError(`${root} is not an image root (expected a dag-cbor CID)`)
  if (!(await store.has(root, options))) throw new NotFoundError(`Image ${root} not found`)
  const rootBytes = await check(root)
  if (rootBytes === undefined) return { blocks, bytes, problems }
  const manifest = decodeManifest(rootBytes)
  if (manifest.metadata.icc) await check(manifest.metadata.icc)
  const reader = new ImageReader(store, manifest)
  for (let level = 0; level < manifest.levels.length; level++) {
    const { entry, columns } = reader.level(level)
    for (const rowCid of entry.rows) {
      const rowBytes = await check(rowCid)
      if (rowBytes === undefined) continue
      const index = decodeTileRow(rowBytes, columns)
      for (const tile of index.tiles) if (tile.code === RAW) await check(tile)
    }
  }
  return { blocks, bytes, problems }
}
