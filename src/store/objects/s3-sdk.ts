/**
 * The S3 driver's writes, through the AWS SDK v3: the one module that imports it. The driver
 * (s3.ts) loads it on its first write, or when credentials come from a shared-config profile,
 * so that a process that only reads (a `tessera crop`) never pays for loading the SDK (~110 ms
 * and 2-3 ms of CPU a request, bench/README.md, S3).
 *
 * - `If-None-Match: *` on PutObject makes create-only puts atomic (radosgw: an exclusive
 *   RADOS create of the head object; AWS since 2024-08). A losing writer gets 412.
 * - Checksums only when an operation requires them (`WHEN_REQUIRED`): the SDK's default
 *   CRC32 trailers and aws-chunked bodies (SDK >= 3.729) are refused by Ceph 16 (411).
 */
import { Agent as HttpAgent } from 'node:http'
import { Agent as HttpsAgent } from 'node:https'
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3'
import { fromIni } from '@aws-sdk/credential-provider-ini'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import { AbortError, StoreError, TesseraError } from '../../errors.js'
import type { AbortOptions } from '../interface.js'
import type { ObjectSink, PutOptions } from './interface.js'
import { errorName, httpStatus, type S3CredentialProvider, type S3Identity, sleep } from './s3.js'

/** What the SDK half of a driver needs: the driver's settings, resolved. */
export interface S3WriterInit {
  readonly bucket: string
  readonly endpoint?: string
  readonly region: string
  readonly credentials: S3CredentialProvider
  readonly maxSockets: number
  readonly maxAttempts?: number
  readonly partSize: number
  /** Wraps an SDK failure as the driver's error for `verb` on `key`. */
  readonly fail: (error: unknown, verb: string, key: string, signal?: AbortSignal) => Error
}

const MAX_PARTS = 10_000
// AWS answers 409 ConditionalRequestConflict to a conditional write racing another one on the
// same key, and asks for a retry, which then ends in 200 or 412 (S3 user guide, "Conditional writes").
const CONFLICT_RETRIES = 5

/** The writes of one driver (keys are full object names, prefix included). */
export class S3Writer {
  readonly #client: S3Client
  readonly #init: S3WriterInit

  constructor(init: S3WriterInit) {
    this.#init = init
    // The SDK warns on stderr on Node < 22 (its future minimum), which a CLI must not print.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'
    this.#client = new S3Client({
      region: init.region,
      ...(init.endpoint === undefined ? {} : { endpoint: init.endpoint, forcePathStyle: true }),
      credentials: init.credentials,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      ...(init.maxAttempts === undefined ? {} : { maxAttempts: init.maxAttempts }),
      requestHandler: new NodeHttpHandler({
        httpAgent: new HttpAgent({ keepAlive: true, maxSockets: init.maxSockets }),
        httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets: init.maxSockets }),
        connectionTimeout: 10_000,
        // A silent server fails the request (retried by the SDK) instead of hanging it.
        socketTimeout: 120_000,
      }),
    })
  }

  async put(name: string, key: string, bytes: Uint8Array, options: PutOptions = {}): Promise<boolean> {
    const signal = options.signal
    const command = new PutObjectCommand({
      Bucket: this.#init.bucket,
      Key: name,
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
        throw this.#init.fail(error, 'write', key, signal)
      }
    }
  }

  create(name: string, key: string): ObjectSink {
    return new S3Sink(this.#client, this.#init.bucket, name, this.#init.partSize, (error, signal) =>
      this.#init.fail(error, 'write', key, signal),
    )
  }

  async delete(name: string, key: string, options?: AbortOptions): Promise<void> {
    const signal = options?.signal
    try {
      await this.#client.send(new DeleteObjectCommand({ Bucket: this.#init.bucket, Key: name }), { abortSignal: signal })
    } catch (error) {
      // S3 answers 204 for a missing key; some servers say 404.
      if (errorName(error) === 'NoSuchKey') return
      throw this.#init.fail(error, 'delete', key, signal)
    }
  }

  close(): void {
    this.#client.destroy()
  }
}

/**
 * The credentials of a profile of the shared config files, as the AWS CLI reads them (never
 * from the instance metadata service: AWS_EC2_METADATA_DISABLED is set by the driver).
 */
export function profileCredentials(init: { profile: string; filepath: string; configFilepath: string }): () => Promise<S3Identity> {
  return fromIni(init)
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
    if (options?.signal?.aborted === true) throw new AbortError()
    const signal = options?.signal
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
