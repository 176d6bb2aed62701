/**
 * Where a store's files live: a flat namespace of immutable-or-replaced objects under string
 * keys ("packs/….pack", "log/….json"), on a local disk, in memory or in an S3 bucket. The
 * store layout (spec/store.md) is written only in terms of these operations, so every
 * backend holds exactly the same objects.
 */
import type { AbortOptions } from '../interface.js'

/** One object of a listing. */
export interface ObjectInfo {
  /** The key, relative to the driver's root (no leading slash). */
  readonly key: string
  readonly size: number
  /** Last modification, milliseconds since the epoch. */
  readonly modified: number
}

/** Options of `put`. */
export interface PutOptions extends AbortOptions {
  /**
   * Create-only: write only if no object has this key, and answer false (writing nothing) if
   * one does. Atomic against every other writer, on every backend (disk: link(2); S3:
   * `If-None-Match: *`). Without it a put replaces the object atomically (readers see the old
   * or the new bytes, never a mix).
   */
  readonly ifAbsent?: boolean
}

/** Options of `list`. */
export interface ListOptions extends AbortOptions {
  /** Only keys strictly greater than this one (bytewise), like S3's StartAfter. */
  readonly startAfter?: string
}

/** A file being written sequentially: appended to, then finished (made durable) or discarded. */
export interface ObjectSink {
  /** Appends bytes; a sink may buffer. */
  write(bytes: Uint8Array): Promise<void>
  /** Bytes written so far. */
  readonly length: number
  /** Makes the object durable and visible under its key (fsync / upload). */
  finish(options?: AbortOptions): Promise<void>
  /** Discards it: nothing stays under its key. */
  abort(): Promise<void>
}

/** A flat object namespace: see the module comment. Keys use '/' as separator, ASCII only. */
export interface ObjectDriver {
  /** For messages: a directory path, `memory:`, or `s3://bucket/prefix`. */
  readonly location: string
  /** The whole object, or undefined if there is none. */
  get(key: string, options?: AbortOptions): Promise<Uint8Array | undefined>
  /**
   * `length` bytes at `offset` of the object. NotFoundError (ERR_NOT_FOUND) if the object does
   * not exist; IntegrityError (ERR_INTEGRITY) if it has fewer bytes than asked.
   */
  getRange(key: string, offset: number, length: number, options?: AbortOptions): Promise<Uint8Array>
  /**
   * Synchronous `getRange`, offered by backends for which it is cheap (disk, memory). With
   * `into` (`length` bytes), a backend may read into it and return it rather than allocate.
   */
  getRangeSync?(key: string, offset: number, length: number, into?: Uint8Array): Uint8Array
  /** A local file path holding the object, for backends that have one (disk). */
  localPath?(key: string): string
  /** Drops any handle kept on the object (a pack no longer live): its space can be freed once deleted. */
  release?(key: string): void
  /** Removes what writers killed mid-write left behind, for backends whose writes leave temporaries (disk); returns how many. */
  removeStaleTemporaries?(options?: AbortOptions): Promise<number>
  /** Writes a whole object: see PutOptions. Returns false only for an `ifAbsent` put that found the key taken. */
  put(key: string, bytes: Uint8Array, options?: PutOptions): Promise<boolean>
  /**
   * Starts writing a (large) object sequentially. It is complete only once finished; a
   * backend may show it earlier (disk writes the file in place), so the store names such an
   * object nowhere until it is finished (spec/store.md §5.1).
   */
  create(key: string, options?: AbortOptions): Promise<ObjectSink>
  /** The object's size and time, or undefined. */
  stat(key: string, options?: AbortOptions): Promise<ObjectInfo | undefined>
  /** Every object whose key starts with `prefix`, in ascending key order (bytewise). */
  list(prefix: string, options?: ListOptions): AsyncIterable<ObjectInfo>
  /** Deletes the object; nothing happens if it does not exist. */
  delete(key: string, options?: AbortOptions): Promise<void>
  /** Releases handles and connections. */
  close(): Promise<void>
}
