/**
 * The pack store's on-disk vocabulary (spec/store.md §3-§4): pack file names, index keys,
 * the 16-byte block location, and a sequential reader of pack sections. Shared by the store
 * (pack-store.ts) and its garbage collector (gc.ts).
 */
import { closeSync, fstatSync, fsyncSync, openSync, readSync } from 'node:fs'
import { join } from 'node:path'
import { varint } from 'multiformats'
import { CID } from 'multiformats/cid'
import { IntegrityError } from '../errors.js'

/** First byte of a block key: 'b' ‖ multihash -> location. */
export const BLOCK_PREFIX = 0x62
/** First byte of a pin key: 'p' ‖ CID -> pin record. */
export const PIN_PREFIX = 0x70
/** First byte of a reference key: 'r' ‖ UTF-8 name -> CID bytes. */
export const REF_PREFIX = 0x72

/** Where a block's bytes are: pack id, offset of the first byte, length. */
export interface Location {
  readonly pack: number
  readonly offset: number
  readonly length: number
}

/** `packs/` + the 8-digit id + `.pack`. */
export function packPath(dir: string, id: number): string {
  return join(dir, 'packs', `${String(id).padStart(8, '0')}.pack`)
}

/** The id of a pack file name, or undefined for anything else in `packs/`. */
export function packId(name: string): number | undefined {
  const match = /^(\d+)\.pack$/.exec(name)
  return match === null ? undefined : Number(match[1])
}

/** `prefix` ‖ `bytes`. */
export function prefixed(prefix: number, bytes: Uint8Array): Uint8Array {
  const key = new Uint8Array(bytes.length + 1)
  key[0] = prefix
  key.set(bytes, 1)
  return key
}

/** The index key of a block: 'b' ‖ the CID's multihash. */
export function blockKey(cid: CID): Uint8Array {
  return prefixed(BLOCK_PREFIX, cid.multihash.bytes)
}

/** The 16-byte little-endian location value. */
export function encodeLocation(location: Location): Uint8Array {
  const out = Buffer.allocUnsafe(16)
  out.writeUInt32LE(location.pack, 0)
  out.writeBigUInt64LE(BigInt(location.offset), 4)
  out.writeUInt32LE(location.length, 12)
  return out
}

/** Decodes a location value; IntegrityError unless it is 16 bytes. */
export function decodeLocation(value: Uint8Array): Location {
  if (value.length !== 16) throw new IntegrityError('Malformed block location in the store index')
  const view = Buffer.from(value.buffer, value.byteOffset, value.length)
  return { pack: view.readUInt32LE(0), offset: Number(view.readBigUInt64LE(4)), length: view.readUInt32LE(12) }
}

/** Makes a new or removed file's directory entry durable (POSIX: fsync the directory). */
export function syncDirectory(dir: string): void {
  const fd = openSync(dir, 'r')
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

/** One section of a pack: `varint ‖ CID ‖ block`, with the block's offset in the file. */
export interface PackSection {
  readonly cid: CID
  /** The section's bytes from the CID on (CID ‖ block), ready to append to another pack. */
  readonly body: Uint8Array
  /** Offset of the block's first byte in the pack. */
  readonly offset: number
  readonly block: Uint8Array
}

const READ_CHUNK = 4 << 20

/**
 * The sections of a pack, in file order, read sequentially (spec/store.md §8, rebuild). Stops
 * at a section that runs past the end of the file or cannot be parsed: a crash tail.
 */
export function* readPackSections(path: string): Generator<PackSection> {
  const fd = openSync(path, 'r')
  try {
    const size = fstatSync(fd).size
    let buffer = Buffer.alloc(0)
    let bufferStart = 0 // file offset of buffer[0]
    // Makes buffer hold bytes [at, at + n) of the file (n clipped to the file's end).
    const fill = (at: number, n: number): void => {
      const end = Math.min(size, at + n)
      if (at >= bufferStart && end <= bufferStart + buffer.length) return
      const next = Buffer.allocUnsafe(Math.max(end - at, Math.min(READ_CHUNK, size - at)))
      let filled = 0
      if (at >= bufferStart && at < bufferStart + buffer.length) filled = buffer.copy(next, 0, at - bufferStart)
      while (filled < next.length) {
        const read = readSync(fd, next, filled, next.length - filled, at + filled)
        if (read === 0) break
        filled += read
      }
      buffer = next.subarray(0, filled)
      bufferStart = at
    }
    let at = 0
    while (at < size) {
      fill(at, 10)
      let length: number
      let lengthBytes: number
      try {
        ;[length, lengthBytes] = varint.decode(buffer.subarray(at - bufferStart, at - bufferStart + 10))
      } catch {
        return
      }
      if (at + lengthBytes + length > size) return
      fill(at, lengthBytes + length)
      const start = at - bufferStart + lengthBytes
      const body = buffer.subarray(start, start + length)
      let cid: CID
      try {
        cid = CID.decodeFirst(body)[0]
      } catch {
        return
      }
      const cidLength = cid.bytes.length
      yield { cid, body, offset: at + lengthBytes + cidLength, block: body.subarray(cidLength) }
      at += lengthBytes + length
    }
  } finally {
    closeSync(fd)
  }
}
