/**
 * The bad-input corpus (testdata/bad/make.ts, issue 10): every case imported into a fresh
 * store in a child process (test/import/bad-inputs-child.ts), asserting its coded error (or a
 * successful import, for the controls), within its time budget, with no more than its
 * temporary-disk budget, the store unchanged and the temp dir empty afterwards, and peak RSS
 * within 256 MiB. Two children share the cases (two cores); each reports its peak RSS after
 * every case, a high-water mark, so the case that first crosses the budget is the one named.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { corpus, type WrittenCase, writeCorpus } from '../../testdata/bad/make.js'
import type { CaseResult } from './bad-inputs-child.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const CHILD = join(ROOT, 'test/import/bad-inputs-child.ts')
const MAX_RSS_MIB = 256
const CHILD_DEADLINE_MS = 120_000

const CASES = corpus()

interface Child {
  readonly label: string
  readonly results: CaseResult[]
  readonly maxRssMiB: number | undefined
  readonly stderr: string
}

/** Runs the child on `cases`; resolves with what it printed, even if it died. */
function runChild(label: string, cases: readonly WrittenCase[], dir: string): Promise<Child> {
  const file = join(dir, `${label}.json`)
  writeFileSync(file, JSON.stringify(cases))
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, file], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_DEADLINE_MS)
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString()
    })
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString()
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      const lines = stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as CaseResult & { maxRssMiB?: number })
      const last = lines.at(-1)
      resolve({
        label,
        results: lines.filter((l) => l.name !== undefined),
        maxRssMiB: last?.maxRssMiB,
        stderr: `${stderr.slice(-2000)}${code === 0 ? '' : ` (exit ${code ?? signal})`}`,
      })
    })
  })
}

/** Runs `jobs` two at a time (two cores). */
async function pool<T>(jobs: ReadonlyArray<() => Promise<T>>, width = 2): Promise<T[]> {
  const out: T[] = []
  let next = 0
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < jobs.length) {
        const i = next++
        out[i] = await jobs[i]!()
      }
    }),
  )
  return out
}

const dir = mkdtempSync(join(tmpdir(), 'tessera-bad-inputs-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
let written: WrittenCase[] = []
let children: Child[] = []
const results = new Map<string, { result: CaseResult; child: Child }>()

beforeAll(async () => {
  written = await writeCorpus(join(dir, 'corpus'))
  const halves = [0, 1].map((half) => written.filter((_, i) => i % 2 === half))
  children = await pool(halves.map((cases, half) => () => runChild(`child-${half}`, cases, dir)))
  for (const child of children) for (const result of child.results) results.set(result.name, { result, child })
}, 240_000)

describe('bad-input corpus (testdata/bad/make.ts)', () => {
  it('has the cases the issue asks for', () => {
    const names = CASES.map((c) => c.name).join(' ')
    for (const kind of [
      'trunc-',
      'bomb',
      'declared',
      'ifd-loop',
      'past-eof',
      'overlap',
      '2m-1x1',
      '1bit',
      'float',
      'cmyk',
      'lab',
      'palette',
      'bigtiff',
      'interlaced',
      'crc',
      'name-',
    ]) {
      expect(names).toContain(kind)
    }
    expect(CASES.length).toBeGreaterThan(200)
  })

  it.each(CASES.map((c) => [c.name, c.expect] as const))('%s -> %s', (name, expected) => {
    const entry = results.get(name)
    const c = written.find((w) => w.name === name)!
    expect(entry, `no result (the child died after the case before): ${children.map((ch) => ch.stderr).join('\n')}`).toBeDefined()
    const { result } = entry!
    expect(result.got, result.message).toBe(expected)
    expect(result.ms).toBeLessThanOrEqual(c.seconds * 1000)
    expect(result.tempPeak).toBeLessThanOrEqual(c.options.maxTempBytes ?? Number.POSITIVE_INFINITY)
    expect(result.tempLeft).toEqual([])
    expect(result.storeUnchanged, result.storeDiff).toBe(true)
    expect(result.maxRssMiB, `peak RSS (MiB) after ${name}`).toBeLessThanOrEqual(MAX_RSS_MIB)
  })

  it('children ran to the end', () => {
    expect(children.map((c) => `${c.label}: ${c.maxRssMiB === undefined ? c.stderr : 'ok'}`)).toEqual(children.map((c) => `${c.label}: ok`))
  })
})
