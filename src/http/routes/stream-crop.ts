/**
 * `POST /crop` (spec/http.md §5.4): a region of the image in the request body, cropped while
 * the body arrives, without importing it. One forward pass over the body (cropStream); the
 * response starts when the region's first rows have been decoded, and the server stops reading
 * the body once the region's last row has gone by. Nothing is stored.
 */
import { Readable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { LimitError } from '../../errors.js'
import { COMPRESSIONS, OUTPUT_FORMAT_NAMES } from '../../image.js'
import { cropStream, type StreamCrop } from '../../stream/index.js'
import { flowing } from '../body.js'
import type { Cost, HttpContext } from '../context.js'
import { cropCost, readBytes } from '../cost.js'
import { boolParam, enumParam, intParam, queryOf, regionParam } from '../params.js'
import { type Representation, requestSignal, send } from '../response.js'

/** The body's chunks, at most `max` bytes of them (413 past it), paused rather than destroyed when the scan stops. */
async function* bounded(body: Readable, max: number, idleTimeout: number, signal: AbortSignal): AsyncGenerator<Buffer> {
  let received = 0
  for await (const chunk of flowing(body, idleTimeout, signal)) {
    received += chunk.length
    if (received > max) throw new LimitError(`The body exceeds the ${max}-byte upload limit`)
    yield chunk
  }
}

/**
 * What a stream crop costs: rows of the input are decoded from the top to the region's last row
 * (its pixels read), and the decoder holds a band of the input's full width (at most a 256-row
 * tile row or strip: the TIFF and CAR decoders refuse larger ones, the PNG decoder holds two
 * rows), besides what a crop of the region itself holds.
 */
function streamCropCost(crop: StreamCrop, format: string, compression: string | undefined): Cost {
  const { image } = crop
  const region = crop.outputs[0]!.region
  const shape = { channels: image.format.channels, bitsPerSample: image.format.bitsPerSample }
  const output = cropCost({
    width: region.width,
    height: region.height,
    tileSize: 256,
    shape,
    format,
    ...(compression === undefined ? {} : { compression }),
  })
  const rows = Math.min(image.height, region.y + region.height)
  return {
    memory: output.memory + readBytes(image.width, rows, 256, shape),
    pixels: image.width * rows + region.width * region.height,
  }
}

/** Registers `POST /crop`. */
export function registerStreamCropRoutes(app: FastifyInstance, ctx: HttpContext): void {
  app.route({
    // PUT too, as for uploads: `curl -T FILE` streams a file with PUT.
    method: ['POST', 'PUT'],
    url: '/crop',
    config: { errors: 'upload' },
    handler: async (request, reply) => {
      const query = queryOf(request, ['region', 'format', 'compression', 'clip', 'level'])
      const region = regionParam(query.region)
      const clip = boolParam(query.clip, 'clip')
      const level = intParam(query.level, 'level', 0, 64, 0)
      const format = enumParam(query.format, 'format', OUTPUT_FORMAT_NAMES, 'tiff')
      const compression = query.compression === undefined ? undefined : enumParam(query.compression, 'compression', COMPRESSIONS)
      const max = ctx.limits.maxUploadBytes
      const declared = request.headers['content-length']
      // Whatever happens, the rest of the body is not read: the connection cannot carry another
      // request (node would otherwise read and discard the rest of the upload to keep it alive).
      reply.header('connection', 'close')
      if (declared !== undefined && Number(declared) > max) {
        throw new LimitError(`The body of ${declared} bytes exceeds the ${max}-byte upload limit`)
      }
      const body = request.body instanceof Readable ? request.body : request.raw
      const signal = requestSignal(reply)
      // Reads the header only: the pixels are decoded as the response is read, in its lane. The
      // pixel limit is `tessera crop`'s, not the uploads' lower one: nothing is spooled or stored,
      // and the lane bounds the memory and the work.
      const crop = await cropStream(bounded(body, max, ctx.limits.bodyTimeout, signal), [region], {
        format,
        clip,
        level,
        signal,
        tmpDir: ctx.tmpDir,
        ...(compression === undefined ? {} : { compression }),
      })
      try {
        const output = crop.outputs[0]!
        const { width, height, x, y } = output.region
        const { maxWidth, maxHeight, maxArea } = ctx.limits
        if (output.format.inMemory && (width > maxWidth || height > maxHeight || width * height > maxArea)) {
          throw new LimitError(
            `A ${format} crop of ${width}x${height} exceeds the limits (maxWidth ${maxWidth}, maxHeight ${maxHeight}, maxArea ${maxArea}); use png or tiff`,
          )
        }
        const cost = streamCropCost(crop, format, compression)
        const { image } = crop
        const representation: Representation = {
          type: output.format.mediaType,
          cache: 'no-store',
          ranges: false,
          headers: {
            'x-tessera-region': `${x},${y},${width},${height}`,
            'x-tessera-level': String(level),
            'x-tessera-width': String(width),
            'x-tessera-height': String(height),
            'x-tessera-channels': String(image.format.channels),
            'x-tessera-color-model': image.format.colorModel,
            'x-tessera-bits-per-sample': String(image.format.bitsPerSample),
            'x-tessera-source-format': image.sourceFormat,
            'content-disposition': `inline; filename="crop-${x}-${y}-${width}-${height}.${output.format.extensions[0]}"`,
            'x-content-type-options': 'nosniff',
          },
          work: { lane: ctx.laneFor(cost, !output.format.inMemory), memory: cost.memory },
          body: () => ({ kind: 'stream', ...(output.length === undefined ? {} : { length: output.length }), open: () => output.bytes() }),
        }
        return await send(request, reply, representation, signal)
      } catch (error) {
        await crop.close(error)
        throw error
      }
    },
  })
}
