import { describe, expect, it } from 'vitest'
import { crc32 } from '../../../src/crop/writers/crc32.js'
import { random } from './images.js'

/** Bit-at-a-time CRC-32, straight from the PNG spec's Annex D, as the oracle. */
function naive(data: Uint8Array): number {
  let c = 0xffffffff
  for (const byte of data) {
    c ^= byte
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
  }
  return (c ^ 0xffffffff) >>> 0
}

describe('crc32', () => {
  it('matches the check value and the empty input', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926)
    expect(crc32(new Uint8Array(0))).toBe(0)
  })

  it('matches the bitwise oracle for every length up to 64 and any offset', () => {
    const next = random(3)
    const data = Uint8Array.from({ length: 80 }, () => Math.floor(next() * 256))
    for (let start = 0; start < 4; start++) {
      for (let length = 0; length <= 64; length++) {
        const slice = data.subarray(start, start + length)
        expect(crc32(slice)).toBe(naive(slice))
      }
    }
  })

  it('continues across pieces', () => {
    const data = new TextEncoder().encode('IHDR and then some more bytes')
    expect(crc32(data.subarray(7), crc32(data.subarray(0, 7)))).toBe(crc32(data))
  })
})
