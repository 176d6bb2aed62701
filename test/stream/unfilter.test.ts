/**
 * The PNG unfilter's two implementations (src/stream/unfilter.ts): WebAssembly SIMD and
 * JavaScript agree on random rows for every filter type and every bytes-per-pixel PNG has
 * (1 to 8), row lengths around the SIMD step, first row included (zeros above).
 */
import { describe, expect, it } from 'vitest'
import { rowUnfilter } from '../../src/stream/unfilter.js'

function random(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0
    return state >>> 24
  }
}

describe('rowUnfilter', () => {
  const cases = [1, 2, 3, 4, 6, 8].flatMap((bpp) =>
    [bpp, bpp + 1, 17, 64, 301].filter((n) => n >= bpp).map((stride) => [bpp, stride] as const),
  )
  it.each(cases)('bpp %i, stride %i: WebAssembly and JavaScript agree', (bpp, stride) => {
    const next = random(bpp * 1000 + stride)
    const wasm = rowUnfilter(stride, bpp)
    const js = rowUnfilter(stride, bpp, { wasm: false })
    expect(wasm.current.buffer.byteLength, 'rows in WebAssembly memory').toBeGreaterThanOrEqual(1 << 16)
    expect(js.current.buffer.byteLength).toBe(stride + 1)
    for (let y = 0; y < 20; y++) {
      const row = Uint8Array.from({ length: stride + 1 }, (_, i) => (i === 0 ? y % 5 : next()))
      wasm.current.set(row)
      js.current.set(row)
      expect(wasm.unfilter()).toBe(true)
      expect(js.unfilter()).toBe(true)
      expect(Buffer.compare(wasm.current, js.current), `row ${y}, filter ${y % 5}`).toBe(0)
      wasm.swap()
      js.swap()
    }
    for (const rows of [wasm, js]) {
      rows.current[0] = 5
      expect(rows.unfilter()).toBe(false)
    }
  })
})
