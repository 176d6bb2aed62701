/**
 * `npm run chaos`: the chaos suite of issue 10, a list of named parts run in order, each with
 * the seed it was given (printed, so a failure reproduces with the same `--seed`).
 *
 *   npm run chaos [-- --only fuzz,fuzz-stream,fuzz-car,corpus] [--seed S] [--iterations N] [--timeout-ms T] [--list]
 *
 * Parts:
 *   fuzz    seeded mutation fuzz of the hand-written TIFF and PNM decoders (test/import/fuzz.ts):
 *           N inputs (default 2000) in worker processes, each under a timeout and a memory
 *           budget; every input must decode or fail with a Tessera code. Crashers are written to
 *           testdata/bad/crashers/ (replayed by test/import/fuzz.test.ts).
 *   fuzz-stream  the same over stream cropping (test/stream/fuzz.ts): every input cropped from
 *           its file and from a stream of small chunks, both to succeed alike or fail with a
 *           code, leaving no temporary or open file. Crashers: testdata/bad/stream-crashers/.
 *   fuzz-car  the same over CAR import (test/car/fuzz.ts): all or nothing into a fresh memory
 *           store, then verify and crop whatever was imported.
 *   corpus  the bad-input corpus (testdata/bad/make.ts) imported case by case in one process:
 *           expected codes, time, temporary disk, store unchanged, peak RSS.
 *   kill    kill -9 at seeded moments of every writing command, readers beside them, then verify,
 *           exact crops, a rerun and gc (scripts/chaos/kill.ts): --rounds N (default 240),
 *           --store disk|s3.
 *
 * To add a part (e.g. kill -9 of writing commands), append a ChaosPart to PARTS: `run` gets the
 * seed and the parsed options and returns whether it passed and a summary.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { formatSummary, killChaos } from '../scripts/chaos/kill.js'
import { CAR_FUZZ } from '../test/car/fuzz.js'
import { type FuzzTarget, runFuzz } from '../test/helpers/fuzz.js'
import type { CaseResult } from '../test/import/bad-inputs-child.js'
import { DECODERS_FUZZ } from '../test/import/fuzz.js'
import { STREAM_FUZZ } from '../test/stream/fuzz.js'
import { writeCorpus } from '../testdata/bad/make.js'

/** What a part is given. */
export interface ChaosContext {
  readonly seed: number
  /** Every option of the command line, as given (parts read their own). */
  readonly options: Readonly<Record<string, string | boolean | undefined>>
  readonly log: (line: string) => void
}

/** One named part of the suite. */
export interface ChaosPart {
  readonly name: string
  readonly describe: string
  run(context: ChaosContext): Promise<{ readonly ok: boolean; readonly summary: string }>
}

const ROOT = fileURLToPath(new URL('../', import.meta.url))

/** A mutation fuzz part over `target` (test/helpers/fuzz.ts). */
function fuzzPart(name: string, target: FuzzTarget, describe: string): ChaosPart {
  return {
    name,
    describe: `${describe} (--iterations N, --timeout-ms T)`,
    async run({ seed, options, log }) {
      const iterations = Number(options.iterations ?? 2000)
      const report = await runFuzz({
        target,
        seed,
        iterations,
        timeoutMs: Number(options['timeout-ms'] ?? 5000),
        log,
      })
      const outcomes = Object.entries(report.outcomes)
        .sort((a, b) => b[1] - a[1])
        .map(([k, n]) => `${k} ${n}`)
        .join(', ')
      return {
        ok: report.crashers.length === 0,
        summary: `${report.iterations} inputs in ${(report.ms / 1000).toFixed(1)} s (${outcomes}); peak RSS ${report.peakRssMiB} MiB; ${report.crashers.length} crashers${report.crashers.map((c) => `\n  ${c.kind} at input ${c.i}: ${c.detail} ${c.file ?? ''}`).join('')}`,
      }
    },
  }
}

const fuzz = fuzzPart('fuzz', DECODERS_FUZZ, 'mutation fuzz of the TIFF and PNM decoders')
const fuzzStream = fuzzPart('fuzz-stream', STREAM_FUZZ, 'mutation fuzz of stream cropping: PNG, PNM, TIFF and CAR, from files and streams')
const fuzzCar = fuzzPart('fuzz-car', CAR_FUZZ, 'mutation fuzz of CAR import: all or nothing, then verify and crop')

const corpus: ChaosPart = {
  name: 'corpus',
  describe: 'the bad-input corpus of testdata/bad/make.ts, imported case by case',
  async run({ log }) {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-chaos-corpus-'))
    try {
      const cases = await writeCorpus(dir)
      log(`corpus: ${cases.length} cases written to ${dir}`)
      const list = join(dir, 'cases.json')
      writeFileSync(list, JSON.stringify(cases))
      const child = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'test/import/bad-inputs-child.ts'), list], {
        cwd: ROOT,
        encoding: 'utf8',
        maxBuffer: 64 * 2 ** 20,
      })
      const results = child.stdout
        .split('\n')
        .filter((l) => l.startsWith('{"name"'))
        .map((l) => JSON.parse(l) as CaseResult)
      const failures: string[] = []
      for (const c of cases) {
        const r = results.find((x) => x.name === c.name)
        if (r === undefined) failures.push(`${c.name}: no result (${child.stderr.slice(-300)})`)
        else if (r.got !== c.expect) failures.push(`${c.name}: expected ${c.expect}, got ${r.got} (${r.message})`)
        else if (r.ms > c.seconds * 1000) failures.push(`${c.name}: ${r.ms} ms > ${c.seconds} s`)
        else if (r.tempPeak > (c.options.maxTempBytes ?? Number.POSITIVE_INFINITY)) failures.push(`${c.name}: temp ${r.tempPeak} bytes`)
        else if (!r.storeUnchanged || r.tempLeft.length > 0) failures.push(`${c.name}: store changed or temp files left`)
        else if (r.maxRssMiB > 256) failures.push(`${c.name}: peak RSS ${r.maxRssMiB} MiB > 256`)
      }
      const peak = Math.max(0, ...results.map((r) => r.maxRssMiB))
      return {
        ok: failures.length === 0,
        summary: `${cases.length} cases, ${failures.length} not as expected; peak RSS ${peak} MiB${failures.map((f) => `\n  ${f}`).join('')}`,
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  },
}

const kill: ChaosPart = {
  name: 'kill',
  describe: 'kill -9 of every writing command at seeded moments, readers beside them (scripts/chaos/kill.ts; --rounds N, --store disk|s3)',
  async run({ seed, options, log }) {
    const summary = await killChaos({ seed, rounds: Number(options.rounds ?? 240), store: options.store === 's3' ? 's3' : 'disk', log })
    return { ok: summary.failures.length === 0, summary: formatSummary(summary) }
  },
}

/** The parts, in the order `npm run chaos` runs them. */
export const PARTS: ChaosPart[] = [fuzz, fuzzStream, fuzzCar, corpus, kill]

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      only: { type: 'string' },
      seed: { type: 'string' },
      iterations: { type: 'string' },
      'timeout-ms': { type: 'string' },
      rounds: { type: 'string' },
      store: { type: 'string' },
      list: { type: 'boolean', default: false },
    },
    strict: false,
  })
  if (values.list === true) {
    for (const part of PARTS) console.log(`${part.name.padEnd(Math.max(...PARTS.map((p) => p.name.length)))} ${part.describe}`)
    return 0
  }
  const wanted = typeof values.only === 'string' ? values.only.split(',') : PARTS.map((p) => p.name)
  const unknown = wanted.filter((name) => !PARTS.some((p) => p.name === name))
  if (unknown.length > 0) {
    console.error(`chaos: unknown part ${unknown.join(', ')} (parts: ${PARTS.map((p) => p.name).join(', ')})`)
    return 2
  }
  const seed = typeof values.seed === 'string' ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31)
  if (!Number.isSafeInteger(seed)) {
    console.error(`chaos: --seed must be an integer, got ${values.seed}`)
    return 2
  }
  let failed = 0
  for (const part of PARTS.filter((p) => wanted.includes(p.name))) {
    console.log(`chaos: ${part.name} --seed ${seed}`)
    const started = performance.now()
    const { ok, summary } = await part.run({ seed, options: values, log: (line) => console.log(`  ${line}`) })
    console.log(`chaos: ${part.name} ${ok ? 'ok' : 'FAILED'} (${((performance.now() - started) / 1000).toFixed(1)} s): ${summary}`)
    if (!ok) failed++
  }
  if (failed > 0) console.log(`chaos: ${failed} part(s) failed; reproduce with --seed ${seed}`)
  return failed > 0 ? 1 : 0
}

process.exitCode = await main()
