/**
 * The CAR-import fuzzer (test/car/fuzz.ts, `npm run chaos -- --only fuzz-car`): a slice of it
 * in process. Every input imports whole (then verifies and crops) or fails with a Tessera code
 * and leaves the store empty.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { fuzzInput, importMutatedCar } from './fuzz.js'

const tmp = mkdtempSync(join(tmpdir(), 'tessera-car-fuzz-test-'))
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

describe('CAR import fuzz', () => {
  it('400 inputs of seed 1: each imports whole or fails with a code, leaving the store empty', async () => {
    const path = join(tmp, 'input.car')
    const bad: string[] = []
    const outcomes = new Set<string>()
    for (let i = 0; i < 400; i++) {
      writeFileSync(path, fuzzInput(1, i).bytes)
      const outcome = await importMutatedCar(path)
      outcomes.add(outcome.kind === 'coded' ? outcome.code : outcome.kind)
      if (outcome.kind === 'crash') bad.push(`${i}: ${outcome.error}`)
    }
    expect(bad).toEqual([])
    // Some mutations leave a valid CAR (a trailing byte, a root changed to another block);
    // the rest are caught by the CAR reader or by the blocks' hashes.
    expect([...outcomes].sort()).toEqual(['ERR_CORRUPT_INPUT', 'ERR_INTEGRITY', 'ok'])
  }, 60_000)
})
