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
  constructor(code: 'ERR_STORE_LOCKED' | 'ERR_STORE', message: string, options?: { cause?: unknown }) {
    super(code, message, options)
  }
}

/** The operation was cancelled through its AbortSignal. */
export class AbortError extends TesseraError {
  override name = 'AbortError'
  constructor(message = 'The operation was aborted') {
    super('ERR_ABORTED', message)
  }
}
