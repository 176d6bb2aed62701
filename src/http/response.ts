/**
 * Sending a representation (spec/http.md, Caching and ranges): strong ETags derived from the
 * CID and the request, immutable caching of content-addressed responses, 304 on
 * If-None-Match (RFC 9110 §13.1.2), single byte ranges with If-Range (RFC 9110 §14), HEAD
 * without a body, and bodies that stream under an AbortSignal that fires when the client goes.
 * Work on pixels runs in a lane (queue.ts): the response reserves its memory for its whole life
 * and holds a slot only while it computes, never while its client is slow to read.
 */
import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { AbortError } from '../errors.js'
import type { Segment } from '../image.js'
import { rangeNotSatisfiable } from './errors.js'
import type { Lane, Release, WorkQueue } from './queue.js'

/**
 * Bumped whenever the bytes of a response for the same request change (an encoder's settings,
 * a writer's layout), so that ETags, and the caches that hold them, change with them.
 */
export const RESPONSE_VERSION = 1

/** A response body: bytes in memory (one array or several), a list of sized segments (each read when reached), or a stream. */
export type Body =
  | { readonly kind: 'bytes'; readonly bytes: Uint8Array }
  | { readonly kind: 'chunks'; readonly chunks: readonly Uint8Array[] }
  | { readonly kind: 'segments'; readonly length: number; readonly segments: readonly Segment[] }
  | {
      readonly kind: 'stream'
      /** Total bytes, when known before streaming: enables Content-Length and ranges. */
      readonly length?: number
      open(signal: AbortSignal): AsyncIterable<Uint8Array>
    }

/** Cache policy: immutable for content-addressed responses. */
export type CachePolicy = 'immutable' | 'revalidate' | 'named' | 'no-store'

/** Seconds a response for a dataset name may be reused before it is revalidated. */
export const NAMED_MAX_AGE = 10

const CACHE_CONTROL: Record<CachePolicy, string> = {
  immutable: 'public, max-age=31536000, immutable',
  // Responses that depend on the server's configuration (limits, base URL) as well as the CID.
  revalidate: 'public, max-age=3600',
  // Responses for a dataset name (spec/http.md, Names): the next import may point the name at
  // another image. Their ETag is that of the image the name resolved to, so revalidating an
  // unchanged name costs a 304.
  named: `public, max-age=${NAMED_MAX_AGE}`,
  'no-store': 'no-store',
}

/** The Cache-Control header value of `policy`. */
export function cacheControl(policy: CachePolicy): string {
  return CACHE_CONTROL[policy]
}

/** The policy of a response about a request's target: `policy` for a CID, `named` for a name. */
export function cacheFor(target: { readonly named: boolean }, policy: CachePolicy): CachePolicy {
  return target.named && policy !== 'no-store' ? 'named' : policy
}

/** The lane a response computes in and the bytes it reserves there (context.ts, Cost). */
export interface Work {
  readonly lane: Lane
  readonly memory: number
}

/**
 * What to send. `body` runs only if the response is not a 304; with `work`, after its memory is
 * reserved and inside a slot of its lane (and so does each chunk of a streamed body).
 */
export interface Representation {
  readonly type: string
  readonly etag?: string
  readonly cache: CachePolicy
  readonly headers?: Readonly<Record<string, string>>
  readonly status?: number
  /** Honour Range when the length is known (default true). */
  readonly ranges?: boolean
  readonly work?: Work
  readonly body: () => Body | Promise<Body>
}

/**
 * A strong ETag for the response of `kind` on `cid`, varying with `params` (the request's
 * normalized parameters) and RESPONSE_VERSION. Quoted, as the header carries it.
 */
export function etagFor(cid: string, kind: string, params?: unknown): string {
  if (params === undefined) return `"${cid}.${kind}"`
  const hash = createHash('sha256')
    .update(JSON.stringify([RESPONSE_VERSION, params]))
    .digest('base64url')
    .slice(0, 16)
  return `"${cid}.${kind}.${hash}"`
}

/** Whether an If-None-Match header matches `etag` (weak comparison, RFC 9110 §13.1.2). */
export function noneMatch(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false
  const opaque = etag.replace(/^W\//, '')
  return header.split(',').some((tag) => {
    const t = tag.trim()
    return t === '*' || t.replace(/^W\//, '') === opaque
  })
}

/**
 * The byte range a Range header asks for, as [first, last] inclusive; undefined to send the
 * whole representation (no header, another unit, several ranges or bad syntax: RFC 9110 §14.2
 * lets a server ignore those). Throws 416 when the one range does not overlap `length` bytes.
 */
export function parseRange(header: string | undefined, length: number): [number, number] | undefined {
  if (header === undefined) return undefined
  const match = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header)
  if (match === null) return undefined
  const [, first, last] = match as unknown as [string, string, string]
  if (first === '' && last === '') return undefined
  if (first === '') {
    // A suffix range: the last N bytes.
    const n = Number(last)
    if (n === 0 || length === 0) throw rangeNotSatisfiable(length)
    return [Math.max(0, length - n), length - 1]
  }
  const start = Number(first)
  const end = last === '' ? length - 1 : Math.min(Number(last), length - 1)
  if (!Number.isSafeInteger(start) || start >= length) throw rangeNotSatisfiable(length)
  if (end < start) return undefined
  return [start, end]
}

/**
 * An AbortSignal that fires when the client disconnects before the response has been fully
 * written: every async operation of the request takes it, so the work stops with the client.
 */
export function requestSignal(reply: FastifyReply): AbortSignal {
  const controller = new AbortController()
  const res = reply.raw
  res.once('close', () => {
    if (!res.writableFinished) controller.abort()
  })
  return controller.signal
}

/** Sends `rep` for `request`: conditional check, memory and slot, ranges, HEAD, streaming. */
export async function send(request: FastifyRequest, reply: FastifyReply, rep: Representation, signal: AbortSignal): Promise<FastifyReply> {
  reply.header('content-type', rep.type)
  reply.header('cache-control', CACHE_CONTROL[rep.cache])
  if (rep.etag !== undefined) reply.header('etag', rep.etag)
  for (const [name, value] of Object.entries(rep.headers ?? {})) reply.header(name, value)
  if (rep.etag !== undefined && noneMatch(request.headers['if-none-match'], rep.etag)) {
    reply.removeHeader('content-type')
    return reply.code(304).send()
  }
  const work = rep.work
  // Held until the response is over (sent, failed or abandoned): what it allocates lives that long.
  const memory = work === undefined ? () => {} : await work.lane.memory.acquire(work.memory, signal)
  reply.raw.once('close', memory)
  let body: Body
  try {
    const slot = work === undefined ? () => {} : await work.lane.slots.acquire(signal)
    try {
      body = await rep.body()
    } finally {
      slot()
    }
  } catch (error) {
    memory()
    throw error
  }
  const length = body.kind === 'bytes' ? body.bytes.length : body.kind === 'chunks' ? totalLength(body.chunks) : body.length
  let range: [number, number] | undefined
  if (length !== undefined && rep.ranges !== false) {
    reply.header('accept-ranges', 'bytes')
    const ifRange = request.headers['if-range']
    // If-Range with anything but our current strong ETag means "send it all" (RFC 9110 §13.1.5).
    if (ifRange === undefined || (rep.etag !== undefined && ifRange === rep.etag)) {
      try {
        range = parseRange(request.headers.range, length)
      } catch (error) {
        memory()
        throw error
      }
    }
  } else {
    reply.header('accept-ranges', 'none')
  }
  const [start, end] = range ?? [0, (length ?? 0) - 1]
  reply.code(range === undefined ? (rep.status ?? 200) : 206)
  if (range !== undefined) reply.header('content-range', `bytes ${start}-${end}/${length}`)
  if (length !== undefined) reply.header('content-length', String(end - start + 1))
  if (request.method === 'HEAD') {
    memory()
    return reply.send()
  }
  if (body.kind === 'bytes') {
    const bytes = body.bytes.subarray(start, end + 1)
    return reply.send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length))
  }
  if (body.kind === 'chunks') {
    const slices = sliceChunks(body.chunks, start, end)
    return reply.send(slices.length === 1 ? slices[0]! : Readable.from(paced(slices, signal), { objectMode: false }))
  }
  const chunks = body.kind === 'segments' ? readSegments(body.segments, start, end, signal) : sliceStream(body.open(signal), range)
  return reply.send(Readable.from(paced(chunks, signal, work?.lane.slots), { objectMode: false }))
}

function totalLength(chunks: readonly Uint8Array[]): number {
  return chunks.reduce((sum, chunk) => sum + chunk.length, 0)
}

/** Bytes `start..end` (inclusive) of the concatenated chunks, as Buffers (views, not copies). */
function sliceChunks(chunks: readonly Uint8Array[], start: number, end: number): Buffer[] {
  const out: Buffer[] = []
  let at = 0
  for (const chunk of chunks) {
    const next = at + chunk.length
    if (next > start && at <= end) {
      const view = chunk.subarray(Math.max(0, start - at), Math.min(chunk.length, end + 1 - at))
      out.push(Buffer.from(view.buffer, view.byteOffset, view.length))
    }
    at = next
  }
  return out.length === 0 ? [Buffer.alloc(0)] : out
}

/**
 * Passes `chunks` through, producing each one inside a slot of `slots` (when given) and
 * releasing it before handing the chunk over: while a slow client keeps the stream from asking
 * for more, the response holds its memory but no slot, so that it never keeps others from
 * computing. The producer is closed when the stream ends, fails or is abandoned.
 */
async function* paced(
  chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
  signal: AbortSignal,
  slots?: WorkQueue,
): AsyncGenerator<Uint8Array> {
  const iterator = Symbol.asyncIterator in chunks ? chunks[Symbol.asyncIterator]() : toAsync(chunks[Symbol.iterator]())
  try {
    while (true) {
      if (signal.aborted) throw new AbortError()
      const release: Release = slots === undefined ? () => {} : await slots.acquire(signal)
      let next: IteratorResult<Uint8Array>
      try {
        next = await iterator.next()
      } finally {
        release()
      }
      if (next.done) return
      if (next.value.length > 0) yield next.value
    }
  } finally {
    await iterator.return?.()
  }
}

function toAsync<T>(iterator: Iterator<T>): AsyncIterator<T> {
  return { next: async () => iterator.next() }
}

/** Bytes `start..end` (inclusive) of the concatenated segments, reading only the segments they touch. */
async function* readSegments(segments: readonly Segment[], start: number, end: number, signal: AbortSignal): AsyncGenerator<Uint8Array> {
  let at = 0
  for (const segment of segments) {
    const next = at + segment.length
    if (next > start && at <= end) {
      signal.throwIfAborted()
      const bytes = await segment.read(signal)
      if (bytes.length !== segment.length) throw new Error(`Segment of ${bytes.length} bytes, expected ${segment.length}`)
      yield bytes.subarray(Math.max(0, start - at), Math.min(segment.length, end + 1 - at))
    }
    at = next
    if (at > end) return
  }
}

/** Bytes of `range` (inclusive) from a stream, or all of it: skips the start, stops at the end. */
async function* sliceStream(chunks: AsyncIterable<Uint8Array>, range: [number, number] | undefined): AsyncGenerator<Uint8Array> {
  if (range === undefined) {
    yield* chunks
    return
  }
  const [start, end] = range
  let at = 0
  for await (const chunk of chunks) {
    const next = at + chunk.length
    if (next > start) yield chunk.subarray(Math.max(0, start - at), Math.min(chunk.length, end + 1 - at))
    at = next
    // Returning ends the for-await, which calls the producer's return(): its work stops here.
    if (at > end) return
  }
}
