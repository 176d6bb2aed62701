/**
 * The fuzzer's worker process (test/helpers/fuzz.ts): runs inputs FROM..TO-1 of a seed through
 * the target module at MODULE (its fuzzInput and fuzzOne) and prints, per input, a line
 * `{"i":n,"start":true}` before and `{"i":n,"kind":...}` after, so that the parent can name
 * the input of a hang (no line within its timeout: it kills this process) or of a crash that
 * ends the process. Over the memory budget (peak RSS, a high-water mark), it reports the input
 * that crossed it and exits with status 3: the parent starts a fresh process after it.
 *
 *   node --import tsx test/helpers/fuzz-child.ts MODULE SEED FROM TO MAX_RSS_MIB
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { peakRssBytes } from '../../src/peak-rss.js'
import type { FuzzTargetModule } from './fuzz.js'

const [module, ...numbers] = process.argv.slice(2)
const [seed, from, to, maxRssMiB] = numbers.map(Number) as [number, number, number, number]
const { fuzzInput, fuzzOne } = (await import(module!)) as FuzzTargetModule
// For the harness's own test (test/import/fuzz.test.ts): "I:KIND,..." misbehaves at input I.
const inject = new Map(
  (process.env.TESSERA_FUZZ_INJECT ?? '')
    .split(',')
    .filter(Boolean)
    .map((s) => s.split(':') as [string, string]),
)
const dir = mkdtempSync(join(tmpdir(), 'tessera-fuzz-'))
const path = join(dir, 'input')
const rssMiB = (): number => Math.round(peakRssBytes() / 2 ** 20)
try {
  for (let i = from; i < to; i++) {
    writeFileSync(path, fuzzInput(seed, i).bytes)
    process.stdout.write(`${JSON.stringify({ i, start: true })}\n`)
    const started = performance.now()
    const injected = inject.get(String(i))
    if (injected === 'hang') for (;;);
    if (injected === 'die') process.exit(9)
    if (injected === 'memory') Buffer.alloc(600 * 2 ** 20, 1)
    const outcome = injected === 'crash' ? { kind: 'crash', error: 'TypeError: injected' } : await fuzzOne(path)
    const rss = rssMiB()
    const line = { i, ...outcome, ms: Math.round(performance.now() - started), rss }
    if (rss > maxRssMiB) {
      process.stdout.write(`${JSON.stringify({ ...line, kind: 'memory' })}\n`)
      process.exitCode = 3
      break
    }
    process.stdout.write(`${JSON.stringify(line)}\n`)
  }
} finally {
  rmSync(dir, { recursive: true, force: true })
}
