import { describe, expect, it } from 'vitest'
import { COLLECT_AFTER_BYTES, collectingAsWritten } from '../../src/cli/command.js'

describe('collectingAsWritten (a CLI output collects its heap as large outputs are written)', () => {
  it('passes every chunk on unchanged and collects once per COLLECT_AFTER_BYTES taken in large chunks, after the chunk', async () => {
    const MiB = 1 << 20
    const sizes = [10 * MiB, 10 * MiB, 1, 16 * MiB, 5 * MiB, 100, 12 * MiB]
    const chunks = sizes.map((size, i) => new Uint8Array(size).fill(i))
    const events: string[] = []
    async function* source() {
      for (const [i, chunk] of chunks.entries()) {
        events.push(`made ${i}`)
        yield chunk
      }
    }
    const out: Uint8Array[] = []
    for await (const chunk of collectingAsWritten(source(), () => events.push('collect'))) {
      events.push(`wrote ${out.length}`)
      out.push(chunk)
    }
    expect(out).toHaveLength(chunks.length)
    for (const [i, chunk] of out.entries()) expect(chunk).toBe(chunks[i])
    expect(COLLECT_AFTER_BYTES).toBe(16 * MiB)
    // 20 MiB after chunk 1, 16 MiB after chunk 3, 17 MiB after chunk 6: each collection comes
    // once the chunk that crossed the mark was written, before the next is made.
    expect(events).toEqual([
      'made 0',
      'wrote 0',
      'made 1',
      'wrote 1',
      'collect',
      'made 2',
      'wrote 2',
      'made 3',
      'wrote 3',
      'collect',
      'made 4',
      'wrote 4',
      'made 5',
      'wrote 5',
      'made 6',
      'wrote 6',
      'collect',
    ])
  })

  it('does not count chunks under 1 MiB (samples, narrow bands): young collections free them', async () => {
    async function* small() {
      for (let i = 0; i < 40; i++) yield new Uint8Array((1 << 20) - 1)
    }
    let collections = 0
    let total = 0
    for await (const chunk of collectingAsWritten(small(), () => collections++)) total += chunk.length
    expect(total).toBe(40 * ((1 << 20) - 1))
    expect(collections).toBe(0)
  })

  it('collects for real by default: the process goes on', async () => {
    async function* big() {
      for (let i = 0; i < 3; i++) yield new Uint8Array(COLLECT_AFTER_BYTES)
    }
    let total = 0
    for await (const chunk of collectingAsWritten(big())) total += chunk.length
    expect(total).toBe(3 * COLLECT_AFTER_BYTES)
  })
})
