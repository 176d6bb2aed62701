/**
 * The stream-cropping fuzzer (test/stream/fuzz.ts, `npm run chaos -- --only fuzz-stream`):
 * every crasher it found (testdata/bad/stream-crashers/*.bin) now crops or fails with a Tessera
 * code from its file and from a stream alike, and a slice of the fuzz runs here in process.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { cropHandWritten, fuzzInput, STREAM_CRASHERS } from './fuzz.js'

const tmp = mkdtempSync(join(tmpdir(), 'tessera-stream-fuzz-test-'))
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

const crashers = existsSync(STREAM_CRASHERS) ? readdirSync(STREAM_CRASHERS).filter((name) => name.endsWith('.bin')) : []

describe('stream fuzz crashers (testdata/bad/stream-crashers)', () => {
  it('has the crashers found so far', () => {
    expect(crashers.length).toBeGreaterThan(0)
  })

  it.each(crashers)('%s: a Tessera code or a crop, never another error', async (name) => {
    const outcome = await cropHandWritten(join(STREAM_CRASHERS, name))
    expect(outcome.kind, JSON.stringify(outcome)).not.toBe('crash')
  })

  it('a tag claiming billions of values, on a stream: refused before anything is allocated', async () => {
    // Input 397 of seed 3: an IFD entry's count mutated to billions, its values far past the header.
    const outcome = await cropHandWritten(join(STREAM_CRASHERS, 'crash-s3-i397-7182cf50a113.bin'))
    expect(outcome).toEqual({ kind: 'coded', code: 'file ERR_CORRUPT_INPUT, stream ERR_UNSUPPORTED_FORMAT' })
  })
})

describe('stream fuzz inputs', () => {
  it('are a pure function of seed and index, and leave the seeds as they were', () => {
    const first = fuzzInput(5, 17)
    for (let i = 0; i < 50; i++) fuzzInput(5, i)
    expect(Buffer.compare(fuzzInput(5, 17).bytes, first.bytes)).toBe(0)
    expect(fuzzInput(5, 17).ops).toEqual(first.ops)
  })

  it('300 inputs of seed 1, in process: none fails without a Tessera code', async () => {
    const path = join(tmp, 'input')
    const bad: string[] = []
    const kinds = new Set<string>()
    for (let i = 0; i < 300; i++) {
      writeFileSync(path, fuzzInput(1, i).bytes)
      const outcome = await cropHandWritten(path)
      kinds.add(outcome.kind)
      if (outcome.kind === 'crash') bad.push(`${i}: ${outcome.error}`)
    }
    expect(bad).toEqual([])
    // The mutations let some inputs through to a whole crop, and stop others with a code.
    expect([...kinds].sort()).toEqual(['coded', 'ok'])
  }, 60_000)
})
