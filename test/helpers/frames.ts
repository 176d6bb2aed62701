/** Series of similar frames for delta-tile tests: an image with a few small patches changed per frame. */
import type { TestImage } from './oracle.js'

/** Frame `k` of a series: `base` with patches 1..k changed (a clock digit, a cursor: a few pixels each). */
export function frameOf(base: TestImage, k: number): TestImage {
  const data = base.data.slice()
  const pixel = base.channels * (base.bits / 8)
  for (let p = 1; p <= k; p++) {
    const x0 = (p * 37) % Math.max(1, base.width - 6)
    const y0 = (p * 23) % Math.max(1, base.height - 4)
    for (let y = y0; y < Math.min(base.height, y0 + 4); y++) {
      for (let x = x0; x < Math.min(base.width, x0 + 6); x++) {
        for (let b = 0; b < pixel; b++) data[(y * base.width + x) * pixel + b] = (p * 41 + b * 7) & 0xff
      }
    }
  }
  return { ...base, data }
}
