/**
 * A fixed slice of the kill -9 chaos part (scripts/chaos/kill.ts, issue 10): 12 rounds on disk,
 * every writing command at least once (import, dataset import, rm, prune, gc, car import,
 * repair, an upload to `tessera serve`), each SIGKILLed at a seeded moment with readers cropping
 * beside it, then verify --all, exact crops, a rerun and two collections. The seed is
 * fixed so that `npm test` repeats the same choices; `npm run chaos -- --only kill` runs many more.
 * Runs the built CLI: `npm run build` first.
 */
import { describe, expect, it } from 'vitest'
import { formatSummary, KINDS, killChaos } from '../../scripts/chaos/kill.js'
import { cliIsStale } from '../helpers/processes.js'

const SEED = 20_261_206
const ROUNDS = 12

describe('kill -9 chaos (a fixed slice)', () => {
  it(`${ROUNDS} rounds on disk, seed ${SEED}: no lost or wrong image, every rerun succeeds, no orphan survives gc`, {
    timeout: 240_000,
  }, async () => {
    expect(cliIsStale(), 'dist/bundle is missing or older than src/: run npm run build').toBe(false)
    const lines: string[] = []
    const summary = await killChaos({ seed: SEED, rounds: ROUNDS, store: 'disk', log: (line) => lines.push(line) })
    const report = `${lines.join('\n')}\n${formatSummary(summary)}`
    console.info(report)
    expect(summary.failures, report).toEqual([])
    expect(summary.rounds).toBe(ROUNDS)
    for (const kind of KINDS) expect(summary.perCommand[kind].rounds, kind).toBeGreaterThan(0)
    // Most rounds kill their command (a few finish first, by design: kills are aimed up to 105 % of a run).
    expect(summary.killPoints, report).toBeGreaterThanOrEqual(6)
    expect(summary.crops.total, report).toBeGreaterThan(50)
  })
})
