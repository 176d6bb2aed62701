/**
 * IIIF Image API 3.0, compliance level 2 (https://iiif.io/api/image/3.0/), under
 * `/iiif/3/{identifier}` where the identifier is an image CID: the base URI redirect (§2),
 * image information with the JSON-LD media type (§5.1), and image requests (§4).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { formatOfExtension, type TesseraImage } from '../../image.js'
import type { HttpContext } from '../context.js'
import { parseImageRequest, resolveRequest, type SizeLimits } from '../iiif/params.js'
import { IIIF_CONTEXT, IIIF_PROFILE, imageInformation, renderCost, renderImage } from '../iiif/render.js'
import { queryOf } from '../params.js'
import { cacheControl, cacheFor, etagFor, requestSignal, send } from '../response.js'

/** The prefix of every IIIF route. */
export const IIIF_PREFIX = '/iiif/3'

const LD_JSON = `application/ld+json;profile="${IIIF_CONTEXT}"`
const PROFILE_LINK = `<${IIIF_PROFILE}>;rel="profile"`

/** The absolute URL of `path` on this server: the configured public URL, else the request's own origin. */
export function absoluteUrl(ctx: HttpContext, request: FastifyRequest, path: string): string {
  return `${ctx.publicUrl ?? `${request.protocol}://${request.host}`}${path}`
}

/**
 * §5.1: JSON-LD unless the client asks for plain JSON and not JSON-LD. Parameters such as
 * `profile` may follow the media type; q=0 excludes it.
 */
function wantsPlainJson(accept: string | undefined): boolean {
  if (accept === undefined) return false
  const ranges = accept.split(',').map((part) => {
    const [type, ...params] = part.split(';').map((s) => s.trim().toLowerCase())
    const q = params.find((p) => p.startsWith('q='))
    return { type, q: q === undefined ? 1 : Number(q.slice(2)) }
  })
  const qOf = (type: string) => Math.max(0, ...ranges.filter((r) => r.type === type).map((r) => r.q))
  return qOf('application/json') > 0 && qOf('application/ld+json') === 0
}

/** Registers the IIIF routes. */
export function registerIiifRoutes(app: FastifyInstance, ctx: HttpContext): void {
  const config = { errors: 'iiif' }
  const limits = (image: TesseraImage): SizeLimits => ctx.iiifLimits(image)

  // §2: the base URI SHOULD lead to the image information, RECOMMENDED by a 303.
  for (const url of [`${IIIF_PREFIX}/:id`, `${IIIF_PREFIX}/:id/`]) {
    app.route({
      method: ['GET', 'HEAD'],
      url,
      config,
      handler: async (request, reply) => {
        const target = await ctx.target((request.params as { id: string }).id)
        return reply
          .code(303)
          .header('location', absoluteUrl(ctx, request, `${IIIF_PREFIX}/${encodeURIComponent(target.identifier)}/info.json`))
          .header('cache-control', cacheControl(cacheFor(target, 'immutable')))
          .send()
      },
    })
  }

  app.route({
    method: ['GET', 'HEAD'],
    url: `${IIIF_PREFIX}/:id/info.json`,
    config,
    handler: async (request, reply) => {
      queryOf(request, [])
      const signal = requestSignal(reply)
      const target = await ctx.target((request.params as { id: string }).id, signal)
      const { image, cid } = target
      // §9: the identifier as one URL-encoded segment (a name's slashes as %2F), whatever
      // escaping the request used: the validator checks that `id` is the URL it asked for.
      const id = absoluteUrl(ctx, request, `${IIIF_PREFIX}/${encodeURIComponent(target.identifier)}`)
      const info = imageInformation(image, id, limits(image), { manifestUrl: absoluteUrl(ctx, request, `/images/${cid}`) })
      const plain = wantsPlainJson(request.headers.accept)
      return send(
        request,
        reply,
        {
          type: plain ? 'application/json' : LD_JSON,
          // The document also depends on the base URL and the limits: revalidated, not immutable.
          cache: cacheFor(target, 'revalidate'),
          etag: etagFor(cid, 'iiif-info', [id, plain, limits(image)]),
          headers: { link: PROFILE_LINK, vary: 'Accept' },
          body: () => ({ kind: 'bytes', bytes: Buffer.from(JSON.stringify(info)) }),
        },
        signal,
      )
    },
  })

  app.route({
    method: ['GET', 'HEAD'],
    url: `${IIIF_PREFIX}/:id/:region/:size/:rotation/:quality`,
    config,
    handler: async (request, reply) => {
      const p = request.params as { id: string; region: string; size: string; rotation: string; quality: string }
      queryOf(request, [])
      // §4: every parameter is checked before the image is even looked up.
      const parsed = parseImageRequest(p.region, p.size, p.rotation, p.quality)
      const signal = requestSignal(reply)
      const target = await ctx.target(p.id, signal)
      const { image, cid } = target
      const resolved = resolveRequest(parsed, image.manifest.width, image.manifest.height, limits(image))
      const cost = renderCost(image, resolved)
      const canonical = absoluteUrl(ctx, request, `${IIIF_PREFIX}/${encodeURIComponent(target.identifier)}/${resolved.canonical}`)
      return send(
        request,
        reply,
        {
          type: formatOfExtension(resolved.format)!.mediaType,
          cache: cacheFor(target, 'immutable'),
          // The size too: what `max` means depends on the limits.
          etag: etagFor(cid, 'iiif', [resolved.canonical, resolved.width, resolved.height]),
          headers: {
            link: `<${canonical}>;rel="canonical", ${PROFILE_LINK}`,
            'x-content-type-options': 'nosniff',
          },
          work: { lane: ctx.laneFor(cost, false), memory: cost.memory },
          body: async () => ({ kind: 'chunks', chunks: await renderImage(image, resolved, signal) }),
        },
        signal,
      )
    },
  })
}
