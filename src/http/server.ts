/**
 * The Tessera HTTP server (spec/http.md): a fastify application over one open store. Routes
 * live in routes/; this file wires them with the cross-cutting pieces: timeouts for slow
 * clients, CORS, raw upload bodies, the one error handler, and the 404 for unknown routes.
 */

import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { NotFoundError } from '../errors.js'
import { retainDeflateThreads } from '../image.js'
import { tesseraVersion } from '../version.js'
import { HttpContext, type ServerInit } from './context.js'
import { type ErrorContext, errorResponse } from './errors.js'
import { rewriteNamedUrl } from './names.js'
import { registerCropRoutes } from './routes/crops.js'
import { registerIiifRoutes } from './routes/iiif.js'
import { registerImageRoutes } from './routes/images.js'
import { registerIpfsRoutes } from './routes/ipfs.js'
import { registerPresentationRoutes } from './routes/presentation.js'
import { registerStreamCropRoutes } from './routes/stream-crop.js'
import { registerViewerRoutes } from './routes/viewer.js'
import { watchSend } from './send-timeout.js'

export { defaultLimits, type HttpLimits, type ServerInit } from './context.js'

const EXPOSED_HEADERS = [
  'Accept-Ranges',
  'Content-Disposition',
  'Content-Length',
  'Content-Location',
  'Content-Range',
  'ETag',
  'Link',
  'Location',
  'Retry-After',
  'X-Ipfs-Path',
  'X-Ipfs-Roots',
  'X-Tessera-Bits-Per-Sample',
  'X-Tessera-Byte-Order',
  'X-Tessera-Channels',
  'X-Tessera-Codec',
  'X-Tessera-Color-Model',
  'X-Tessera-Height',
  'X-Tessera-Level',
  'X-Tessera-Region',
  'X-Tessera-Source-Format',
  'X-Tessera-Tile-Cid',
  'X-Tessera-Tile-Ref',
  'X-Tessera-Tile-Size',
  'X-Tessera-Width',
].join(', ')

/** Headers an error response must not inherit from the representation it replaced. */
const REPRESENTATION_HEADERS = ['etag', 'content-length', 'content-range', 'accept-ranges', 'content-disposition', 'link', 'vary']

/** The one place errors become responses (spec/http.md, Errors). */
function replyError(error: unknown, request: FastifyRequest, reply: FastifyReply): undefined {
  const config = request.routeOptions?.config as { errors?: ErrorContext } | undefined
  const response = errorResponse(error, config?.errors ?? 'default')
  if (response.statusCode >= 500 && response.statusCode !== 503) request.log.error({ err: error }, 'request failed')
  else request.log.info({ code: response.body.code, statusCode: response.statusCode }, response.body.message)
  if (reply.raw.headersSent) {
    // The body has started: the only honest signal left is an incomplete response.
    reply.raw.destroy()
    return undefined
  }
  for (const name of REPRESENTATION_HEADERS) reply.removeHeader(name)
  reply
    .code(response.statusCode)
    .headers({ ...response.headers, 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' })
    .send(response.body)
  // Not the reply: fastify would treat it as a promise of one and wait on the response's end
  // with listeners of its own, one set per error, on top of the route's.
  return undefined
}

/** Builds the server (not listening: call `listen`, or `inject` in tests). The caller closes the store. */
export async function createServer(init: ServerInit): Promise<FastifyInstance> {
  const ctx = new HttpContext(init)
  const { headersTimeout, sendTimeout, maxConnections } = ctx.limits
  const app = Fastify({
    logger: init.logger ?? false,
    // Slow clients (spec/http.md §8): the header section must arrive within headersTimeout
    // (node answers 408 and closes; it checks every connectionsCheckingInterval); a body may take
    // as long as it keeps flowing (the upload route times out pauses), so there is no deadline
    // for the whole request; a response waits at most sendTimeout for its client (onSend below).
    http: {
      headersTimeout,
      requestTimeout: 0,
      connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(headersTimeout / 4))),
    },
    requestTimeout: 0,
    connectionTimeout: 0,
    // CIDs are at most 128 characters (spec/format.md §4), but an identifier may also be a
    // dataset entry's name (up to 4096 bytes of UTF-8, spec/dataset.md §3, then percent-encoded
    // for the router's length check): anything up to this reaches the identifier parser and gets
    // its error; longer is a 414. Node's 16 KiB header limit bounds the whole URL anyway.
    routerOptions: { maxParamLength: 8192 },
    // `/images/NAME/a/b.png/...` and `/view/NAME/a/b.png`: the entry's path as one segment (names.ts).
    rewriteUrl: (request) => rewriteNamedUrl(request.url ?? '/'),
    exposeHeadRoutes: false,
    return503OnClosing: true,
    // Malformed URLs and over-long parameters get the same JSON errors as everything else.
    frameworkErrors: (error, request, reply) => {
      reply.header('access-control-allow-origin', '*')
      replyError(error, request, reply)
    },
  })

  app.server.maxConnections = maxConnections
  // PNG and deflate TIFF outputs deflate on the process's worker threads (started on first use),
  // not libuv's pool, whose threads contend with this one: 16 concurrent 512x512 PNG crops ran at
  // 1.24x the requests/s (bench/README.md, HTTP server).
  const releaseDeflate = retainDeflateThreads()
  app.addHook('onClose', async () => releaseDeflate())

  // A response whose client takes none of its bytes for sendTimeout is abandoned (send-timeout.ts).
  app.addHook('onSend', async (_request, reply, payload) => {
    watchSend(reply.raw, sendTimeout)
    return payload
  })

  // Upload bodies are streamed to a file by the route itself, whatever their type.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, payload, done) => done(null, payload))

  // IIIF Image API 3.0 §7.1 and the trustless gateway: any origin may read (no credentials).
  app.addHook('onRequest', async (_request, reply) => {
    reply.header('access-control-allow-origin', '*')
    reply.header('access-control-expose-headers', EXPOSED_HEADERS)
  })
  app.options('*', async (request, reply) => {
    const requested = request.headers['access-control-request-headers']
    return reply
      .code(204)
      .header('access-control-allow-methods', 'GET, HEAD, POST, PUT, OPTIONS')
      .header(
        'access-control-allow-headers',
        typeof requested === 'string' ? requested : 'Accept, Content-Type, If-None-Match, If-Range, Range',
      )
      .header('access-control-max-age', '86400')
      .send()
  })

  app.setErrorHandler(replyError)
  app.setNotFoundHandler(async (request) => {
    throw new NotFoundError(`No route ${request.method} ${request.url.split('?')[0]!.slice(0, 200)}`)
  })

  app.route({
    method: ['GET', 'HEAD'],
    url: '/',
    handler: async (_request, reply) => {
      reply.header('cache-control', 'no-store')
      return {
        service: 'tessera',
        version: tesseraVersion(),
        images: '/images',
        iiif: '/iiif/3/{cid}/info.json',
        presentation: '/iiif/3/{cid|NAME}/manifest',
        ipfs: '/ipfs/{cid}?format=raw|car',
        view: '/view/{cid}',
        spec: 'spec/http.md',
      }
    },
  })
  registerImageRoutes(app, ctx)
  registerCropRoutes(app, ctx)
  registerStreamCropRoutes(app, ctx)
  registerIiifRoutes(app, ctx)
  registerPresentationRoutes(app, ctx)
  registerIpfsRoutes(app, ctx)
  registerViewerRoutes(app, ctx)
  return app
}
