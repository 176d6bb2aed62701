/**
 * Strict field checks for decoding dag-cbor blocks into typed values: each failure is an
 * IntegrityError naming the structure and the field. Shared by every block decoder.
 */
import { CID } from 'multiformats/cid'
import { IntegrityError } from '../errors.js'
import { SHA2_256 } from './block.js'

/** Field checks whose errors read "Invalid `what`: bad `field`". */
export function fieldChecks(what: string) {
  const invalid = (field: string): IntegrityError => new IntegrityError(`Invalid ${what}: bad ${field}`)
  return {
    invalid,
    /** A map (not a list, bytes or link). */
    record(value: unknown, field: string): Record<string, unknown> {
      if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof Uint8Array || CID.asCID(value)) {
        throw invalid(field)
      }
      return value as Record<string, unknown>
    },
    /** An integer from `min` to `max`. */
    int(value: unknown, field: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
      if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) throw invalid(field)
      return value
    },
    /** A CIDv1 link with multicodec `codec` and a sha2-256 multihash (format.md §4: every block's address). */
    link(value: unknown, codec: number, field: string): CID {
      const cid = CID.asCID(value)
      if (cid === null || cid.version !== 1 || cid.code !== codec || cid.multihash.code !== SHA2_256 || cid.multihash.size !== 32) {
        throw invalid(field)
      }
      return cid
    },
  }
}
