/**
 * The IPFS trustless gateway subset (https://specs.ipfs.tech/http-gateways/trustless-gateway/):
 * `GET /ipfs/{cid}` as one verifiable raw block (`application/vnd.ipld.raw`) or as a CAR of
 * the DAG under it (`application/vnd.ipld.car`), chosen by `?format=` or `Accept`.
 */
import type { FastifyInstance } from 'fastify'
import { planCar } from '../../car/export.js'
import { IDENTITY } from '../../dataset/walk.js'
import { InvalidArgumentError } from '../../errors.js'
import { parseCid } from '../../image.js'
import type { HttpContext } from '../context.js'
import { notAcceptable } from '../errors.js'
import { enumParam, queryOf } from '../params.js'
import { etagFor, requestSignal, send } from '../response.js'

const RAW_TYPE = 'application/vnd.ipld.raw'
/** Media type of the CAR responses, with the parameters of IPIP-412. */
const CAR_TYPE = 'application/vnd.ipld.car; version=1; order=dfs; dups=n'

/**
 * The response format: `format` wins over `Accept` (trustless gateway, "format"). Without
 * either, a trustless-only gateway answers 400; an Accept that names neither type, 406.
 */
function negotiate(format: string | undefined, accept: string | undefined): 'raw' | 'car' {
  if (format !== undefined) return enumParam(format, 'format', ['raw', 'car'] as const)
  if (accept === undefined || accept.trim() === '') {
    throw new InvalidArgumentError('This is a trustless gateway: ask for ?format=raw or ?format=car (or send Accept)')
  }
  let best: { kind: 'raw' | 'car'; q: number } | undefined
  for (const part of accept.split(',')) {
    const [type, ...rawParams] = part.split(';').map((s) => s.trim().toLowerCase())
    const params = new Map(rawParams.map((p) => p.split('=').map((s) => s.trim()) as [string, string]))
    const q = params.has('q') ? Number(params.get('q')) : 1
    if (!(q > 0)) continue
    let kind: 'raw' | 'car' | undefined
    if (type === RAW_TYPE) kind = 'raw'
    else if (type === 'application/vnd.ipld.car') {
      // IPIP-412: this gateway sends CARv1, depth-first, without duplicates.
      const ok =
        (params.get('version') ?? '1') === '1' &&
        ['dfs', 'unk'].includes(params.get('order') ?? 'dfs') &&
        (params.get('dups') ?? 'n') === 'n'
      if (ok) kind = 'car'
    }
    if (kind !== undefined && (best === undefined || q > best.q)) best = { kind, q }
  }
  if (best === undefined)
    throw notAcceptable(`Accept ${JSON.stringify(accept.slice(0, 100))} names no type this gateway sends (${RAW_TYPE}, ${CAR_TYPE})`)
  return best.kind
}

/** Registers `/ipfs/{cid}`. */
export function registerIpfsRoutes(app: FastifyInstance, ctx: HttpContext): void {
  app.route({
    method: ['GET', 'HEAD'],
    url: '/ipfs/:cid',
    handler: async (request, reply) => {
      const query = queryOf(request, [
        'format',
        'dag-scope',
        'entity-bytes',
        'car-version',
        'car-order',
        'car-dups',
        'filename',
        'download',
      ])
      const cid = parseCid((request.params as { cid: string }).cid)
      const kind = negotiate(query.format, request.headers.accept)
      const text = cid.toString()
      const common = {
        cache: 'immutable' as const,
        headers: {
          'x-content-type-options': 'nosniff',
          'x-ipfs-path': `/ipfs/${text}`,
          'x-ipfs-roots': text,
          vary: 'Accept',
        },
      }
      const signal = requestSignal(reply)
      if (kind === 'raw') {
        for (const name of ['dag-scope', 'entity-bytes', 'car-version', 'car-order', 'car-dups']) {
          if (query[name] !== undefined) throw new InvalidArgumentError(`${name} applies to CAR responses only`)
        }
        return send(
          request,
          reply,
          {
            ...common,
            type: RAW_TYPE,
            etag: etagFor(text, 'raw'),
            headers: { ...common.headers, 'content-disposition': `attachment; filename="${text}.bin"` },
            // An identity CID holds its own bytes (the probe bafkqaaa is the empty block).
            body: async () => ({
              kind: 'bytes',
              bytes: cid.multihash.code === IDENTITY ? cid.multihash.digest : await ctx.store.get(cid, { signal }),
            }),
          },
          signal,
        )
      }
      enumParam(query['car-version'], 'car-version', ['1'], '1')
      enumParam(query['car-order'], 'car-order', ['dfs', 'unk'], 'dfs')
      enumParam(query['car-dups'], 'car-dups', ['n'], 'n')
      let scope = enumParam(query['dag-scope'], 'dag-scope', ['block', 'entity', 'all'] as const, 'all')
      if (query['entity-bytes'] !== undefined) {
        if (!/^-?\d{1,16}:(-?\d{1,16}|\*)$/.test(query['entity-bytes'])) throw new InvalidArgumentError('entity-bytes must be from:to')
        // entity-bytes implies dag-scope=entity; no Tessera block is a byte entity, so it is ignored.
        scope = 'entity'
      }
      // For anything that is not UnixFS, `entity` is `block`.
      const walk = scope === 'all' ? 'all' : 'block'
      const plan = await planCar(ctx.store, cid, { scope: walk, signal })
      return send(
        request,
        reply,
        {
          ...common,
          type: CAR_TYPE,
          // Provenance blocks the store holds are in the CAR (spec/http.md §7): they vary its bytes.
          etag: etagFor(text, 'car', plan.weak.length === 0 ? walk : [walk, ...plan.weak.map(String)]),
          headers: { ...common.headers, 'content-disposition': `attachment; filename="${text}.car"` },
          body: () => ({ kind: 'segments', length: plan.length, segments: plan.parts }),
        },
        signal,
      )
    },
  })
  // Paths below a CID would need IPLD pathing, which this gateway does not do.
  app.route({
    method: ['GET', 'HEAD'],
    url: '/ipfs/:cid/*',
    handler: async () => {
      throw new InvalidArgumentError('Paths below a CID are not supported: request /ipfs/{cid}')
    },
  })
}
