/** A seeded xorshift32 generator of numbers in [0, 1): tests that draw at random draw the same each run. */
export function random(seed: number): () => number {
  let x = seed >>> 0 || 1
  return () => {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    return x / 2 ** 32
  }
}

/**
 * mulberry32 (public domain, Tommy Ettinger): a tiny seeded generator of numbers in [0, 1), the
 * one the fuzzers and the writer tests draw from (their inputs are named by seed and index).
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
