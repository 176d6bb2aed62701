/**
 * The viewer: `/view/{cid}` (an HTML page), its script, and OpenSeadragon's script and button
 * images from the installed npm package. Static files come from a table built at start-up
 * from that package's directory: a request names a key of the table, never a path.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { NotFoundError } from '../../errors.js'
import type { HttpContext } from '../context.js'
import { enumParam, queryOf } from '../params.js'
import { etagFor, requestSignal, send } from '../response.js'
import { VIEWER_SCRIPT, viewerPage } from '../viewer/page.js'

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
      const image = await ctx.openImage((request.params as { cid: string }).cid)
      const signal = requestSignal(reply)
      const cid = image.cid.toString()
      const { width, height, levels } = image.manifest
      return send(
        request,
        reply,
        {
          type: 'text/html; charset=utf-8',
          cache: 'revalidate',
          etag: etagFor(cid, 'view', [VIEWER_SCRIPT, drawer ?? null]),
          headers: { 'content-security-policy': CSP, 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer' },
          body: () => ({
            kind: 'bytes',
            bytes: Buffer.from(viewerPage(cid, { width, height, levels: levels.length, ...(drawer === undefined ? {} : { drawer }) })),
          }),
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
