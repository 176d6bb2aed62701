/**
 * Objects in an S3 bucket, under a key prefix: `s3://bucket/some/prefix` keeps key `a/b` as
 * `some/prefix/a/b`. The one module that imports the AWS SDK.
 *
 * Tested against Ceph 16 (Debian 12's radosgw, scripts/s3-up.sh) and written for AWS S3:
 * - `If-None-Match: *` on PutObject makes create-only puts atomic (radosgw: an exclusive
 *   RADOS create of the head object; AWS since 2024-08). A losing writer gets 412.
 * - Checksums only when an operation requires them (`WHEN_REQUIRED`): the SDK's default
 *   CRC32 trailers and aws-chunked bodies (SDK >= 3.729) are refused by Ceph 16 (411).
 * - Credentials never come from the EC2/ECS metadata services (requests off this machine):
 *   only from the environment's keys or a shared-config profile, else ERR_STORE_CONFIG.
 */
import { existsSync } from 'node:fs'
import { Agent as HttpAgent } from 'node:http'
import { Agent as HttpsAgent } from 'node:https'
import { homedir } from 'node:os'
import { join } from 'node:path'
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
  UploadPartCommand,
} from '@aws-sdk/client-s3'
import { fromIni } from '@aws-sdk/credential-provider-ini'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import { AbortError, IntegrityError, InvalidArgumentError, NotFoundError, StoreError, TesseraError } from '../../errors.js'
import type { AbortOptions } from '../interface.js'
import type { ListOptions, ObjectDriver, ObjectInfo, ObjectSink, PutOptions } from './interface.js'

/** S3 credentials: fixed keys, or a provider (e.g. a shared-config profile). */
export type S3Credentials = NonNullable<S3ClientConfig['credentials']>

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
  /** Attempts per request, retries included (the SDK's default is 3). */
  readonly maxAttempts?: number
}

const MIB = 1024 * 1024
const DEFAULT_PART_SIZE = 16 * MIB
const MIN_PART_SIZE = 5 * MIB
const MAX_PARTS = 10_000
// AWS answers 409 ConditionalRequestConflict to a conditional write racing another one on the
// same key, and asks for a retry, which then ends in 200 or 412 (S3 user guide, "Conditional writes").
const CONFLICT_RETRIES = 5

/** Objects in an S3 bucket: see the module comment. */
export class S3Driver implements ObjectDriver {
  readonly location: string
  readonly #client: S3Client
  readonly #bucket: string
  /** '' or 'prefix/'. */
  readonly #root: string
  readonly #pageSize: number
  readonly #partSize: number

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
    const maxSockets = checkInteger('maxSockets', init.maxSockets ?? 64, 1, 4096)
    // The SDK's credential chain would end at the instance metadata service; ours never reaches
    // it, but an SDK internal (e.g. a profile's credential_source) must not either.
    process.env.AWS_EC2_METADATA_DISABLED ??= 'true'
    // The SDK warns on stderr on Node < 22 (its future minimum), which a CLI must not print.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'
    this.#client = new S3Client({
      region: init.region ?? 'us-east-1',
      ...(init.endpoint === undefined ? {} : { endpoint: init.endpoint, forcePathStyle: true }),
      credentials: init.credentials,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      ...(init.maxAttempts === undefined ? {} : { maxAttempts: init.maxAttempts }),
      requestHandler: new NodeHttpHandler({
        // Keep-alive: a ranged read on a warm connection costs one round trip, not three.
        httpAgent: new HttpAgent({ keepAlive: true, maxSockets }),
        httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets }),
        connectionTimeout: 10_000,
        // A silent server fails the request (retried by the SDK) instead of hanging it.
        socketTimeout: 120_000,
      }),
    })
  }

  async get(key: string, options?: AbortOptions): Promise<Uint8Array | undefined> {
    const signal = begin(options)
    const name = this.#name(key)
    try {
      const out = await this.#client.send(new GetObjectCommand({ Bucket: this.#bucket, Key: name }), { abortSignal: signal })
      return await readBody(out.Body, out.ContentLength, this.#what('read', key))
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
    try {
      const out = await this.#client.send(
        new GetObjectCommand({ Bucket: this.#bucket, Key: name, Range: `bytes=${offset}-${offset + length - 1}` }),
        { abortSignal: signal },
      )
      const bytes = await readBody(out.Body, out.ContentLength, this.#what('read', key))
      // 206 with Content-Range `bytes FIRST-LAST/SIZE`; a server ignoring Range sends the whole object.
      const slice = out.ContentRange === undefined ? bytes.subarray(offset, offset + length) : bytes
      if (slice.length !== length) throw short(out.ContentRange === undefined ? bytes.length : contentRangeSize(out.ContentRange))
      return slice
    } catch (error) {
      const code = errorName(error)
      if (code === 'NoSuchKey') throw new NotFoundError(`${this.#what('read', key)}: no such object`, { cause: error })
      // 416: the range starts at or past the end of the object.
      if (code === 'InvalidRange' || httpStatus(error) === 416) throw short()
      throw this.#error(error, 'read', key, signal)
    }
  }

  async put(key: string, bytes: Uint8Array, options: PutOptions = {}): Promise<boolean> {
    const signal = begin(options)
    const command = new PutObjectCommand({
      Bucket: this.#bucket,
      Key: this.#name(key),
      Body: bytes,
      ContentLength: bytes.length,
      ...(options.ifAbsent === true ? { IfNoneMatch: '*' } : {}),
    })
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#client.send(command, { abortSignal: signal })
        return true
      } catch (error) {
        const status = httpStatus(error)
        if (options.ifAbsent === true && status === 412) return false
        if (options.ifAbsent === true && status === 409) {
          // See CONFLICT_RETRIES. After them, the key is being written by someone else: taken.
          if (attempt >= CONFLICT_RETRIES) return false
          await sleep(25 * 2 ** attempt, signal)
          continue
        }
        throw this.#error(error, 'write', key, signal)
      }
    }
  }

  async create(key: string, options?: AbortOptions): Promise<ObjectSink> {
    begin(options)
    return new S3Sink(this.#client, this.#bucket, this.#name(key), this.#partSize, (error, signal) =>
      this.#error(error, 'write', key, signal),
    )
  }

  async stat(key: string, options?: AbortOptions): Promise<ObjectInfo | undefined> {
    const signal = begin(options)
    const name = this.#name(key)
    try {
      const out = await this.#client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key: name }), { abortSignal: signal })
      return { key, size: out.ContentLength ?? 0, modified: out.LastModified?.getTime() ?? 0 }
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
      let page: ListObjectsV2CommandOutput
      try {
        page = await this.#client.send(
          new ListObjectsV2Command({
            Bucket: this.#bucket,
            Prefix: this.#root + prefix,
            MaxKeys: this.#pageSize,
            // StartAfter only on the first page; the continuation token carries it on.
            ...(token !== undefined
              ? { ContinuationToken: token }
              : options.startAfter !== undefined
                ? { StartAfter: this.#root + options.startAfter }
                : {}),
          }),
          { abortSignal: signal },
        )
        token = page.IsTruncated === true ? page.NextContinuationToken : undefined
      } catch (error) {
        throw this.#error(error, 'list', prefix, signal)
      }
      // Keys come in UTF-8 binary order, which is bytewise for the ASCII keys allowed here.
      for (const entry of page.Contents ?? []) {
        if (entry.Key === undefined || !entry.Key.startsWith(this.#root)) continue
        yield { key: entry.Key.slice(this.#root.length), size: entry.Size ?? 0, modified: entry.LastModified?.getTime() ?? 0 }
      }
      if (signal?.aborted === true) throw new AbortError()
    } while (token !== undefined)
  }

  async delete(key: string, options?: AbortOptions): Promise<void> {
    const signal = begin(options)
    try {
      await this.#client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: this.#name(key) }), { abortSignal: signal })
    } catch (error) {
      // S3 answers 204 for a missing key; some servers say 404.
      if (errorName(error) === 'NoSuchKey') return
      throw this.#error(error, 'delete', key, signal)
    }
  }

  async close(): Promise<void> {
    this.#client.destroy()
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

/** `create()`'s sink: buffers one part, then uploads parts while the next one fills. */
class S3Sink implements ObjectSink {
  readonly #client: S3Client
  readonly #bucket: string
  readonly #key: string
  readonly #partSize: number
  readonly #fail: (error: unknown, signal?: AbortSignal) => Error
  /** The part being filled: grows up to partSize for the first part, is partSize after. */
  #buffer = new Uint8Array(0)
  #buffered = 0
  #length = 0
  #state: 'open' | 'finishing' | 'done' = 'open'
  #uploadId: string | undefined
  readonly #parts: { ETag: string; PartNumber: number }[] = []
  /** The part being uploaded; it never rejects: a failure is kept in #failure. */
  #uploading: Promise<void> = Promise.resolve()
  #failure: Error | undefined

  constructor(client: S3Client, bucket: string, key: string, partSize: number, fail: (error: unknown, signal?: AbortSignal) => Error) {
    this.#client = client
    this.#bucket = bucket
    this.#key = key
    this.#partSize = partSize
    this.#fail = fail
  }

  get length(): number {
    return this.#length
  }

  async write(bytes: Uint8Array): Promise<void> {
    this.#checkOpen()
    if (this.#failure !== undefined) throw this.#failure
    // Copied (the caller may reuse its buffer once the write resolves) straight into the part.
    let done = 0
    while (done < bytes.length) {
      if (this.#buffered === this.#partSize) {
        // A full part and more to come (an object of exactly one part stays one PutObject).
        // The next buffer is allocated once the previous upload is over: two parts at most.
        const part = this.#buffer
        this.#buffer = new Uint8Array(0)
        this.#buffered = 0
        await this.#startPart(part)
        this.#buffer = new Uint8Array(this.#partSize)
      }
      const n = Math.min(bytes.length - done, this.#partSize - this.#buffered)
      this.#reserve(this.#buffered + n)
      this.#buffer.set(bytes.subarray(done, done + n), this.#buffered)
      this.#buffered += n
      this.#length += n
      done += n
    }
  }

  async finish(options?: AbortOptions): Promise<void> {
    const signal = begin(options)
    this.#checkOpen()
    this.#state = 'finishing'
    try {
      if (this.#uploadId === undefined) {
        const body = this.#buffer.subarray(0, this.#buffered)
        await this.#client.send(new PutObjectCommand({ Bucket: this.#bucket, Key: this.#key, Body: body, ContentLength: body.length }), {
          abortSignal: signal,
        })
      } else {
        if (this.#buffered > 0) await this.#startPart(this.#buffer.subarray(0, this.#buffered), signal)
        await this.#uploading
        if (this.#failure !== undefined) throw this.#failure
        await this.#client.send(
          new CompleteMultipartUploadCommand({
            Bucket: this.#bucket,
            Key: this.#key,
            UploadId: this.#uploadId,
            MultipartUpload: { Parts: this.#parts },
          }),
          { abortSignal: signal },
        )
      }
      this.#state = 'done'
      this.#uploadId = undefined
    } catch (error) {
      // Best effort: an upload left behind is invisible, and a bucket lifecycle rule
      // (AbortIncompleteMultipartUpload) reclaims it.
      await this.abort().catch(() => {})
      throw error instanceof TesseraError ? error : this.#fail(error, signal)
    }
  }

  async abort(): Promise<void> {
    this.#state = 'done'
    this.#buffer = new Uint8Array(0)
    this.#buffered = 0
    await this.#uploading
    const uploadId = this.#uploadId
    this.#uploadId = undefined
    if (uploadId === undefined) return
    try {
      await this.#client.send(new AbortMultipartUploadCommand({ Bucket: this.#bucket, Key: this.#key, UploadId: uploadId }))
    } catch (error) {
      if (errorName(error) !== 'NoSuchUpload') throw this.#fail(error)
    }
  }

  #checkOpen(): void {
    if (this.#state !== 'open') throw new StoreError('ERR_STORE', `${this.#key} is already finished or aborted`)
  }

  /** Waits for the previous part, then starts uploading this one (one part in flight at most). */
  async #startPart(body: Uint8Array, signal?: AbortSignal): Promise<void> {
    await this.#uploading
    if (this.#failure !== undefined) throw this.#failure
    if (this.#uploadId === undefined) {
      try {
        const out = await this.#client.send(new CreateMultipartUploadCommand({ Bucket: this.#bucket, Key: this.#key }), {
          abortSignal: signal,
        })
        this.#uploadId = out.UploadId
      } catch (error) {
        throw this.#fail(error, signal)
      }
      if (this.#uploadId === undefined) throw new StoreError('ERR_STORE', `${this.#key}: CreateMultipartUpload returned no UploadId`)
    }
    const partNumber = this.#parts.length + 1
    if (partNumber > MAX_PARTS) throw new StoreError('ERR_STORE', `${this.#key}: more than ${MAX_PARTS} parts; raise partSize`)
    const command = new UploadPartCommand({
      Bucket: this.#bucket,
      Key: this.#key,
      UploadId: this.#uploadId,
      PartNumber: partNumber,
      Body: body,
      ContentLength: body.length,
    })
    this.#parts.push({ ETag: '', PartNumber: partNumber })
    this.#uploading = this.#client.send(command, { abortSignal: signal }).then(
      (out) => {
        this.#parts[partNumber - 1] = { ETag: out.ETag ?? '', PartNumber: partNumber }
      },
      (error: unknown) => {
        this.#failure = this.#fail(error, signal)
      },
    )
  }

  /** Grows the buffer to hold `size` bytes, doubling (amortized copies) up to partSize. */
  #reserve(size: number): void {
    if (size <= this.#buffer.length) return
    const grown = new Uint8Array(Math.min(this.#partSize, Math.max(size, 2 * this.#buffer.length, 64 * 1024)))
    grown.set(this.#buffer.subarray(0, this.#buffered))
    this.#buffer = grown
  }
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
    return fromIni({ profile: profile ?? 'default', filepath, configFilepath })
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

/** Reads a response body into one array, sized by Content-Length when the server sent it. */
async function readBody(body: unknown, size: number | undefined, what: string): Promise<Uint8Array> {
  const stream = body as AsyncIterable<Uint8Array> | undefined
  if (stream === undefined) return new Uint8Array(0)
  if (size === undefined) {
    const chunks: Uint8Array[] = []
    for await (const chunk of stream) chunks.push(chunk)
    return Buffer.concat(chunks)
  }
  const out = new Uint8Array(size)
  let filled = 0
  for await (const chunk of stream) {
    if (filled + chunk.length > size) throw new IntegrityError(`${what}: more bytes than the ${size} of Content-Length`)
    out.set(chunk, filled)
    filled += chunk.length
  }
  if (filled !== size) throw new IntegrityError(`${what}: the response ended after ${filled} of ${size} bytes`)
  return out
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

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
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

function errorName(error: unknown): string | undefined {
  return (error as { name?: string } | undefined)?.name
}

function httpStatus(error: unknown): number | undefined {
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
