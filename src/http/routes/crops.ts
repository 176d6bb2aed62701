/**
 * Crops, exports and tiles: a region of a level in any output format of the facade's table
 * (OUTPUT_FORMATS), exactly as cropOutput produces it; one stored tile as its payload or
 * decoded. jpg and webp hold the whole raster, so they are bounded by the output limits.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { LimitError } from '../../errors.js'
import { COMPRESSIONS, type CropOutput, cropOutput, OUTPUT_FORMAT_NAMES, type Region, storedTile, type TesseraImage } from '../../image.js'
import type { HttpContext, Target } from '../context.js'
import { cropCost } from '../cost.js'
import { targetHeaders } from '../names.js'
import { boolParam, enumParam, intParam, queryOf, regionParam } from '../params.js'
import { cacheFor, etagFor, type Representation, requestSignal, send } from '../response.js'

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

/**
 * How to send a crop that the facade has prepared: under the output limits, in the lane its
 * cost chooses, with that cost reserved (spec/http.md §8), unless it only copies payloads.
 */
function cropRepresentation(
  ctx: HttpContext,
  target: Target,
  url: string,
  output: CropOutput,
  etag: string,
  compression: string | undefined,
): Representation {
  const { image } = target
  const { format, level, length, segments } = output
  const { width, height, x, y } = output.region
  const { maxWidth, maxHeight, maxArea } = ctx.limits
  if (format.inMemory && (width > maxWidth || height > maxHeight || width * height > maxArea)) {
    throw new LimitError(
      `A ${format.name} crop of ${width}x${height} exceeds the limits (maxWidth ${maxWidth}, maxHeight ${maxHeight}, maxArea ${maxArea}); use png or tiff`,
    )
  }
  const { manifest } = image
  const cost = cropCost({
    width,
    height,
    tileSize: manifest.tileSize,
    shape: { channels: manifest.channels, bitsPerSample: manifest.bitsPerSample },
    format: format.name,
    ...(format.compressions.length === 0 ? {} : { compression: compression ?? format.compressions[0]! }),
  })
  return {
    type: format.mediaType,
    cache: cacheFor(target, 'immutable'),
    etag,
    headers: {
      ...geometryHeaders(image, output.region, level),
      ...targetHeaders(target, url),
      'content-disposition': `inline; filename="${image.cid}-${level}-${x}-${y}-${width}-${height}.${format.extensions[0]}"`,
      'x-content-type-options': 'nosniff',
    },
    // Copied payloads: nothing to decode, one block at a time: no lane.
    ...(segments === undefined ? { work: { lane: ctx.laneFor(cost, !format.inMemory), memory: cost.memory } } : {}),
    body: () =>
      segments === undefined
        ? { kind: 'stream', ...(length === undefined ? {} : { length }), open: () => output.bytes() }
        : { kind: 'segments', length: length!, segments },
  }
}

/** An optional one of `choices`. */
function optional<T extends string>(value: string | undefined, name: string, choices: readonly T[]): T | undefined {
  return value === undefined ? undefined : enumParam(value, name, choices)
}

/** Registers crops, exports and tiles. */
export function registerCropRoutes(app: FastifyInstance, ctx: HttpContext): void {
  const crop = (withRegion: boolean) => async (request: FastifyRequest, reply: FastifyReply) => {
    const query = queryOf(request, ['level', 'format', 'compression', ...(withRegion ? ['region', 'clip'] : [])])
    const region = withRegion ? regionParam(query.region) : undefined
    const clip = boolParam(query.clip, 'clip')
    const level = intParam(query.level, 'level', 0, 64, 0)
    const format = enumParam(query.format, 'format', OUTPUT_FORMAT_NAMES, 'tiff')
    const compression = optional(query.compression, 'compression', COMPRESSIONS)
    const signal = requestSignal(reply)
    const target = await ctx.target((request.params as { cid: string }).cid, signal)
    const options = { level, format, clip, signal, tmpDir: ctx.tmpDir, ...(compression === undefined ? {} : { compression }) }
    const output = await cropOutput(target.image, region, options)
    const etag = etagFor(target.cid, 'crop', [output.region, level, format, compression ?? null])
    return send(request, reply, cropRepresentation(ctx, target, request.url, output, etag, compression), signal)
  }
  app.route({ method: ['GET', 'HEAD'], url: '/images/:cid/crop', handler: crop(true) })
  app.route({ method: ['GET', 'HEAD'], url: '/images/:cid/export', handler: crop(false) })

  app.route({
    method: ['GET', 'HEAD'],
    url: '/images/:cid/tiles/:level/:column/:row',
    handler: async (request, reply) => {
      const params = request.params as { cid: string; level: string; column: string; row: string }
      const query = queryOf(request, ['format', 'compression'])
      const format = optional(query.format, 'format', OUTPUT_FORMAT_NAMES)
      const compression = optional(query.compression, 'compression', COMPRESSIONS)
      const level = intParam(params.level, 'level', 0, 64)
      const column = intParam(params.column, 'column', 0, 2 ** 31)
      const row = intParam(params.row, 'row', 0, 2 ** 31)
      const signal = requestSignal(reply)
      const target = await ctx.target(params.cid, signal)
      const { image, cid } = target
      const tile = await storedTile(image, { level, column, row }, { signal })
      if (format !== undefined) {
        const options = { level, format, signal, tmpDir: ctx.tmpDir, ...(compression === undefined ? {} : { compression }) }
        const output = await cropOutput(image, tile.region, options)
        const etag = etagFor(cid, 'tile', [level, column, row, format, compression ?? null])
        return send(request, reply, cropRepresentation(ctx, target, request.url, output, etag, compression), signal)
      }
      const { codec, tileSize } = image.manifest
      const representation: Representation = {
        // RFC 8878 §7.1: application/zstd. The headers say how to decode it (spec/format.md §3).
        type: 'application/zstd',
        cache: cacheFor(target, 'immutable'),
        etag: etagFor(cid, 'tile', [level, column, row]),
        headers: {
          ...geometryHeaders(image, tile.region, level),
          ...targetHeaders(target, request.url),
          'x-tessera-tile-cid': tile.cid.toString(),
          'x-tessera-tile-size': String(tileSize),
          // A delta (spec/format.md §6.1) decodes only with its reference's content as the zstd dictionary.
          'x-tessera-codec': `zstd; level=${codec.level}; predictor=${codec.predictor}${tile.ref === undefined ? '' : '; delta'}`,
          ...(tile.ref === undefined ? {} : { 'x-tessera-tile-ref': tile.ref.toString() }),
          'x-tessera-byte-order': 'little-endian',
          'content-disposition': `attachment; filename="${tile.cid}.zst"`,
        },
        body: async () => ({ kind: 'bytes', bytes: await tile.read(signal) }),
      }
      return send(request, reply, representation, signal)
    },
  })
}
