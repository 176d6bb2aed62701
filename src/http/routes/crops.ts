/**
 * Crops, exports and tiles: a region of a level in the crop engine's formats (tiff, png, npy,
 * pam, ppm, pgm, raw), streamed band by band, plus jpg and webp (encoded with sharp, bounded
 * by the output limits); one stored tile as its payload or decoded.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { tileRange, validateRegion } from '../../crop/plan.js'
import { npyHeader } from '../../crop/writers/npy.js'
import { pnmHeader } from '../../crop/writers/pnm.js'
import { tiffGrid, tiffHead } from '../../crop/writers/tiff-layout.js'
import { LimitError, NotFoundError } from '../../errors.js'
import type { Region } from '../../format/interface.js'
import { pixelFormat } from '../../format/pixel.js'
import { tileBytes } from '../../format/tile-codec.js'
import { cropImage, type OutputFormat, resolveRegion, type TesseraImage, type TiffCompression } from '../../image.js'
import type { HttpContext } from '../context.js'
import { collect } from '../iiif/raster.js'
import { encodeRaster } from '../iiif/render.js'
import { boolParam, enumParam, intParam, queryOf, regionParam } from '../params.js'
import { type Body, etagFor, type Representation, requestSignal, type Segment, send } from '../response.js'

/** Formats of crops and decoded tiles. */
export const CROP_FORMATS = ['tiff', 'png', 'npy', 'pam', 'ppm', 'pgm', 'raw', 'jpg', 'webp'] as const
export type CropFormat = (typeof CROP_FORMATS)[number]

const MEDIA: Record<CropFormat, string> = {
  tiff: 'image/tiff',
  png: 'image/png',
  npy: 'application/x-npy',
  pam: 'image/x-portable-arbitrarymap',
  ppm: 'image/x-portable-pixmap',
  pgm: 'image/x-portable-graymap',
  raw: 'application/octet-stream',
  jpg: 'image/jpeg',
  webp: 'image/webp',
}

const EXTENSION: Record<CropFormat, string> = { ...Object.fromEntries(CROP_FORMATS.map((f) => [f, f])), tiff: 'tif', raw: 'bin' } as Record<
  CropFormat,
  string
>

/** How to cut and encode. */
export interface CropRequest {
  readonly region: Region
  readonly level: number
  readonly format: CropFormat
  readonly compression?: TiffCompression
  readonly quality?: number
}

/** Headers that describe the pixels of a crop (spec/http.md, Crops). */
function geometryHeaders(image: TesseraImage, region: Region, level: number): Record<string, string> {
  const { manifest } = image
  return {
    'x-tessera-region': `${region.x},${region.y},${region.width},${region.height}`,
    'x-tessera-level': String(level),
    'x-tessera-width': String(region.width),
    'x-tessera-height': String(region.height),
    'x-tessera-channels': String(manifest.channels),
    'x-tessera-color-model': manifest.colorModel,
    'x-tessera-bits-per-sample': String(manifest.bitsPerSample),
  }
}

/** The length of an output known before it is written (uncompressed formats), else undefined. */
async function knownLength(image: TesseraImage, request: CropRequest, icc: Uint8Array | undefined): Promise<number | undefined> {
  const { manifest } = image
  const { width, height } = request.region
  const format = pixelFormat(manifest.colorModel, manifest.bitsPerSample)
  const pixels = width * height * manifest.channels * (manifest.bitsPerSample / 8)
  const init = { width, height, format, ...(icc === undefined ? {} : { icc }) }
  switch (request.format) {
    case 'raw':
      return pixels
    case 'npy':
      return npyHeader(init).length + pixels
    case 'pam':
    case 'ppm':
    case 'pgm':
      return pnmHeader(init, request.format).length + pixels
    case 'tiff': {
      if (request.compression !== 'none') return undefined
      const tiff = {
        ...init,
        tileSize: manifest.tileSize,
        compression: 'none' as const,
        predictor: 1 as const,
        zstdLevel: manifest.codec.level,
      }
      const { count } = tiffGrid(tiff)
      const bytes = tileBytes({ tileSize: manifest.tileSize, channels: manifest.channels, bitsPerSample: manifest.bitsPerSample })
      return tiffHead(tiff, new Array<number>(count).fill(bytes)).length + count * bytes
    }
    default:
      return undefined
  }
}

/**
 * A TIFF whose tiles are the stored payloads (origin on the tile grid, zstd): laid out from
 * the index blocks alone, each payload read only when the response reaches it. The same bytes
 * as cropImage's verbatim path, but a range skips the payloads before it.
 */
async function verbatimTiff(image: TesseraImage, request: CropRequest, icc: Uint8Array | undefined, signal: AbortSignal) {
  const { manifest, reader } = image
  const { region, level } = request
  const tiles: Array<{ cid: import('../../format/block.js').CID; length: number }> = []
  const { firstColumn, lastColumn, firstRow, lastRow } = tileRange(region, manifest.tileSize)
  for (let row = firstRow; row <= lastRow; row++) {
    const index = await reader.tileRow(level, row, { signal })
    for (let column = firstColumn; column <= lastColumn; column++) tiles.push({ cid: index.tiles[column]!, length: index.lengths[column]! })
  }
  const head = tiffHead(
    {
      width: region.width,
      height: region.height,
      format: pixelFormat(manifest.colorModel, manifest.bitsPerSample),
      ...(icc === undefined ? {} : { icc }),
      tileSize: manifest.tileSize,
      compression: 'zstd',
      predictor: manifest.codec.predictor,
      zstdLevel: manifest.codec.level,
    },
    tiles.map((t) => t.length),
  )
  const segments: Segment[] = [{ length: head.length, read: () => head }]
  for (const tile of tiles) segments.push({ length: tile.length, read: (s) => reader.store.get(tile.cid, { signal: s }) })
  return { kind: 'segments' as const, length: segments.reduce((n, s) => n + s.length, 0), segments }
}

/** The representation of a crop of `image` (already validated against it). */
export async function cropRepresentation(
  ctx: HttpContext,
  image: TesseraImage,
  request: CropRequest,
  signal: AbortSignal,
  etag: string,
): Promise<Representation> {
  const { manifest } = image
  const { region, level, format } = request
  const ext = EXTENSION[format]
  const headers = {
    ...geometryHeaders(image, region, level),
    'content-disposition': `inline; filename="${image.cid}-${level}-${region.x}-${region.y}-${region.width}-${region.height}.${ext}"`,
    'x-content-type-options': 'nosniff',
  }
  const common = { type: MEDIA[format], cache: 'immutable' as const, etag, headers }
  const iccCid = manifest.metadata.icc
  const icc = iccCid === undefined ? undefined : await ctx.store.get(iccCid, { signal })
  if (format === 'jpg' || format === 'webp') {
    const { maxWidth, maxHeight, maxArea } = ctx.limits
    if (region.width > maxWidth || region.height > maxHeight || region.width * region.height > maxArea) {
      throw new LimitError(
        `A ${format} crop of ${region.width}x${region.height} exceeds the limits (maxWidth ${maxWidth}, maxHeight ${maxHeight}, maxArea ${maxArea}); use png or tiff`,
      )
    }
    return {
      ...common,
      queue: ctx.work,
      body: async (): Promise<Body> => {
        const shape = { width: region.width, height: region.height, channels: manifest.channels, bitsPerSample: manifest.bitsPerSample }
        const raster = await collect(image.reader.bands(region, { level, signal }), shape, signal)
        const bytes = await encodeRaster(raster, format, undefined)
        return { kind: 'bytes', bytes }
      },
    }
  }
  const compression = request.compression
  const aligned = region.x % manifest.tileSize === 0 && region.y % manifest.tileSize === 0
  if (format === 'tiff' && (compression ?? 'zstd') === 'zstd' && aligned) {
    // Payload copies: no decoding, so no slot in the work queue.
    return { ...common, body: () => verbatimTiff(image, request, icc, signal) }
  }
  const length = await knownLength(image, request, icc)
  return {
    ...common,
    queue: ctx.work,
    body: async (): Promise<Body> => {
      const bytes = await cropImage(image, region, {
        format: format as OutputFormat,
        level,
        signal,
        tmpDir: ctx.tmpDir,
        ...(compression === undefined ? {} : { compression }),
      })
      return { kind: 'stream', ...(length === undefined ? {} : { length }), open: () => bytes }
    },
  }
}

function cropQuery(request: FastifyRequest, withRegion: boolean) {
  const names = ['level', 'format', 'compression', ...(withRegion ? ['region', 'clip'] : [])]
  const query = queryOf(request, names)
  return {
    region: withRegion ? regionParam(query.region) : undefined,
    clip: boolParam(query.clip, 'clip'),
    level: intParam(query.level, 'level', 0, 64, 0),
    format: enumParam(query.format, 'format', CROP_FORMATS, 'tiff'),
    compression:
      query.compression === undefined ? undefined : enumParam(query.compression, 'compression', ['zstd', 'deflate', 'none'] as const),
  }
}

/** Registers crops, exports and tiles. */
export function registerCropRoutes(app: FastifyInstance, ctx: HttpContext): void {
  const crop = (withRegion: boolean) => async (request: FastifyRequest, reply: FastifyReply) => {
    const query = cropQuery(request, withRegion)
    const image = await ctx.openImage((request.params as { cid: string }).cid)
    const geometry = image.reader.level(query.level)
    const asked = query.region ?? { x: 0, y: 0, width: geometry.width, height: geometry.height }
    const region = resolveRegion(image, asked, { level: query.level, clip: query.clip })
    validateRegion(region, geometry.width, geometry.height)
    const signal = requestSignal(reply)
    const etag = etagFor(image.cid.toString(), 'crop', [region, query.level, query.format, query.compression ?? null])
    const cropRequest = {
      region,
      level: query.level,
      format: query.format,
      ...(query.compression ? { compression: query.compression } : {}),
    }
    return send(request, reply, await cropRepresentation(ctx, image, cropRequest, signal, etag), signal)
  }
  app.route({ method: ['GET', 'HEAD'], url: '/images/:cid/crop', handler: crop(true) })
  app.route({ method: ['GET', 'HEAD'], url: '/images/:cid/export', handler: crop(false) })

  app.route({
    method: ['GET', 'HEAD'],
    url: '/images/:cid/tiles/:level/:column/:row',
    handler: async (request, reply) => {
      const params = request.params as { cid: string; level: string; column: string; row: string }
      const query = queryOf(request, ['format', 'compression'])
      const level = intParam(params.level, 'level', 0, 64)
      const column = intParam(params.column, 'column', 0, 2 ** 31)
      const row = intParam(params.row, 'row', 0, 2 ** 31)
      const format = query.format === undefined ? undefined : enumParam(query.format, 'format', CROP_FORMATS)
      const compression =
        query.compression === undefined ? undefined : enumParam(query.compression, 'compression', ['zstd', 'deflate', 'none'] as const)
      const image = await ctx.openImage(params.cid)
      const { manifest, reader } = image
      if (level >= manifest.levels.length) throw new NotFoundError(`Level ${level} does not exist: the image has ${manifest.levels.length}`)
      const geometry = reader.level(level)
      if (column >= geometry.columns || row >= geometry.rows) {
        throw new NotFoundError(`Tile ${column},${row} does not exist: level ${level} has ${geometry.columns}x${geometry.rows} tiles`)
      }
      const T = manifest.tileSize
      const region = {
        x: column * T,
        y: row * T,
        width: Math.min(T, geometry.width - column * T),
        height: Math.min(T, geometry.height - row * T),
      }
      const signal = requestSignal(reply)
      const cid = image.cid.toString()
      if (format !== undefined) {
        const etag = etagFor(cid, 'tile', [level, column, row, format, compression ?? null])
        const cropRequest = { region, level, format, ...(compression ? { compression } : {}) }
        return send(request, reply, await cropRepresentation(ctx, image, cropRequest, signal, etag), signal)
      }
      const index = await reader.tileRow(level, row, { signal })
      const tile = index.tiles[column]!
      return send(
        request,
        reply,
        {
          // RFC 8878 §7.1: application/zstd. The headers say how to decode it (spec/format.md §3).
          type: 'application/zstd',
          cache: 'immutable',
          etag: etagFor(cid, 'tile', [level, column, row]),
          headers: {
            ...geometryHeaders(image, region, level),
            'x-tessera-tile-cid': tile.toString(),
            'x-tessera-tile-size': String(T),
            'x-tessera-codec': `zstd; level=${manifest.codec.level}; predictor=${manifest.codec.predictor}`,
            'x-tessera-byte-order': 'little-endian',
            'content-disposition': `attachment; filename="${tile}.zst"`,
          },
          body: async () => ({ kind: 'bytes', bytes: await ctx.store.get(tile, { signal }) }),
        },
        signal,
      )
    },
  })
}
