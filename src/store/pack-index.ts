/**
 * A pack's sorted index (spec/store.md §4): written once when the pack is sealed, read by
 * anyone without help. Fixed-width entries sorted by digest with a 256-entry fan-out table,
 * as git's pack `.idx` and CARv2's MultihashIndexSorted lay them out, so a reader finds a
 * block with one binary search over a range the fan-out table narrows to ~1/256.
 *
 * ```
 * header   8 bytes  "TSRIDX\x00\x01" (magic, version 1)
 *          4 bytes  u32 LE entry count n
 *          4 bytes  u32 LE 0 (reserved)
 * fanout   256 × u32 LE: fanout[i] = entries whose digest's first byte is <= i
 * entries  n × 48 bytes, ascending by digest (bytewise), no duplicates:
 *          32 bytes sha2-256 digest | u64 LE offset of the block in the pack |
 *          u32 LE block length | u32 LE multicodec code of the CID it was written under
 * trailer  32 bytes sha2-256 of every byte before it
 * ```
 */
import { createHash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { IntegrityError } from '../errors.js'
import { SHA2_256 } from '../format/block.js'

const MAGIC = Uint8Array.of(0x54, 0x53, 0x52, 0x49, 0x44, 0x58, 0x00, 0x01)
const HEADER = 16
const FANOUT = 256 * 4
const ENTRY = 48
const DIGEST = 32
const TRAILER = 32

/** One block of a pack, as its index names it. */
export interface IndexEntry {
  /** The sha2-256 digest (32 bytes). */
  readonly digest: Uint8Array
  readonly offset: number
  readonly length: number
  readonly codec: number
}

/** The bytes of the index of a pack holding `entries` (any order; duplicates keep the first). */
export function encodePackIndex(entries: readonly IndexEntry[]): Uint8Array {
  const sorted = [...entries].sort((a, b) => Buffer.compare(a.digest, b.digest))
  const unique = sorted.filter((entry, i) => i === 0 || Buffer.compare(sorted[i - 1]!.digest, entry.digest) !== 0)
  const out = Buffer.alloc(HEADER + FANOUT + unique.length * ENTRY + TRAILER)
  out.set(MAGIC, 0)
  out.writeUInt32LE(unique.length, 8)
  const counts = new Uint32Array(256)
  for (const entry of unique) counts[entry.digest[0]!]!++
  let total = 0
  for (let i = 0; i < 256; i++) {
    total += counts[i]!
    out.writeUInt32LE(total, HEADER + i * 4)
  }
  let at = HEADER + FANOUT
  for (const entry of unique) {
    if (entry.digest.length !== DIGEST) throw new IntegrityError('A pack index holds sha2-256 digests only')
    out.set(entry.digest, at)
    out.writeBigUInt64LE(BigInt(entry.offset), at + 32)
    out.writeUInt32LE(entry.length, at + 40)
    out.writeUInt32LE(entry.codec, at + 44)
    at += ENTRY
  }
  out.set(createHash('sha256').update(out.subarray(0, at)).digest(), at)
  return new Uint8Array(out.buffer, out.byteOffset, out.length)
}

/** The size of the index of a pack of `count` blocks. */
export function indexBytes(count: number): number {
  return HEADER + FANOUT + count * ENTRY + TRAILER
}

/** A decoded, verified pack index: look-ups by digest. */
export class PackIndex {
  /** Number of blocks. */
  readonly count: number
  readonly #bytes: Buffer

  /** Parses and verifies `bytes` (IntegrityError if they are not a valid index). */
  constructor(bytes: Uint8Array, name = 'pack index') {
    const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)
    if (buffer.length < HEADER + FANOUT + TRAILER || !buffer.subarray(0, 8).equals(MAGIC)) {
      throw new IntegrityError(`${name} is not a Tessera pack index`)
    }
    const count = buffer.readUInt32LE(8)
    if (buffer.length !== HEADER + FANOUT + count * ENTRY + TRAILER || buffer.readUInt32LE(HEADER + 255 * 4) !== count) {
      throw new IntegrityError(`${name} has an inconsistent length`)
    }
    const body = buffer.length - TRAILER
    if (!createHash('sha256').update(buffer.subarray(0, body)).digest().equals(buffer.subarray(body))) {
      throw new IntegrityError(`${name} does not match its checksum`)
    }
    this.count = count
    this.#bytes = buffer
  }

  /** The entry number of `digest`, or -1. */
  find(digest: Uint8Array): number {
    const bytes = this.#bytes
    const first = digest[0]!
    let low = first === 0 ? 0 : bytes.readUInt32LE(HEADER + (first - 1) * 4)
    let high = bytes.readUInt32LE(HEADER + first * 4)
    while (low < high) {
      const middle = (low + high) >>> 1
      const at = HEADER + FANOUT + middle * ENTRY
      const order = bytes.compare(digest, 0, DIGEST, at, at + DIGEST)
      if (order === 0) return middle
      // compare() orders the index bytes against the digest: > 0 means the entry is greater.
      if (order > 0) high = middle
      else low = middle + 1
    }
    return -1
  }

  /** Entry `i`. */
  entry(i: number): IndexEntry {
    const at = HEADER + FANOUT + i * ENTRY
    const bytes = this.#bytes
    return {
      digest: new Uint8Array(bytes.buffer, bytes.byteOffset + at, DIGEST),
      offset: Number(bytes.readBigUInt64LE(at + 32)),
      length: bytes.readUInt32LE(at + 40),
      codec: bytes.readUInt32LE(at + 44),
    }
  }

  /** Offset and length of entry `i`, without allocating its digest. */
  offset(i: number): number {
    return Number(this.#bytes.readBigUInt64LE(HEADER + FANOUT + i * ENTRY + 32))
  }

  length(i: number): number {
    return this.#bytes.readUInt32LE(HEADER + FANOUT + i * ENTRY + 40)
  }

  /** Every entry, in digest order. */
  *entries(): Generator<IndexEntry> {
    for (let i = 0; i < this.count; i++) yield this.entry(i)
  }

  /** Bytes this index occupies in memory. */
  get byteLength(): number {
    return this.#bytes.length
  }
}

/** The CID of an entry (CIDv1, its codec, sha2-256). */
export function entryCid(entry: IndexEntry): CID {
  return CID.createV1(entry.codec, Digest.create(SHA2_256, new Uint8Array(entry.digest)))
}
