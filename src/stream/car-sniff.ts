/**
 * Telling a CAR by its first bytes, and the varints of its framing
 * (https://ipld.io/specs/transport/car/carv1/, carv2/). Apart from car.ts so that sniffing loads
 * nothing else.
 */
import { CorruptInputError } from '../errors.js'

/** CARv2's fixed pragma. */
export const V2_PRAGMA = [0x0a, 0xa1, 0x67, 0x76, 0x65, 0x72, 0x73, 0x69, 0x6f, 0x6e, 0x02]

/** Whether the first bytes look like a CAR: CARv2's pragma, or a CARv1 header `{roots, version}`. */
export function isCar(head: Uint8Array): boolean {
  if (V2_PRAGMA.every((b, i) => head[i] === b)) return true
  let length: ReturnType<typeof readVarint>
  try {
    length = readVarint(head, 0)
  } catch {
    return false
  }
  if (length === undefined || length.value < 8) return false
  const at = length.bytes
  // dag-cbor sorts keys by length: a map of two entries, `roots` first.
  return head[at] === 0xa2 && head[at + 1] === 0x65 && String.fromCharCode(...head.subarray(at + 2, at + 7)) === 'roots'
}

/** An unsigned LEB128 varint at `at` (at most 7 bytes), or undefined when `bytes` ends first. */
export function readVarint(bytes: Uint8Array, at: number): { value: number; bytes: number } | undefined {
  let value = 0
  for (let i = 0; i < 7; i++) {
    const byte = bytes[at + i]
    if (byte === undefined) return undefined
    value += (byte & 0x7f) * 2 ** (7 * i)
    if (byte < 0x80) return { value, bytes: i + 1 }
  }
  throw new CorruptInputError('CAR varint is too long')
}
