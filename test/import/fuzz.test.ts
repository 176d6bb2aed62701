/**
 * The decoder fuzzer (test/import/fuzz.ts, `npm run chaos -- --only fuzz`): every crasher it
 * ever found (testdata/bad/crashers/*.bin) now decodes or fails with a Tessera code, through the
 * hand-written decoders and through the whole importer; a slice of the fuzz runs here in
 * process; and the harness itself reports crashes, hangs, deaths and memory blow-ups.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { tesseraCode } from '../../src/errors.js'
import { importImage } from '../../src/import/importer.js'
import { MemoryBlockStore } from '../../src/store/memory.js'
import { runFuzz } from '../helpers/fuzz.js'
import { CRASHERS, DECODERS_FUZZ, decodeHandWritten, fuzzInput } from './fuzz.js'

const tmp = mkdtempSync(join(tmpdir(), 'tessera-fuzz-test-'))
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

const crashers = existsSync(CRASHERS) ? readdirSync(CRASHERS).filter((name) => name.endsWith('.bin')) : []

describe('fuzz crashers (testdata/bad/crashers)', () => {
  it('has the crashers found so far', () => {
    expect(crashers.length).toBeGreaterThan(0)
  })

  it.each(crashers)('%s: a Tessera code or a decode, never another error', async (name) => {
    const path = join(CRASHERS, name)
    const outcome = await decodeHandWritten(path)
    expect(outcome.kind, JSON.stringify(outcome)).not.toBe('crash')
    const dir = mkdtempSync(join(tmp, 'import-'))
    const error = await importImage(new MemoryBlockStore(), path, { tmpDir: dir, workers: 0 }).then(
      () => undefined,
      (e: unknown) => e,
    )
    if (error !== undefined) expect(tesseraCode(error), String(error)).toBeDefined()
    expect(readdirSync(dir)).toEqual([])
  })
})

describe('fuzz inputs', () => {
  it('are a pure function of seed and index', () => {
    expect(Buffer.compare(fuzzInput(5, 17).bytes, fuzzInput(5, 17).bytes)).toBe(0)
    expect(fuzzInput(5, 17).ops).toEqual(fuzzInput(5, 17).ops)
    expect(Buffer.compare(fuzzInput(5, 17).bytes, fuzzInput(5, 18).bytes)).not.toBe(0)
  })

  it('300 inputs of seed 1, in process: none fails without a Tessera code', async () => {
    const path = join(tmp, 'input')
    const { writeFileSync } = await import('node:fs')
    const bad: string[] = []
    for (let i = 0; i < 300; i++) {
      writeFileSync(path, fuzzInput(1, i).bytes)
      const outcome = await decodeHandWritten(path)
      if (outcome.kind === 'crash') bad.push(`${i}: ${outcome.error}`)
    }
    expect(bad).toEqual([])
  })
})

describe('fuzz harness', () => {
  it('reports a crash, a hang, a dead worker and a memory blow-up, and goes on after each', async () => {
    const dir = join(tmp, 'crashers')
    process.env.TESSERA_FUZZ_INJECT = '1:crash,3:hang,4:die,6:memory'
    let report: Awaited<ReturnType<typeof runFuzz>>
    try {
      report = await runFuzz({ target: DECODERS_FUZZ, seed: 9, iterations: 8, timeoutMs: 4000, maxRssMiB: 384, crashersDir: dir })
    } finally {
      delete process.env.TESSERA_FUZZ_INJECT
    }
    expect(
      report.crashers.map((c) => [c.i, c.kind]),
      JSON.stringify(report.crashers),
    ).toEqual([
      [1, 'crash'],
      [3, 'hang'],
      [4, 'died'],
      [6, 'memory'],
    ])
    // Every other input ran: 8 in all.
    expect(Object.values(report.outcomes).reduce((a, b) => a + b, 0)).toBe(8)
    expect(readdirSync(dir).filter((n) => n.endsWith('.bin'))).toHaveLength(4)
  }, 60_000)
})
