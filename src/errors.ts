/**
 * Typed errors with stable codes. Callers (CLI, HTTP) map `code`, never the message.
 * This module imports nothing so every layer can use it.
 */

/** Base class of every error Tessera throws on purpose. */
export class TesseraError extends Error {
  /** Stable, documented code (see spec/errors.md). */
  readonly code: string

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
  }
}

/** A block, image or name that is not in the store. */
export class NotFoundError extends TesseraError {
  override name = 'NotFoundError'
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_NOT_FOUND', message, options)
  }
}

/** A region that is empty, negative or extends past the image. */
export class InvalidRegionError extends TesseraError {
  override name = 'InvalidRegionError'
  constructor(message: string) {
    super('ERR_INVALID_REGION', message)
  }
}

/** An argument or option with a wrong type or value. */
export class InvalidArgumentError extends TesseraError {
  override name = 'InvalidArgumentError'
  constructor(message: string) {
    super('ERR_INVALID_ARGUMENT', message)
  }
}

/** A string that is not a valid CID, or a CID of the wrong codec. */
export class InvalidCidError extends TesseraError {
  override name = 'InvalidCidError'
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_INVALID_CID', message, options)
  }
}

/** An input whose format or pixel layout Tessera cannot import. */
export class UnsupportedFormatError extends TesseraError {
  override name = 'UnsupportedFormatError'
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_UNSUPPORTED_FORMAT', message, options)
  }
}

/** An input that claims a supported format but is truncated or corrupt. */
export class CorruptInputError extends TesseraError {
  override name = 'CorruptInputError'
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_CORRUPT_INPUT', message, options)
  }
}

/** A stored block whose bytes do not hash to its CID, or a malformed stored structure. */
export class IntegrityError extends TesseraError {
  override name = 'IntegrityError'
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_INTEGRITY', message, options)
  }
}

/** A configured limit (pixels, block size, dimensions) was exceeded. */
export class LimitError extends TesseraError {
  override name = 'LimitError'
  constructor(message: string) {
    super('ERR_LIMIT', message)
  }
}

/** The store could not be opened (locked by another process, unreadable, wrong version). */
export class StoreError extends TesseraError {
  override name = 'StoreError'
  constructor(code: 'ERR_STORE_LOCKED' | 'ERR_STORE' | 'ERR_STORE_CONFIG', message: string, options?: { cause?: unknown }) {
    super(code, message, options)
  }
}

/**
 * A compare-and-swap lost: another writer changed what this one expected (a store reference,
 * spec/store.md §5), or garbage collection removed data a long transaction relied on. Safe to
 * retry: nothing was written.
 */
export class ConflictError extends TesseraError {
  override name = 'ConflictError'
  /** What was lost: a reference's compare-and-swap (look again and retry), or the transaction itself (run it again). */
  readonly reason: 'reference' | 'transaction'
  constructor(message: string, options?: { cause?: unknown; reason?: 'reference' | 'transaction' }) {
    super('ERR_CONFLICT', message, options)
    this.reason = options?.reason ?? 'reference'
  }
}

/** The operation was cancelled through its AbortSignal. */
export class AbortError extends TesseraError {
  override name = 'AbortError'
  constructor(message = 'The operation was aborted') {
    super('ERR_ABORTED', message)
  }
}

/**
 * An output that cannot be written: a file named with `-o` whose directory does not exist, is
 * not writable or is full, a directory given as the output, or a standard output that fails
 * with anything but EPIPE. The system error is the `cause`.
 */
export class OutputError extends TesseraError {
  override name = 'OutputError'
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_OUTPUT', message, options)
  }
}

/** Builds the error of one code, with a message (and a cause where the class keeps one). */
type ErrorFromMessage = (message: string, options?: { cause?: unknown }) => TesseraError

/** A code whose errors are plain TesseraErrors (the HTTP server's own codes, `serve`'s ERR_LISTEN). */
const plain =
  (code: string): ErrorFromMessage =>
  (message, options) =>
    new TesseraError(code, message, options)

/**
 * Every code Tessera raises on purpose (spec/errors.md, and http.md §9 for the HTTP-only ones)
 * and the class that carries it: the one table read by everything that gets an error back
 * across a thread or process boundary, where its class is lost and only `code` is left.
 */
const BY_CODE: ReadonlyMap<string, ErrorFromMessage> = new Map<string, ErrorFromMessage>([
  ['ERR_NOT_FOUND', (message, options) => new NotFoundError(message, options)],
  ['ERR_INVALID_REGION', (message) => new InvalidRegionError(message)],
  ['ERR_INVALID_ARGUMENT', (message) => new InvalidArgumentError(message)],
  ['ERR_INVALID_CID', (message, options) => new InvalidCidError(message, options)],
  ['ERR_UNSUPPORTED_FORMAT', (message, options) => new UnsupportedFormatError(message, options)],
  ['ERR_CORRUPT_INPUT', (message, options) => new CorruptInputError(message, options)],
  ['ERR_INTEGRITY', (message, options) => new IntegrityError(message, options)],
  ['ERR_LIMIT', (message) => new LimitError(message)],
  ['ERR_STORE', (message, options) => new StoreError('ERR_STORE', message, options)],
  ['ERR_STORE_LOCKED', (message, options) => new StoreError('ERR_STORE_LOCKED', message, options)],
  ['ERR_STORE_CONFIG', (message, options) => new StoreError('ERR_STORE_CONFIG', message, options)],
  ['ERR_CONFLICT', (message, options) => new ConflictError(message, options)],
  ['ERR_ABORTED', (message) => new AbortError(message)],
  ['ERR_OUTPUT', (message, options) => new OutputError(message, options)],
  ...['ERR_NOT_ACCEPTABLE', 'ERR_RANGE_NOT_SATISFIABLE', 'ERR_NOT_IMPLEMENTED', 'ERR_BUSY', 'ERR_INTERNAL', 'ERR_LISTEN'].map(
    (code) => [code, plain(code)] as const,
  ),
])

/** Whether `code` is one of Tessera's error codes (spec/errors.md). */
export function isTesseraCode(code: unknown): code is string {
  return typeof code === 'string' && BY_CODE.has(code)
}

/**
 * The error of Tessera's class for `code`, e.g. an IntegrityError for `ERR_INTEGRITY`: rebuilds
 * an error that crossed a thread or process boundary as `{ code, message }`. Undefined when
 * `code` is not one of Tessera's.
 */
export function errorFromCode(code: string, message: string, options?: { cause?: unknown }): TesseraError | undefined {
  return BY_CODE.get(code)?.(message, options)
}

/**
 * The Tessera code of `error`: its `code` if it is a TesseraError, or any error whose `code`
 * is one of Tessera's (an error from another thread, realm or copy of this module, whose class
 * did not survive). Undefined for anything else, e.g. Node's own `ERR_STREAM_DESTROYED`.
 */
export function tesseraCode(error: unknown): string | undefined {
  if (error instanceof TesseraError) return error.code
  const code = (error as { code?: unknown } | null)?.code
  return isTesseraCode(code) ? code : undefined
}
