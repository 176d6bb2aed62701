/**
 * IIIF Presentation API 3.0 under `/iiif/3/{identifier}` (spec/http.md, Presentation):
 * `manifest` for an image (one Canvas) or for a dataset or directory (every entry under it, in
 * name order, one Canvas each; over PAGE_SIZE entries, a Collection of Manifests of PAGE_SIZE
 * entries, `?page=N`), and `collection` for a dataset or directory (its subdirectories as
 * Collections, its entries as Manifests). Identifiers as for the Image API: a CID, or a
 * URL-encoded `NAME`, `NAME/path` or `VERSION-CID/path`.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { listDirectory } from '../../dataset/dataset.js'
import type { DatasetEntry } from '../../dataset/interface.js'
import { iterateEntries, NodeCache } from '../../dataset/tree.js'
import { InvalidArgumentError, NotFoundError } from '../../errors.js'
import { openImage } from '../../image.js'
import type { DatasetTarget, HttpContext, Target } from '../context.js'
import { type CanvasImage, type CollectionItem, collection, entriesManifest, imageManifest, PAGE_SIZE } from '../iiif/presentation.js'
import { intParam, queryOf } from '../params.js'
import { cacheFor, etagFor, requestSignal, send } from '../response.js'
import { absoluteUrl, IIIF_PREFIX } from './iiif.js'

/** JSON-LD with the Presentation context as its profile (Presentation API 3.0 §6.1). */
const LD_JSON = 'application/ld+json;profile="http://iiif.io/api/presentation/3/context.json"'

/** Images a dataset Manifest opens at once (each a root block read). */
const OPEN_CONCURRENCY = 16

/** Maps `items` through `fn`, at most `limit` at a time, keeping their order. */
async function mapLimit<T, U>(items: readonly T[], limit: number, fn: (item: T) => Promise<U>): Promise<U[]> {
  const out = new Array<U>(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i]!)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return out
}

/** `identifier`'s path segment. */
const segment = (identifier: string) => encodeURIComponent(identifier)

/** The identifier of `path` inside the dataset `dataset` names: by name if it was named so, else by version CID. */
function inside(dataset: DatasetTarget, path: string): string {
  return `${dataset.name ?? dataset.cid}/${path}`
}

/** What a dataset document says it is: `shots`, `shots/2025`, `bafy.../2025`. */
function labelOf(dataset: DatasetTarget): string {
  const base = dataset.name ?? dataset.cid
  return dataset.path === undefined ? base : `${base}/${dataset.path}`
}

/** One pass over the entries under a dataset's path: how many, each page's first and last name, and the entries of one page. */
async function scanEntries(ctx: HttpContext, dataset: DatasetTarget, page: number | undefined, signal: AbortSignal) {
  const prefix = dataset.path === undefined ? '' : `${dataset.path}/`
  const pages: Array<{ first: string; last: string }> = []
  const selected: DatasetEntry[] = []
  let count = 0
  for await (const entry of iterateEntries(new NodeCache(ctx.store), dataset.version.entries, { prefix, signal })) {
    const p = Math.floor(count / PAGE_SIZE)
    if (pages[p] === undefined) pages[p] = { first: entry.name, last: entry.name }
    else pages[p]!.last = entry.name
    if (page === undefined ? count < PAGE_SIZE : p === page - 1) selected.push(entry)
    count++
  }
  if (count === 0 && dataset.path !== undefined)
    throw new NotFoundError(`No entry or directory ${JSON.stringify(dataset.path)} in ${dataset.name ?? dataset.cid}`)
  // A Manifest must have a Canvas (Presentation 3.0 §5.3): an empty dataset has no Manifest.
  if (count === 0) throw new NotFoundError(`Dataset ${dataset.name ?? dataset.cid} has no images`)
  return { count, pages, selected }
}

/** Registers the Presentation API routes. */
export function registerPresentationRoutes(app: FastifyInstance, ctx: HttpContext): void {
  const config = { errors: 'iiif' }
  const url = (request: FastifyRequest, path: string) => absoluteUrl(ctx, request, path)

  /** A Canvas source for `image`, whose service is named by CID, whatever the document was asked by. */
  const canvasImage = (request: FastifyRequest, image: Target['image'], label: string): CanvasImage => ({
    image,
    service: url(request, `${IIIF_PREFIX}/${image.cid}`),
    limits: ctx.iiifLimits(image),
    label,
  })

  /** The limits of the server that every document's sizes depend on (ETags vary with them). */
  const serverLimits = () => {
    const { maxWidth, maxHeight, maxArea, heavyMemoryBudget, upscaling } = ctx.limits
    return [maxWidth, maxHeight, maxArea, heavyMemoryBudget, upscaling]
  }

  /** What both documents' routes start from: `?page`, the identifier, what it resolves to, and the documents' base path. */
  const documentRequest = async (request: FastifyRequest, reply: FastifyReply) => {
    const query = queryOf(request, ['page'])
    const page = query.page === undefined ? undefined : intParam(query.page, 'page', 1, 2 ** 31)
    const signal = requestSignal(reply)
    const identifier = (request.params as { id: string }).id
    const resolved = await ctx.resolve(identifier, signal)
    return { page, signal, identifier, base: `${IIIF_PREFIX}/${segment(identifier)}`, resolved }
  }

  const sendJson = (
    request: FastifyRequest,
    reply: FastifyReply,
    signal: AbortSignal,
    target: { readonly named: boolean; readonly cid: string },
    kind: string,
    params: unknown,
    build: () => Promise<unknown> | unknown,
  ) =>
    send(
      request,
      reply,
      {
        type: LD_JSON,
        // Sizes and URLs depend on the server's limits and base URL: revalidated, not immutable.
        cache: cacheFor(target, 'revalidate'),
        etag: etagFor(target.cid, kind, [request.url, request.host, ctx.publicUrl ?? null, serverLimits(), params]),
        body: async () => ({ kind: 'bytes', bytes: Buffer.from(JSON.stringify(await build())) }),
      },
      signal,
    )

  app.route({
    method: ['GET', 'HEAD'],
    url: `${IIIF_PREFIX}/:id/manifest`,
    config,
    handler: async (request, reply) => {
      const { page, signal, identifier, base, resolved } = await documentRequest(request, reply)
      if (resolved.kind === 'image') {
        const { target } = resolved
        if (page !== undefined) throw new InvalidArgumentError('page applies to the Manifest of a dataset, not of one image')
        const label = target.identifier.includes('/') ? target.identifier.slice(target.identifier.indexOf('/') + 1) : labelForImage(target)
        return sendJson(request, reply, signal, target, 'presentation-image', null, () =>
          imageManifest(
            {
              id: url(request, `${base}/manifest`),
              homepage: url(request, `/view/${segment(identifier)}`),
              manifestJson: url(request, `/images/${target.cid}`),
            },
            url(request, `${base}/canvas/1`),
            canvasImage(request, target.image, label),
          ),
        )
      }
      const { dataset } = resolved
      return sendJson(request, reply, signal, dataset, 'presentation-dataset', page ?? null, async () => {
        const { count, pages, selected } = await scanEntries(ctx, dataset, page, signal)
        const label = labelOf(dataset)
        const home = url(request, `/view/${segment(identifier)}`)
        const manifestUrl = url(request, `${base}/manifest`)
        if (page !== undefined && page > Math.max(1, pages.length)) {
          throw new NotFoundError(`No page ${page}: ${label} has ${pages.length} page(s) of ${PAGE_SIZE} entries`)
        }
        if (page === undefined && count > PAGE_SIZE) {
          // Too many for one Manifest: a Collection of its pages (Presentation 3.0 §5.2).
          const items: CollectionItem[] = pages.map((p, i) => ({
            id: `${manifestUrl}?page=${i + 1}`,
            type: 'Manifest',
            label: `${label}: ${i * PAGE_SIZE + 1}–${Math.min(count, (i + 1) * PAGE_SIZE)} (${p.first} – ${p.last})`,
          }))
          return collection(
            { id: manifestUrl, homepage: home, label, summary: `${count} images in ${pages.length} manifests of up to ${PAGE_SIZE}` },
            items,
          )
        }
        const images = await mapLimit(selected, OPEN_CONCURRENCY, async (entry) => {
          const image = await openImage(ctx.store, entry.image, { signal })
          return canvasImage(request, image, entry.name)
        })
        const first = ((page ?? 1) - 1) * PAGE_SIZE + 1
        const paged = page !== undefined && count > PAGE_SIZE
        return entriesManifest(
          {
            id: page === undefined ? manifestUrl : `${manifestUrl}?page=${page}`,
            homepage: home,
            label: paged ? `${label}: ${first}–${first + images.length - 1}` : label,
            summary: `${paged ? `${images.length} of ` : ''}${count} images, dataset version ${dataset.cid}`,
            ...(paged ? { partOf: { id: manifestUrl, label } } : {}),
          },
          url(request, `${base}/canvas`),
          first,
          images,
        )
      })
    },
  })

  app.route({
    method: ['GET', 'HEAD'],
    url: `${IIIF_PREFIX}/:id/collection`,
    config,
    handler: async (request, reply) => {
      const { page, signal, identifier, base, resolved } = await documentRequest(request, reply)
      if (resolved.kind === 'image') throw new InvalidArgumentError(`${identifier} is an image: its document is ${base}/manifest`)
      const { dataset } = resolved
      return sendJson(request, reply, signal, dataset, 'presentation-collection', page ?? null, async () => {
        const label = labelOf(dataset)
        const collectionUrl = url(request, `${base}/collection`)
        const items: CollectionItem[] = []
        let entries = 0
        for await (const item of listDirectory(ctx.store, dataset.version, dataset.path, { signal })) {
          if (item.kind === 'directory') {
            const id = segment(inside(dataset, item.name))
            items.push({
              id: url(request, `${IIIF_PREFIX}/${id}/collection`),
              type: 'Collection',
              label: `${item.name}/ (${item.count} images)`,
            })
          } else {
            entries++
            items.push({
              id: url(request, `${IIIF_PREFIX}/${segment(inside(dataset, item.entry.name))}/manifest`),
              type: 'Manifest',
              label: item.entry.name,
            })
          }
        }
        if (items.length === 0 && dataset.path !== undefined) {
          throw new NotFoundError(`No entry or directory ${JSON.stringify(dataset.path)} in ${dataset.name ?? dataset.cid}`)
        }
        const pages = Math.max(1, Math.ceil(items.length / PAGE_SIZE))
        if (page !== undefined && page > pages)
          throw new NotFoundError(`No page ${page}: ${label} has ${pages} page(s) of ${PAGE_SIZE} items`)
        const summary = `${items.length - entries} directories and ${entries} images directly in ${label}`
        if (page === undefined && items.length > PAGE_SIZE) {
          const parts: CollectionItem[] = Array.from({ length: pages }, (_, i) => ({
            id: `${collectionUrl}?page=${i + 1}`,
            type: 'Collection',
            label: `${label}: items ${i * PAGE_SIZE + 1}–${Math.min(items.length, (i + 1) * PAGE_SIZE)}`,
          }))
          return collection({ id: collectionUrl, label, summary }, parts)
        }
        // Every image under here as one sequence of frames, first (a Manifest, paged itself when long).
        const all: CollectionItem = {
          id: url(request, `${base}/manifest`),
          type: 'Manifest',
          label: `${label}: every image, in name order`,
        }
        const slice = page === undefined ? items : items.slice((page - 1) * PAGE_SIZE, page * PAGE_SIZE)
        return collection(
          {
            id: page === undefined ? collectionUrl : `${collectionUrl}?page=${page}`,
            homepage: url(request, `/view/${segment(identifier)}`),
            label,
            summary,
            ...(page === undefined ? {} : { partOf: { id: collectionUrl, label } }),
          },
          page === undefined || page === 1 ? [all, ...slice] : slice,
        )
      })
    },
  })
}

/** An image by CID: its source file's name if the manifest records one, else its CID. */
function labelForImage(target: Target): string {
  return target.image.manifest.metadata.source?.name ?? target.cid
}
