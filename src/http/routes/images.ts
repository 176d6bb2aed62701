/**
 * Images: the list of stored images, one image's manifest as JSON (IPLD links as
 * `{"/": cid}`), its description, and uploads (POST or PUT a body to import it).
 */
import { mkdtemp, open, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { InvalidArgumentError, LimitError } from '../../errors.js'
import { imageInfo, importImage, manifestJson } from '../../image.js'
import type { HttpContext } from '../context.js'
import { boolParam, enumParam, intParam, queryOf } from '../params.js'
import { etagFor, requestSignal, send } from '../response.js'

const JSON_TYPE = 'application/json; charset=utf-8'

/** Links to an image's other representations, relative to the server root. */
export function imageLinks(cid: string) {
  return {
    manifest: `/images/${cid}`,
    info: `/images/${cid}/info`,
    iiif: `/iiif/3/${cid}/info.json`,
    view: `/view/${cid}`,
    car: `/ipfs/${cid}?format=car`,
  }
}

/** An upload's file name: what the manifest records as `source.name` (spec/format.md §5). */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/

/**
 * Writes the request body to `path`, failing with LimitError past `max` bytes. On failure the
 * request stream is left undestroyed, so that the 413 still reaches the client.
 */
async function receive(body: Readable, path: string, max: number, signal: AbortSignal): Promise<void> {
  const file = await open(path, 'w')
  try {
    let received = 0
    for await (const chunk of body.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
      signal.throwIfAborted()
      received += chunk.length
      if (received > max) throw new LimitError(`The body exceeds the ${max}-byte upload limit`)
      await file.write(chunk)
    }
  } finally {
    await file.close()
  }
}

/** Registers the image routes. */
export function registerImageRoutes(app: FastifyInstance, ctx: HttpContext): void {
  app.route({
    method: ['GET', 'HEAD'],
    url: '/images',
    handler: async (request, reply) => {
      queryOf(request, [])
      const signal = requestSignal(reply)
      return send(
        request,
        reply,
        {
          type: JSON_TYPE,
          cache: 'no-store',
          body: async () => {
            const images = []
            for await (const pin of ctx.store.pins({ signal })) {
              const cid = pin.cid.toString()
              images.push({ cid, label: pin.label, added: new Date(pin.added).toISOString(), ...imageLinks(cid) })
            }
            return { kind: 'bytes', bytes: Buffer.from(JSON.stringify({ images })) }
          },
        },
        signal,
      )
    },
  })

  app.route({
    method: ['GET', 'HEAD'],
    url: '/images/:cid',
    handler: async (request, reply) => {
      queryOf(request, [])
      const image = await ctx.openImage((request.params as { cid: string }).cid)
      const signal = requestSignal(reply)
      const cid = image.cid.toString()
      return send(
        request,
        reply,
        {
          type: JSON_TYPE,
          cache: 'immutable',
          etag: etagFor(cid, 'manifest'),
          headers: { link: `<${imageLinks(cid).iiif}>; rel="service"` },
          body: async () => ({ kind: 'bytes', bytes: Buffer.from(JSON.stringify(await manifestJson(image, { signal }))) }),
        },
        signal,
      )
    },
  })

  app.route({
    method: ['GET', 'HEAD'],
    url: '/images/:cid/info',
    handler: async (request, reply) => {
      queryOf(request, [])
      const image = await ctx.openImage((request.params as { cid: string }).cid)
      const signal = requestSignal(reply)
      const cid = image.cid.toString()
      return send(
        request,
        reply,
        {
          type: JSON_TYPE,
          cache: 'immutable',
          etag: etagFor(cid, 'info'),
          body: async () => {
            const info = await imageInfo(image, { signal })
            return { kind: 'bytes', bytes: Buffer.from(JSON.stringify({ ...info, links: imageLinks(cid) })) }
          },
        },
        signal,
      )
    },
  })

  app.route({
    method: ['POST', 'PUT'],
    url: '/images',
    config: { errors: 'upload' },
    handler: async (request, reply) => {
      const query = queryOf(request, ['name', 'label', 'pyramid', 'tileSize', 'zstdLevel', 'predictor'])
      const name = query.name ?? 'upload'
      if (!NAME.test(name) || name.includes('..')) {
        throw new InvalidArgumentError('name must be 1-100 letters, digits, dots, dashes or underscores, starting with a letter or digit')
      }
      const label = query.label
      if (label !== undefined && label.length > 200) throw new InvalidArgumentError('label must be at most 200 characters')
      const options = {
        pyramid: boolParam(query.pyramid, 'pyramid'),
        tileSize: intParam(query.tileSize, 'tileSize', 16, 4096, 256),
        zstdLevel: intParam(query.zstdLevel, 'zstdLevel', 1, 22, 3),
        predictor: Number(enumParam(query.predictor, 'predictor', ['1', '2'], '2')) as 1 | 2,
      }
      const max = ctx.limits.maxUploadBytes
      const declared = request.headers['content-length']
      if (declared !== undefined && Number(declared) > max) {
        throw new LimitError(`The body of ${declared} bytes exceeds the ${max}-byte upload limit`)
      }
      const body = request.body instanceof Readable ? request.body : request.raw
      const signal = requestSignal(reply)
      // Queued before the body is read: a waiting upload stays in the socket, not on disk.
      const result = await ctx.imports.run(async () => {
        const dir = await mkdtemp(join(ctx.tmpDir, 'tessera-upload-'))
        try {
          const path = join(dir, name)
          await receive(body, path, max, signal)
          return await importImage(ctx.store, path, {
            ...options,
            maxPixels: ctx.limits.maxUploadPixels,
            tmpDir: ctx.tmpDir,
            signal,
            ...(label === undefined ? {} : { label }),
            ...(ctx.importWorkers === undefined ? {} : { workers: ctx.importWorkers }),
          })
        } finally {
          await rm(dir, { recursive: true, force: true })
        }
      }, signal)
      const cid = result.cid.toString()
      const m = result.manifest
      reply
        .code(result.newBytes > 0 ? 201 : 200)
        .header('location', `/images/${cid}`)
        .header('content-type', JSON_TYPE)
        .header('cache-control', 'no-store')
      return {
        cid,
        width: m.width,
        height: m.height,
        colorModel: m.colorModel,
        bitsPerSample: m.bitsPerSample,
        levels: m.levels.length,
        newBytes: result.newBytes,
        ...imageLinks(cid),
      }
    },
  })
}
