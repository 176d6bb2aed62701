/**
 * Block addressing (spec/format.md, Addresses): CIDv1, sha2-256, codec `raw` for tile
 * payloads and ICC profiles, `dag-cbor` for manifest blocks. At most 1 MiB per block.
 */
import { createHash } from 'node:crypto'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { IntegrityError, InvalidCidError, LimitError } from '../errors.js'

/** Multicodec code of `raw`. */
export const RAW = 0x55
/** Multicodec code of `dag-cbor`. */
export const DAG_CBOR = 0x71
/** Multihash code of `sha2-256`. */
export const SHA2_256 = 0x12
/** Largest block Tessera writes, so that IPFS tools accept every block. */
export const MAX_BLOCK_BYTES = 1 << 20

export { CID }

/** A block: its address and its bytes. */
export interface Block {
  readonly cid: CID
  readonly bytes: Uint8Array
}

/** The CIDv1 of `bytes` under `codec`. Synchronous: Node's sha256 is native. */
export function cidOf(codec: number, bytes: Uint8Array): CID {
  const digest = createHash('sha256').update(bytes).digest()
  // A plain Uint8Array view, so CIDs compare equal however they were made.
  return CID.createV1(codec, Digest.create(SHA2_256, new Uint8Array(digest.buffer, digest.byteOffset, digest.length)))
}

/** A raw block of `bytes`. */
export function rawBlock(bytes: Uint8Array): Block {
  return { cid: cidOf(RAW, bytes), bytes }
}

/** A dag-cbor block of `value`; throws LimitError past MAX_BLOCK_BYTES. */
export function cborBlock(value: unknown): Block {
  const bytes = dagCbor.encode(value)
  if (bytes.length > MAX_BLOCK_BYTES) {
    throw new LimitError(`Manifest block of ${bytes.length} bytes exceeds the ${MAX_BLOCK_BYTES}-byte block limit`)
  }
  return { cid: cidOf(DAG_CBOR, bytes), bytes }
}

/** Decodes dag-cbor bytes, wrapping codec errors as IntegrityError. */
export function decodeCbor(bytes: Uint8Array): unknown {
  try {
    return dagCbor.decode(bytes)
  } catch (cause) {
    throw new IntegrityError('Block is not valid dag-cbor', { cause })
  }
}

/** Throws IntegrityError unless `bytes` hash to `cid`. */
export function verifyBlock(cid: CID, bytes: Uint8Array): void {
  if (cid.multihash.code !== SHA2_256) throw new IntegrityError(`Unsupported multihash 0x${cid.multihash.code.toString(16)} in ${cid}`)
  const digest = createHash('sha256').update(bytes).digest()
  const expected = cid.multihash.digest
  if (digest.length !== expected.length || !digest.equals(expected)) {
    throw new IntegrityError(`Block ${cid} does not match its hash`)
  }
}

/** Parses a CID string; throws InvalidCidError on anything else. */
export function parseCid(text: string): CID {
  if (typeof text !== 'string' || text.length === 0 || text.length > 128) {
    throw new InvalidCidError(`Expected a CID but received ${JSON.stringify(String(text).slice(0, 64))}`)
  }
  let cid: CID
  try {
    cid = CID.parse(text)
  } catch (cause) {
    throw new InvalidCidError(`${JSON.stringify(text)} is not a valid CID`, { cause })
  }
  return cid.toV1()
}
