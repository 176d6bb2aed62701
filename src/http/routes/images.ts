/**
 * Images: the list of stored images, one image's manifest as JSON (IPLD links as
 * `{"/": cid}`), its description, and uploads (POST or PUT a body to import it).
 */
import { type FileHandle, open, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { InvalidArgumentError, LimitError } from '../../errors.js'
import { imageInfo, importImage, manifestJson } from '../../image.js'
import { flowing, uploadDir } from '../body.js'
import type { HttpContext } from '../context.js'
import { busy } from '../errors.js'
import { targetHeaders } from '../names.js'
import { boolParam, enumParam, intParam, queryOf } from '../params.js'
import type { Budget, Release } from '../queue.js'
import { cacheFor, etagFor, requestSignal, send } from '../response.js'

const JSON_TYPE = 'application/json; charset=utf-8'

/**
 * Links to an image's other representations, relative to the server root; `identifier` (a CID,
 * or a dataset entry's name, which the links then follow) as one URL-encoded segment.
 */
export function imageLinks(cid: string, identifier: string = cid) {
  const id = encodeURIComponent(identifier)
  return {
    manifest: `/images/${id}`,
    info: `/images/${id}/info`,
    iiif: `/iiif/3/${id}/info.json`,
    presentation: `/iiif/3/${id}/manifest`,
    view: `/view/${id}`,
    // The CAR holds blocks, which only a CID names.
    car: `/ipfs/${cid}?format=car`,
  }
}

/** An upload's file name: what the manifest records as `source.name` (spec/format.md §5). */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/

/**
 * Bodies under this are compressed on the main thread: starting the importer's threads costs
 * more time and memory than compressing what such a body holds (its entropy, roughly).
 */
const INLINE_IMPORT_BYTES = 1 << 20

/** Spool reservations grow by at least this much: not one per chunk. */
const SPOOL_STEP = 1 << 20

/** What receiving an upload needs. */
interface ReceiveOptions {
  /** Largest body: LimitError (413) past it. */
  readonly max: number
  /** The Content-Length, when the client gave one. */
  readonly declared: number | undefined
  /** Longest pause between two chunks of the body: 408 ERR_TIMEOUT past it. */
  readonly idleTimeout: number
  /** Bytes of upload bodies on disk: 503 ERR_BUSY when this one does not fit. */
  readonly spool: Budget
  readonly signal: AbortSignal
}

/**
 * Writes the request body to `path` (created with the first byte) and returns the release of
 * its spool reservation and its length. Nothing waits for an import turn while the body
 * arrives: a client that stalls holds its socket and what it sent, no one else's turn
 * (spec/http.md §4.4). On failure the request stream is left undestroyed, so that the error
 * still reaches the client.
 */
async function receive(body: Readable, path: string, options: ReceiveOptions): Promise<{ release: Release; bytes: number }> {
  const { max, declared, spool } = options
  const held: Release[] = []
  const release = () => {
    for (const r of held) r()
  }
  let reserved = 0
  /** Reserves `bytes` more, or `ahead` when that fits (fewer reservations for a body without a length). */
  const reserve = (bytes: number, ahead: number) => {
    for (const amount of ahead > bytes ? [ahead, bytes] : [bytes]) {
      const granted = spool.tryAcquire(amount)
      if (granted !== undefined) {
        held.push(granted)
        reserved += amount
        return
      }
    }
    throw busy(1, 'Too many uploads are being received')
  }
  let file: FileHandle | undefined
  try {
    if (declared !== undefined && declared > 0) reserve(declared, declared)
    let received = 0
    for await (const chunk of flowing(body, options.idleTimeout, options.signal)) {
      received += chunk.length
      if (received > max) throw new LimitError(`The body exceeds the ${max}-byte upload limit`)
      if (received > reserved) reserve(received - reserved, Math.min(SPOOL_STEP, max - reserved, spool.capacity))
      file ??= await open(path, 'wx')
      await file.write(chunk)
    }
    // An empty body is an empty file: the importer refuses it with its own code.
    file ??= await open(path, 'wx')
    return { release, bytes: received }
  } catch (error) {
    release()
    throw error
  } finally {
    await file?.close()
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
      const signal = requestSignal(reply)
      const target = await ctx.target((request.params as { cid: string }).cid, signal)
      const { image, cid } = target
      return send(
        request,
        reply,
        {
          type: JSON_TYPE,
          cache: cacheFor(target, 'immutable'),
          etag: etagFor(cid, 'manifest'),
          headers: { link: `<${imageLinks(cid, target.identifier).iiif}>; rel="service"`, ...targetHeaders(target, request.url) },
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
      const signal = requestSignal(reply)
      const target = await ctx.target((request.params as { cid: string }).cid, signal)
      const { image, cid } = target
      return send(
        request,
        reply,
        {
          type: JSON_TYPE,
          cache: cacheFor(target, 'immutable'),
          // The links follow the identifier: a name's document differs from its CID's.
          etag: etagFor(cid, 'info', target.named ? [target.identifier] : undefined),
          headers: targetHeaders(target, request.url),
          body: async () => {
            const info = await imageInfo(image, { signal })
            return { kind: 'bytes', bytes: Buffer.from(JSON.stringify({ ...info, links: imageLinks(cid, target.identifier) })) }
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
        zstdLevel: query.zstdLevel === 'auto' ? ('auto' as const) : intParam(query.zstdLevel, 'zstdLevel', 1, 22, 3),
        predictor: autoOr(enumParam(query.predictor, 'predictor', ['1', '2', 'auto'], '2')),
      }
      const max = ctx.limits.maxUploadBytes
      const declared = request.headers['content-length']
      if (declared !== undefined && Number(declared) > max) {
        throw new LimitError(`The body of ${declared} bytes exceeds the ${max}-byte upload limit`)
      }
      const body = request.body instanceof Readable ? request.body : request.raw
      const signal = requestSignal(reply)
      const dir = await uploadDir(ctx.tmpDir)
      let result: Awaited<ReturnType<typeof importImage>>
      try {
        const path = join(dir, name)
        // The body first, then a turn in the import queue: only a received body waits for one.
        let spooled: { release: Release; bytes: number }
        try {
          spooled = await receive(body, path, {
            max,
            declared: declared === undefined ? undefined : Number(declared),
            idleTimeout: ctx.limits.bodyTimeout,
            spool: ctx.uploadSpool,
            signal,
          })
        } catch (error) {
          // What is left of the body will not be read: the connection cannot carry another request.
          reply.header('connection', 'close')
          throw error
        }
        try {
          result = await ctx.imports.run(
            () =>
              importImage(ctx.store, path, {
                ...options,
                maxPixels: ctx.limits.maxUploadPixels,
                tmpDir: ctx.tmpDir,
                signal,
                ...(label === undefined ? {} : { label }),
                workers: ctx.importWorkers ?? (spooled.bytes < INLINE_IMPORT_BYTES ? 0 : undefined),
              }),
            signal,
          )
        } finally {
          spooled.release()
        }
      } finally {
        await rm(dir, { recursive: true, force: true })
      }
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

/** `auto`, or the predictor number. */
function autoOr(value: '1' | '2' | 'auto'): 1 | 2 | 'auto' {
  return value === 'auto' ? value : (Number(value) as 1 | 2)
}
