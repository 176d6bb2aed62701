/**
 * Objects in an S3 bucket, under a key prefix: `s3://bucket/some/prefix` keeps key `a/b` as
 * `some/prefix/a/b`.
 *
 * Reads (GET, ranged GET, HEAD, ListObjectsV2) are plain HTTP requests signed with AWS
 * Signature Version 4 (the `aws4` package) over a keep-alive `node:http(s)` agent: a crop
 * process starts reading at once and pays ~0.2 ms of CPU a request. Writes and deletes go
 * through the AWS SDK v3 (s3-sdk.ts, its one home), loaded on the first of them: multipart
 * uploads, conditional puts and their retries are the SDK's (bench/README.md, S3).
 *
 * Tested against Ceph 16 (Debian 12's radosgw, scripts/s3-up.sh) and written for AWS S3:
 * - Requests are path-style when an endpoint is set (`AWS_ENDPOINT_URL`), virtual-hosted on
 *   AWS (path-style for bucket names with dots, which TLS wildcards do not cover).
 * - Every read sends `x-amz-content-sha256` (radosgw requires it), the hash of the empty body.
 * - Credentials never come from the EC2/ECS metadata services (requests off this machine):
 *   only from the environment's keys or a shared-config profile, else ERR_STORE_CONFIG.
 * - Reads are retried like the SDK retries them: network failures, 429 and 5xx, up to
 *   `maxAttempts` (default 3) with jittered exponential backoff; a keep-alive socket the server
 *   closed meanwhile is retried at once.
 */
import { existsSync } from 'node:fs'
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import { homedir } from 'node:os'
import { join } from 'node:path'
import aws4 from 'aws4'
import { AbortError, IntegrityError, InvalidArgumentError, NotFoundError, StoreError, TesseraError } from '../../errors.js'
import type { AbortOptions } from '../interface.js'
import type { ListOptions, ObjectDriver, ObjectInfo, ObjectSink, PutOptions } from './interface.js'
import type { S3Writer } from './s3-sdk.js'

/** Resolved S3 credentials. */
export interface S3Identity {
  readonly accessKeyId: string
  readonly secretAccessKey: string
  readonly sessionToken?: string
  /** When temporary credentials stop working (then they are asked for again). */
  readonly expiration?: Date
}

/** Credentials that are looked up (a shared-config profile). */
export type S3CredentialProvider = () => Promise<S3Identity>

/** S3 credentials: fixed keys, or a provider (e.g. a shared-config profile). */
export type S3Credentials = S3Identity | S3CredentialProvider

/** Construction of an `S3Driver`: everything explicit, nothing read from the environment. */
export interface S3DriverInit {
  readonly bucket: string
  /** Key prefix without leading or trailing slash; '' (the default) for the bucket's root. */
  readonly prefix?: string
  /** e.g. `http://127.0.0.1:7480`; addressing is path-style when set. Default: AWS S3. */
  readonly endpoint?: string
  /** Default us-east-1. */
  readonly region?: string
  readonly credentials: S3Credentials
  /** MaxKeys of each ListObjectsV2 page, 1-1000 (default 1000): small values test pagination. */
  readonly listPageSize?: number
  /**
   * `create()` sinks upload in parts of this many bytes (default 16 MiB, at least 5 MiB, S3's
   * minimum). A sink holds at most two parts in memory (one buffering, one uploading); an
   * object that fits in one part is one PutObject on finish.
   */
  readonly partSize?: number
  /** Connections kept alive to the endpoint (default 64): parallel ranged reads use one each. */
  readonly maxSockets?: number
  /** Attempts per request, retries included (default 3, as the SDK's). */
  readonly maxAttempts?: number
}

const MIB = 1024 * 1024
const DEFAULT_PART_SIZE = 16 * MIB
const MIN_PART_SIZE = 5 * MIB
/** A silent server fails the request (then retried) instead of hanging it. */
const SOCKET_TIMEOUT_MS = 120_000
/** Temporary credentials are asked for again this long before they expire. */
const CREDENTIALS_MARGIN_MS = 5 * 60_000
/** Network failures worth another attempt (those the SDK retries). */
const TRANSIENT_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT'])
/** Answers worth another attempt: throttling and server errors. */
const TRANSIENT_STATUS = new Set([429, 500, 502, 503, 504])

/** An error answer of the S3 API: `name` is its S3 error code (`NoSuchKey`), as the SDK names them. */
export class S3ResponseError extends Error {
  readonly $metadata: { readonly httpStatusCode: number }
  constructor(name: string, message: string, status: number) {
    super(message)
    this.name = name
    this.$metadata = { httpStatusCode: status }
  }
}

/** One answer, read whole. */
interface Answer {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly body: Uint8Array
}

/** Objects in an S3 bucket: see the module comment. */
export class S3Driver implements ObjectDriver {
  readonly location: string
  readonly #bucket: string
  /** '' or 'prefix/'. */
  readonly #root: string
  readonly #pageSize: number
  readonly #partSize: number
  readonly #maxSockets: number
  readonly #maxAttempts: number
  readonly #region: string
  readonly #endpoint: string | undefined
  readonly #https: boolean
  readonly #hostname: string
  readonly #port: number | undefined
  /** The Host header: the endpoint's host and port as its URL writes them (IPv6 in brackets). */
  readonly #host: string
  /** Path of the bucket on the host: '/bucket' (path-style, after the endpoint's own path) or '' (virtual-hosted). */
  readonly #bucketPath: string
  readonly #agent: HttpAgent
  readonly #credentials: S3Credentials
  #identity: Promise<S3Identity> | undefined
  #identityExpires = Number.POSITIVE_INFINITY
  #writer: Promise<S3Writer> | undefined
  #closed = false

  /**
   * A driver for `s3://BUCKET[/PREFIX]` configured like the AWS CLI: endpoint from
   * AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, region from AWS_REGION or AWS_DEFAULT_REGION,
   * credentials from AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN), else
   * the profile AWS_PROFILE (or `default`) of the shared config files. StoreError
   * ERR_STORE_CONFIG, before any request, if the URL is malformed or no credentials are configured.
   */
  static fromUrl(url: string, env: NodeJS.ProcessEnv = process.env, init: Partial<S3DriverInit> = {}): S3Driver {
    const { bucket, prefix } = parseS3Url(url)
    return new S3Driver({
      bucket,
      prefix,
      endpoint: nonEmpty(env.AWS_ENDPOINT_URL_S3) ?? nonEmpty(env.AWS_ENDPOINT_URL),
      region: nonEmpty(env.AWS_REGION) ?? nonEmpty(env.AWS_DEFAULT_REGION),
      credentials: credentialsFromEnv(env, url),
      ...init,
    })
  }

  constructor(init: S3DriverInit) {
    checkBucket(init.bucket)
    const prefix = init.prefix ?? ''
    if (prefix !== '') checkKey(prefix)
    this.#bucket = init.bucket
    this.#root = prefix === '' ? '' : `${prefix}/`
    this.location = prefix === '' ? `s3://${init.bucket}` : `s3://${init.bucket}/${prefix}`
    this.#pageSize = checkInteger('listPageSize', init.listPageSize ?? 1000, 1, 1000)
    this.#partSize = checkInteger('partSize', init.partSize ?? DEFAULT_PART_SIZE, MIN_PART_SIZE, 5 * 1024 * MIB)
    this.#maxSockets = checkInteger('maxSockets', init.maxSockets ?? 64, 1, 4096)
    this.#maxAttempts = checkInteger('maxAttempts', init.maxAttempts ?? 3, 1, 100)
    this.#region = init.region ?? 'us-east-1'
    this.#endpoint = init.endpoint
    if (init.endpoint !== undefined) {
      let url: URL
      try {
        url = new URL(init.endpoint)
      } catch (cause) {
        throw new StoreError('ERR_STORE_CONFIG', `Expected an http(s) URL for the S3 endpoint but received ${init.endpoint}`, { cause })
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') {
        throw new StoreError('ERR_STORE_CONFIG', `Expected an http(s) URL for the S3 endpoint but received ${init.endpoint}`)
      }
      this.#https = url.protocol === 'https:'
      this.#hostname = url.hostname.replace(/^\[(.*)\]$/, '$1')
      this.#port = url.port === '' ? undefined : Number(url.port)
      this.#host = url.host
      this.#bucketPath = `${url.pathname.replace(/\/+$/, '')}/${init.bucket}`
    } else {
      // AWS: virtual-hosted, except for names with dots (path-style, as the SDK does over TLS).
      this.#https = true
      this.#port = undefined
      const host = `s3.${this.#region}.amazonaws.com`
      const virtual = !init.bucket.includes('.')
      this.#hostname = virtual ? `${init.bucket}.${host}` : host
      this.#host = this.#hostname
      this.#bucketPath = virtual ? '' : `/${init.bucket}`
    }
    // Keep-alive: a ranged read on a warm connection costs one round trip, not three.
    const agentInit = { keepAlive: true, maxSockets: this.#maxSockets, scheduling: 'lifo' as const }
    this.#agent = this.#https ? new HttpsAgent(agentInit) : new HttpAgent(agentInit)
    this.#credentials = init.credentials
    // The SDK's credential chain would end at the instance metadata service; ours never reaches
    // it, but an SDK internal (e.g. a profile's credential_source) must not either.
    process.env.AWS_EC2_METADATA_DISABLED ??= 'true'
  }

  async get(key: string, options?: AbortOptions): Promise<Uint8Array | undefined> {
    const signal = begin(options)
    const name = this.#name(key)
    try {
      return (await this.#send('GET', name, '', {}, signal)).body
    } catch (error) {
      if (errorName(error) === 'NoSuchKey') return undefined
      throw this.#error(error, 'read', key, signal)
    }
  }

  async getRange(key: string, offset: number, length: number, options?: AbortOptions): Promise<Uint8Array> {
    const signal = begin(options)
    const name = this.#name(key)
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
      throw new InvalidArgumentError(`Expected non-negative integers for offset and length but received ${offset} and ${length}`)
    }
    const short = (size?: number) =>
      new IntegrityError(
        `${this.#what('read', key)}: asked ${length} bytes at ${offset}, the object has ${size ?? `fewer than ${offset + 1}`}`,
      )
    if (length === 0) {
      // An empty Range is not expressible (RFC 9110 §14.1.2): check existence and size instead.
      const info = await this.stat(key, options)
      if (info === undefined) throw new NotFoundError(`${this.#what('read', key)}: no such object`)
      if (offset > info.size) throw short(info.size)
      return new Uint8Array(0)
    }
    let answer: Answer
    try {
      answer = await this.#send('GET', name, '', { Range: `bytes=${offset}-${offset + length - 1}` }, signal)
    } catch (error) {
      const code = errorName(error)
      if (code === 'NoSuchKey') throw new NotFoundError(`${this.#what('read', key)}: no such object`, { cause: error })
      // 416: the range starts at or past the end of the object.
      if (code === 'InvalidRange' || httpStatus(error) === 416) throw short()
      throw this.#error(error, 'read', key, signal)
    }
    // 206 with Content-Range `bytes FIRST-LAST/SIZE`; a server ignoring Range sends the whole object (200).
    const range = answer.headers['content-range']
    const bytes = answer.body
    const slice = answer.status === 206 ? bytes : bytes.subarray(offset, offset + length)
    if (slice.length !== length) throw short(answer.status === 206 && range !== undefined ? contentRangeSize(range) : bytes.length)
    return slice
  }

  async put(key: string, bytes: Uint8Array, options: PutOptions = {}): Promise<boolean> {
    begin(options)
    const name = this.#name(key)
    return (await this.#writes()).put(name, key, bytes, options)
  }

  async create(key: string, options?: AbortOptions): Promise<ObjectSink> {
    begin(options)
    const name = this.#name(key)
    return (await this.#writes()).create(name, key)
  }

  async stat(key: string, options?: AbortOptions): Promise<ObjectInfo | undefined> {
    const signal = begin(options)
    const name = this.#name(key)
    try {
      const { headers } = await this.#send('HEAD', name, '', {}, signal)
      const modified = headers['last-modified'] === undefined ? 0 : Date.parse(headers['last-modified'])
      return { key, size: Number(headers['content-length'] ?? 0), modified: Number.isNaN(modified) ? 0 : modified }
    } catch (error) {
      // A HEAD answer has no body, hence no error code: a missing bucket is a 404 too, and
      // looks like a missing object here (get and list tell them apart).
      if (httpStatus(error) === 404) return undefined
      throw this.#error(error, 'stat', key, signal)
    }
  }

  async *list(prefix: string, options: ListOptions = {}): AsyncIterable<ObjectInfo> {
    const signal = begin(options)
    if (prefix !== '') checkAscii(prefix)
    let token: string | undefined
    do {
      const query: Array<[string, string]> = [
        ['list-type', '2'],
        ['max-keys', String(this.#pageSize)],
        ['prefix', this.#root + prefix],
      ]
      // StartAfter only on the first page; the continuation token carries it on.
      if (token !== undefined) query.push(['continuation-token', token])
      else if (options.startAfter !== undefined) query.push(['start-after', this.#root + options.startAfter])
      let page: ListPage
      try {
        const answer = await this.#send('GET', undefined, query.map(([k, v]) => `${k}=${encodeRfc3986(v)}`).join('&'), {}, signal)
        page = parseListPage(new TextDecoder().decode(answer.body))
      } catch (error) {
        throw this.#error(error, 'list', prefix, signal)
      }
      token = page.truncated ? page.token : undefined
      // Keys come in UTF-8 binary order, which is bytewise for the ASCII keys allowed here.
      for (const entry of page.contents) {
        if (!entry.key.startsWith(this.#root)) continue
        yield { key: entry.key.slice(this.#root.length), size: entry.size, modified: entry.modified }
      }
      if (signal?.aborted === true) throw new AbortError()
    } while (token !== undefined)
  }

  async delete(key: string, options?: AbortOptions): Promise<void> {
    begin(options)
    const name = this.#name(key)
    await (await this.#writes()).delete(name, key, options)
  }

  async close(): Promise<void> {
    this.#closed = true
    this.#agent.destroy()
    const writer = this.#writer
    if (writer !== undefined) (await writer.catch(() => undefined))?.close()
  }

  /** The SDK half, loaded on the first write. */
  #writes(): Promise<S3Writer> {
    this.#writer ??= import('./s3-sdk.js').then(
      ({ S3Writer }) =>
        new S3Writer({
          bucket: this.#bucket,
          ...(this.#endpoint === undefined ? {} : { endpoint: this.#endpoint }),
          region: this.#region,
          credentials: () => this.#resolveIdentity(),
          maxSockets: this.#maxSockets,
          maxAttempts: this.#maxAttempts,
          partSize: this.#partSize,
          fail: (error, verb, key, signal) => this.#error(error, verb, key, signal),
        }),
    )
    return this.#writer
  }

  /** The credentials, looked up once (again when temporary ones near their expiry). */
  #resolveIdentity(): Promise<S3Identity> {
    const credentials = this.#credentials
    if (typeof credentials !== 'function') return Promise.resolve(credentials)
    if (this.#identity === undefined || Date.now() >= this.#identityExpires) {
      const pending = credentials().then((identity) => {
        const expires = identity.expiration?.getTime()
        this.#identityExpires = expires === undefined ? Number.POSITIVE_INFINITY : expires - CREDENTIALS_MARGIN_MS
        return identity
      })
      // A failed look-up is not remembered: the next request asks again.
      pending.catch(() => {
        if (this.#identity === pending) this.#identity = undefined
      })
      this.#identity = pending
    }
    return this.#identity
  }

  /**
   * One signed request (`name`: an object's full key, or undefined for the bucket), read
   * whole; an S3ResponseError for an error answer. Retried: see the module comment.
   */
  async #send(
    method: 'GET' | 'HEAD',
    name: string | undefined,
    query: string,
    headers: Record<string, string>,
    signal: AbortSignal | undefined,
  ): Promise<Answer> {
    if (this.#closed) throw new StoreError('ERR_STORE', `The S3 driver of ${this.location} is closed`)
    const identity = await this.#resolveIdentity()
    const objectPath = name === undefined ? '' : `/${name.split('/').map(encodeRfc3986).join('/')}`
    const path = `${this.#bucketPath}${objectPath}` || '/'
    for (let attempt = 1; ; attempt++) {
      const signed = aws4.sign(
        {
          service: 's3',
          region: this.#region,
          method,
          host: this.#host,
          path: query === '' ? path : `${path}?${query}`,
          headers: { ...headers, Host: this.#host },
        },
        identity,
      )
      let reused = false
      try {
        const answer = await this.#exchange(signed, method, signal, (socketReused) => {
          reused = socketReused
        })
        if (answer.status >= 300) throw responseError(answer, method)
        return answer
      } catch (error) {
        if (signal?.aborted === true || attempt >= this.#maxAttempts || !isTransient(error)) throw error
        // A kept-alive socket the server closed meanwhile: at once; else jittered exponential backoff.
        const delay = reused && attempt === 1 && httpStatus(error) === undefined ? 0 : Math.random() * Math.min(20_000, 100 * 2 ** attempt)
        await sleep(delay, signal)
      }
    }
  }

  /** Sends a signed request and reads its answer whole. */
  #exchange(signed: aws4.Request, method: string, signal: AbortSignal | undefined, onSocket: (reused: boolean) => void): Promise<Answer> {
    return new Promise<Answer>((resolve, reject) => {
      const request = (this.#https ? httpsRequest : httpRequest)({
        hostname: this.#hostname,
        ...(this.#port === undefined ? {} : { port: this.#port }),
        method,
        path: signed.path,
        headers: signed.headers as Record<string, string>,
        agent: this.#agent,
        ...(signal === undefined ? {} : { signal }),
      })
      request.setTimeout(SOCKET_TIMEOUT_MS, () => {
        request.destroy(Object.assign(new Error(`No answer from ${this.#hostname} in ${SOCKET_TIMEOUT_MS} ms`), { code: 'ETIMEDOUT' }))
      })
      request.once('socket', (socket) => {
        socket.setNoDelay(true)
        onSocket(request.reusedSocket)
      })
      request.once('error', reject)
      request.once('response', (response) => {
        const status = response.statusCode ?? 0
        const declared = response.headers['content-length']
        const size = method === 'HEAD' || declared === undefined ? undefined : Number(declared)
        let body: Uint8Array | undefined = size === undefined ? undefined : new Uint8Array(size)
        const chunks: Buffer[] = []
        let filled = 0
        let failed = false
        response.on('data', (chunk: Buffer) => {
          if (failed) return
          if (body !== undefined) {
            if (filled + chunk.length > body.length) {
              failed = true
              response.destroy()
              reject(new IntegrityError(`S3 answer from ${this.#hostname}: more bytes than the ${body.length} of Content-Length`))
              return
            }
            body.set(chunk, filled)
          } else chunks.push(chunk)
          filled += chunk.length
        })
        response.once('error', (error) => {
          if (!failed) reject(error)
          failed = true
        })
        response.once('end', () => {
          if (failed) return
          if (body === undefined) body = method === 'HEAD' ? new Uint8Array(0) : Buffer.concat(chunks)
          else if (filled !== body.length) {
            reject(
              Object.assign(new Error(`The answer from ${this.#hostname} ended after ${filled} of ${body.length} bytes`), {
                code: 'ECONNRESET',
              }),
            )
            return
          }
          resolve({ status, headers: response.headers, body })
        })
      })
      request.end()
    })
  }

  #name(key: string): string {
    return this.#root + checkKey(key)
  }

  #what(verb: string, key: string): string {
    return `Cannot ${verb} ${key} in ${this.location}`
  }

  #error(error: unknown, verb: string, key: string, signal: AbortSignal | undefined): Error {
    return toStoreError(error, this.#what(verb, key), signal)
  }
}

/** `S3Driver.fromUrl` as a function: the driver for an `s3://BUCKET/PREFIX` URL, configured from `env`. */
export async function openS3Driver(url: string, env: NodeJS.ProcessEnv = process.env, init: Partial<S3DriverInit> = {}): Promise<S3Driver> {
  return S3Driver.fromUrl(url, env, init)
}

/** The S3ResponseError of an error answer (its XML `<Error><Code>`; a HEAD answer has no body). */
function responseError(answer: Answer, method: string): S3ResponseError {
  const xml = method === 'HEAD' ? '' : new TextDecoder().decode(answer.body)
  const code = xmlText(xml, 'Code')
  const message = xmlText(xml, 'Message')
  const name = code ?? STATUS_NAMES[answer.status] ?? `Http${answer.status}`
  return new S3ResponseError(name, message ?? `${name} (HTTP ${answer.status})`, answer.status)
}

// What the SDK names body-less error answers.
const STATUS_NAMES: Record<number, string> = { 400: 'BadRequest', 403: 'Forbidden', 404: 'NotFound', 412: 'PreconditionFailed' }

function isTransient(error: unknown): boolean {
  const status = httpStatus(error)
  if (status !== undefined) return TRANSIENT_STATUS.has(status) || errorName(error) === 'SlowDown' || errorName(error) === 'RequestTimeout'
  if (error instanceof TesseraError) return false
  const code = (error as { code?: unknown } | undefined)?.code
  return typeof code === 'string' && TRANSIENT_CODES.has(code)
}

/** One ListObjectsV2 page. */
interface ListPage {
  readonly contents: Array<{ key: string; size: number; modified: number }>
  readonly truncated: boolean
  readonly token: string | undefined
}

/** Parses a ListObjectsV2 answer (https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html). */
export function parseListPage(xml: string): ListPage {
  if (!/<ListBucketResult[\s>]/.test(xml)) throw new StoreError('ERR_STORE', 'The S3 listing is not a ListBucketResult')
  const contents: ListPage['contents'] = []
  for (const match of xml.matchAll(/<Contents>([\s\S]*?)<\/Contents>/g)) {
    const entry = match[1]!
    const key = xmlText(entry, 'Key')
    if (key === undefined) continue
    const modified = Date.parse(xmlText(entry, 'LastModified') ?? '')
    contents.push({ key, size: Number(xmlText(entry, 'Size') ?? 0), modified: Number.isNaN(modified) ? 0 : modified })
  }
  const page = xml.replace(/<Contents>[\s\S]*?<\/Contents>/g, '')
  return { contents, truncated: xmlText(page, 'IsTruncated') === 'true', token: xmlText(page, 'NextContinuationToken') }
}

/** The text of the first `<tag>` element of `xml`, entities decoded. */
function xmlText(xml: string, tag: string): string | undefined {
  const match = new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(xml)
  return match === null ? undefined : decodeXml(match[1]!)
}

function decodeXml(text: string): string {
  return text.replace(/&(?:#x([0-9a-fA-F]+)|#(\d+)|(amp|lt|gt|quot|apos));/g, (_, hex?: string, dec?: string, name?: string) => {
    if (hex !== undefined) return String.fromCodePoint(Number.parseInt(hex, 16))
    if (dec !== undefined) return String.fromCodePoint(Number(dec))
    return { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[name as 'amp']
  })
}

/** RFC 3986 percent-encoding of everything but unreserved characters (SigV4's URI encoding). */
function encodeRfc3986(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
}

/** Bucket and prefix of `s3://BUCKET[/PREFIX][/]`. */
export function parseS3Url(url: string): { bucket: string; prefix: string } {
  const match = /^s3:\/\/([^/?#]+)(?:\/([^?#]*))?$/.exec(url)
  if (match === null) throw new StoreError('ERR_STORE_CONFIG', `Expected an s3://BUCKET/PREFIX URL but received ${JSON.stringify(url)}`)
  const bucket = match[1]!
  const prefix = (match[2] ?? '').replace(/^\/+|\/+$/g, '')
  checkBucket(bucket)
  if (prefix !== '') {
    try {
      checkKey(prefix)
    } catch (error) {
      throw new StoreError('ERR_STORE_CONFIG', `Invalid prefix in ${url}: ${(error as Error).message}`, { cause: error })
    }
  }
  return { bucket, prefix }
}

/** The credentials the environment configures; ERR_STORE_CONFIG when it configures none. */
function credentialsFromEnv(env: NodeJS.ProcessEnv, url: string): S3Credentials {
  const accessKeyId = nonEmpty(env.AWS_ACCESS_KEY_ID)
  const secretAccessKey = nonEmpty(env.AWS_SECRET_ACCESS_KEY)
  if (accessKeyId !== undefined && secretAccessKey !== undefined) {
    const sessionToken = nonEmpty(env.AWS_SESSION_TOKEN)
    return { accessKeyId, secretAccessKey, ...(sessionToken === undefined ? {} : { sessionToken }) }
  }
  if ((accessKeyId === undefined) !== (secretAccessKey === undefined)) {
    throw new StoreError('ERR_STORE_CONFIG', `${url}: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together`)
  }
  // The shared files, located as the AWS CLI does, but from `env` rather than process.env.
  const home = nonEmpty(env.HOME) ?? homedir()
  const filepath = nonEmpty(env.AWS_SHARED_CREDENTIALS_FILE) ?? join(home, '.aws', 'credentials')
  const configFilepath = nonEmpty(env.AWS_CONFIG_FILE) ?? join(home, '.aws', 'config')
  const profile = nonEmpty(env.AWS_PROFILE)
  if (profile !== undefined || existsSync(filepath) || existsSync(configFilepath)) {
    // Read by the SDK's own reader of the shared files, loaded on first use.
    const init = { profile: profile ?? 'default', filepath, configFilepath }
    return async () => (await import('./s3-sdk.js')).profileCredentials(init)()
  }
  throw new StoreError(
    'ERR_STORE_CONFIG',
    `No credentials for ${url}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (instance metadata is never used)`,
  )
}

/** Wraps an SDK or network failure as a Tessera error; aborts become AbortError. */
function toStoreError(error: unknown, what: string, signal: AbortSignal | undefined): Error {
  if (error instanceof TesseraError) return error
  if (signal?.aborted === true || errorName(error) === 'AbortError') return new AbortError()
  if (errorName(error) === 'CredentialsProviderError') {
    return new StoreError('ERR_STORE_CONFIG', `${what}: no usable credentials: ${(error as Error).message}`, { cause: error })
  }
  const status = httpStatus(error)
  const code = (error as { code?: unknown }).code
  const detail =
    status !== undefined
      ? `${errorName(error)} (HTTP ${status})`
      : `${typeof code === 'string' ? `${code}: ` : ''}${(error as Error | undefined)?.message ?? String(error)}`
  return new StoreError('ERR_STORE', `${what}: ${detail}`, { cause: error })
}

/** SIZE of a Content-Range `bytes FIRST-LAST/SIZE` (RFC 9110 §14.4). */
function contentRangeSize(value: string): number | undefined {
  const match = /\/(\d+)$/.exec(value)
  return match === null ? undefined : Number(match[1])
}

function begin(options: AbortOptions | undefined): AbortSignal | undefined {
  if (options?.signal?.aborted === true) throw new AbortError()
  return options?.signal
}

/** Waits `ms`, or rejects with AbortError when `signal` fires (s3-sdk.ts's retries too). */
export function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(done, ms)
    function done() {
      signal?.removeEventListener('abort', aborted)
      resolve()
    }
    function aborted() {
      clearTimeout(timer)
      reject(new AbortError())
    }
    signal?.addEventListener('abort', aborted, { once: true })
  })
}

/** The `name` of an error, e.g. an SDK exception's ('NoSuchKey', 'PreconditionFailed'). */
export function errorName(error: unknown): string | undefined {
  return (error as { name?: string } | undefined)?.name
}

/** The HTTP status an SDK exception carries. */
export function httpStatus(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value
}

// Same rules as the disk driver's, so that every backend accepts the same keys.
function checkKey(key: string): string {
  checkAscii(key)
  if (key === '' || key.split('/').some((part) => part === '' || part === '.' || part === '..')) {
    throw new StoreError('ERR_STORE', `Invalid object key ${JSON.stringify(key)}`)
  }
  return key
}

function checkAscii(text: string): void {
  if (!/^[\x20-\x7e]*$/.test(text)) throw new StoreError('ERR_STORE', `Invalid object key ${JSON.stringify(text)}: printable ASCII only`)
}

// https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
function checkBucket(bucket: string): void {
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw new StoreError('ERR_STORE_CONFIG', `Invalid S3 bucket name ${JSON.stringify(bucket)}`)
  }
}

function checkInteger(name: string, value: number, min: number, max: number): number {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new StoreError('ERR_STORE_CONFIG', `Expected an integer from ${min} to ${max} for ${name} but received ${value}`)
  }
  return value
}
