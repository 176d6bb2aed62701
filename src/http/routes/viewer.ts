/**
 * The viewer: `/view/{identifier}` (an HTML page: one image, or a dataset's frames), its script,
 * and OpenSeadragon's script and button images from the installed npm package. Static files
 * come from a table built at start-up from that package's directory: a request names a key of
 * the table, never a path.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { NotFoundError } from '../../errors.js'
import type { HttpContext } from '../context.js'
import { viewDepth } from '../names.js'
import { enumParam, queryOf } from '../params.js'
import { cacheFor, etagFor, requestSignal, send } from '../response.js'
import { VIEWER_SCRIPT, type ViewerSubject, viewerPage } from '../viewer/page.js'

const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "base-uri 'none'",
  "frame-ancestors 'self'",
].join('; ')

interface Asset {
  readonly type: string
  readonly bytes: Uint8Array
  readonly etag: string
}

/** OpenSeadragon's files, read once: `openseadragon.min.js` and `images/*.png`. */
function openSeadragonAssets(): Map<string, Asset> {
  const require = createRequire(import.meta.url)
  const main = require.resolve('openseadragon')
  const dir = dirname(main)
  const version = (require('openseadragon/package.json') as { version: string }).version
  const assets = new Map<string, Asset>()
  const add = (name: string, path: string, type: string) =>
    assets.set(name, { type, bytes: readFileSync(path), etag: `"openseadragon-${version}-${name.replace(/[^a-z0-9.]/gi, '_')}"` })
  add('openseadragon.min.js', join(dir, 'openseadragon.min.js'), 'text/javascript; charset=utf-8')
  for (const file of readdirSync(join(dir, 'images'))) {
    if (/^[a-z_]+\.png$/.test(file)) add(`images/${file}`, join(dir, 'images', file), 'image/png')
  }
  return assets
}

/** Registers the viewer routes. */
export function registerViewerRoutes(app: FastifyInstance, ctx: HttpContext): void {
  const assets = openSeadragonAssets()
  assets.set('viewer.js', {
    type: 'text/javascript; charset=utf-8',
    bytes: Buffer.from(VIEWER_SCRIPT),
    etag: etagFor('viewer', 'js', VIEWER_SCRIPT),
  })

  app.route({
    method: ['GET', 'HEAD'],
    url: '/view/:cid',
    handler: async (request, reply) => {
      const query = queryOf(request, ['drawer'])
      const drawer = query.drawer === undefined ? undefined : enumParam(query.drawer, 'drawer', ['auto', 'webgl', 'canvas', 'html'])
      const signal = requestSignal(reply)
      const resolved = await ctx.resolve((request.params as { cid: string }).cid, signal)
      const subject: ViewerSubject =
        resolved.kind === 'image'
          ? {
              kind: 'image',
              width: resolved.target.image.manifest.width,
              height: resolved.target.image.manifest.height,
              levels: resolved.target.image.manifest.levels.length,
            }
          : { kind: 'dataset', version: resolved.dataset.cid }
      const target = resolved.kind === 'image' ? resolved.target : resolved.dataset
      // Links are relative to the page, so the server may sit under a path prefix: they climb
      // out of as many segments as the client's URL spent on the identifier.
      const depth = viewDepth(request.originalUrl)
      const page = viewerPage(target.identifier, subject, { root: '../'.repeat(depth), ...(drawer === undefined ? {} : { drawer }) })
      return send(
        request,
        reply,
        {
          type: 'text/html; charset=utf-8',
          cache: cacheFor(target, 'revalidate'),
          etag: etagFor(target.cid, 'view', [VIEWER_SCRIPT, drawer ?? null, target.identifier, depth]),
          headers: { 'content-security-policy': CSP, 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer' },
          body: () => ({ kind: 'bytes', bytes: Buffer.from(page) }),
        },
        signal,
      )
    },
  })

  const serveAsset = (name: string) => async (request: FastifyRequest, reply: FastifyReply) => {
    queryOf(request, [])
    const asset = assets.get(name)
    if (asset === undefined) throw new NotFoundError(`No viewer file ${JSON.stringify(name.slice(0, 60))}`)
    const signal = requestSignal(reply)
    return send(
      request,
      reply,
      {
        type: asset.type,
        cache: 'revalidate',
        etag: asset.etag,
        headers: { 'x-content-type-options': 'nosniff' },
        body: () => ({ kind: 'bytes', bytes: asset.bytes }),
      },
      signal,
    )
  }
  app.route({
    method: ['GET', 'HEAD'],
    url: '/viewer/:file',
    handler: (request, reply) => serveAsset((request.params as { file: string }).file)(request, reply),
  })
  app.route({
    method: ['GET', 'HEAD'],
    url: '/viewer/images/:file',
    handler: (request, reply) => serveAsset(`images/${(request.params as { file: string }).file}`)(request, reply),
  })
}
