/**
 * HTTP error mapping (spec/http.md, Errors): every error becomes a status and a JSON body
 * `{ statusCode, error, code, message }`, in this one place. Tessera errors keep their code;
 * 5xx bodies never carry the internal message (it goes to the log instead).
 */
import { STATUS_CODES } from 'node:http'
import { TesseraError } from '../errors.js'

/** An error that exists only at the HTTP edge, with its own status. */
export class HttpError extends TesseraError {
  override name = 'HttpError'
  readonly statusCode: number
  readonly headers: Readonly<Record<string, string>>

  constructor(statusCode: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(code, message)
    this.statusCode = statusCode
    this.headers = headers
  }
}

/** 406: none of the representations the client accepts can be produced. */
export function notAcceptable(message: string): HttpError {
  return new HttpError(406, 'ERR_NOT_ACCEPTABLE', message)
}

/** 416: a Range that does not overlap the representation. */
export function rangeNotSatisfiable(length: number): HttpError {
  return new HttpError(416, 'ERR_RANGE_NOT_SATISFIABLE', `Range not satisfiable for ${length} bytes`, {
    'content-range': `bytes */${length}`,
  })
}

/** 503: a queue or budget is full; `retryAfter` seconds is a fair wait. */
export function busy(retryAfter = 1, what = 'The server is busy'): HttpError {
  return new HttpError(503, 'ERR_BUSY', `${what}; retry later`, { 'retry-after': String(retryAfter) })
}

/** 413: a response or body that could never fit the server's budget, whatever the load. */
export function overBudget(message: string): HttpError {
  return new HttpError(413, 'ERR_LIMIT', message)
}

/**
 * 408: the client stopped sending its request (RFC 9110 §15.5.9). The connection is closed
 * after the response: what is left of the body will never be read.
 */
export function requestTimeout(message: string): HttpError {
  return new HttpError(408, 'ERR_TIMEOUT', message, { connection: 'close' })
}

/**
 * How a route family maps the codes whose status depends on context: `upload` routes answer
 * 413/415/422 for inputs, `iiif` routes answer 404 for any identifier that names no image
 * (IIIF Image API 3.0 §7.3), everything else uses the default table.
 */
export type ErrorContext = 'default' | 'upload' | 'iiif'

const DEFAULT_STATUS: Record<string, number> = {
  ERR_INVALID_ARGUMENT: 400,
  ERR_INVALID_REGION: 400,
  ERR_INVALID_CID: 400,
  ERR_LIMIT: 400,
  ERR_NOT_FOUND: 404,
  ERR_UNSUPPORTED_FORMAT: 400,
  ERR_CORRUPT_INPUT: 400,
  ERR_INTEGRITY: 500,
  ERR_STORE: 503,
  ERR_STORE_LOCKED: 503,
  ERR_STORE_CONFIG: 500,
  // A commit lost a race with another writer (a dataset's head moved): the client may retry.
  ERR_CONFLICT: 409,
  ERR_ABORTED: 499,
}

const CONTEXT_STATUS: Record<ErrorContext, Record<string, number>> = {
  default: {},
  // In an upload, a block that does not match its CID is the body's (a CAR's), not the store's.
  upload: { ERR_LIMIT: 413, ERR_UNSUPPORTED_FORMAT: 415, ERR_CORRUPT_INPUT: 422, ERR_INTEGRITY: 422 },
  iiif: { ERR_INVALID_CID: 404 },
}

/** What goes on the wire for an error. */
export interface ErrorResponse {
  readonly statusCode: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: { statusCode: number; error: string; code: string; message: string }
}

/** Maps any thrown value to a status, headers and body. */
export function errorResponse(error: unknown, context: ErrorContext = 'default'): ErrorResponse {
  let statusCode = 500
  let code = 'ERR_INTERNAL'
  let headers: Record<string, string> = {}
  if (error instanceof HttpError) {
    statusCode = error.statusCode
    code = error.code
    headers = { ...error.headers }
  } else if (error instanceof TesseraError) {
    code = error.code
    statusCode = CONTEXT_STATUS[context][code] ?? DEFAULT_STATUS[code] ?? 500
  } else if (isClientFrameworkError(error)) {
    // fastify's own 4xx errors (bad content type, malformed URL...): keep their status and code.
    statusCode = error.statusCode
    code = error.code ?? 'ERR_BAD_REQUEST'
  } else if ((error as Error | undefined)?.name === 'AbortError') {
    statusCode = 499
    code = 'ERR_ABORTED'
  }
  // Client errors say what was wrong (trimmed: messages may quote the request); server errors say nothing.
  const message =
    statusCode >= 500
      ? (STATUS_CODES[statusCode] ?? 'Internal Server Error')
      : (error instanceof Error ? error.message : String(error)).slice(0, 1000)
  return { statusCode, headers, body: { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', code, message } }
}

function isClientFrameworkError(error: unknown): error is { statusCode: number; code?: string; message: string } {
  const status = (error as { statusCode?: unknown } | undefined)?.statusCode
  return typeof status === 'number' && status >= 400 && status < 500
}
