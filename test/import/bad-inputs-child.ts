/**
 * Runs in a child process for test/import/bad-inputs.test.ts (and `npm run chaos -- --only
 * corpus`): imports each case of a written corpus (testdata/bad/make.ts) into a fresh store and
 * prints one JSON line per case, then one with the process's peak RSS. A child, so that peak
 * memory is measured (`peakRssBytes`, after each case) without the test runner's own.
 *
 *   node --import tsx test/import/bad-inputs-child.ts CASES.json
 *
 * Temporary disk is measured by polling this process's open files (/proc/self/fd) for
 * libvips' `tessera-decode-*` file: it is unlinked while still being written, so the
 * directory alone would not show it; its size only grows, so the last size seen is its peak.
 */
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { tesseraCode } from '../../src/errors.js'
import { openStore } from '../../src/image.js'
import { importImage } from '../../src/import/importer.js'
import { peakRssBytes } from '../../src/peak-rss.js'
import type { BlockStore } from '../../src/store/interface.js'
import type { WrittenCase } from '../../testdata/bad/make.js'

/** What the child reports for one case. */
export interface CaseResult {
  readonly name: string
  /** 'ok', a Tessera code, or 'crash: <name>: <message>' for anything else. */
  readonly got: string
  readonly message: string
  readonly ms: number
  /** Largest temporary file seen (bytes), and what was left in the temp dir afterwards. */
  readonly tempPeak: number
  readonly tempLeft: readonly string[]
  /** Whether storedBytes, pins and the store's files are what they were before. */
  readonly storeUnchanged: boolean
  readonly storeDiff?: string
  /**
   * This process's peak RSS so far, after the case (MiB). A high-water mark: the first case
   * after which it exceeds a budget is the one that pushed it there.
   */
  readonly maxRssMiB: number
}

/** Names and sizes of every file under `dir`. */
function listing(dir: string): string[] {
  const out: string[] = []
  const walk = (d: string): void => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const path = join(d, entry.name)
      if (entry.isDirectory()) walk(path)
      else out.push(`${path.slice(dir.length)}:${statSync(path).size}`)
    }
  }
  walk(dir)
  return out.sort()
}

async function snapshot(store: BlockStore, dir: string): Promise<string> {
  const pins: string[] = []
  for await (const pin of store.pins()) pins.push(`${pin.cid}:${pin.label}`)
  return JSON.stringify({ bytes: await store.storedBytes(), pins, files: listing(dir) })
}

/** Polls /proc/self/fd for tessera-decode files; returns a stop function giving the peak size. */
function watchTemp(): () => number {
  let peak = 0
  const poll = (): void => {
    let fds: string[]
    try {
      fds = readdirSync('/proc/self/fd')
    } catch {
      return
    }
    for (const fd of fds) {
      try {
        if (!readlinkSync(`/proc/self/fd/${fd}`).includes('tessera-decode-')) continue
        peak = Math.max(peak, statSync(`/proc/self/fd/${fd}`).size)
      } catch {
        // closed meanwhile
      }
    }
  }
  const timer = setInterval(poll, 5)
  return () => {
    clearInterval(timer)
    poll()
    return peak
  }
}

async function runCase(c: WrittenCase, root: string): Promise<CaseResult> {
  const storeDir = mkdtempSync(join(root, 'store-'))
  const tmp = mkdtempSync(join(root, 'tmp-'))
  const store = await openStore(storeDir)
  const before = await snapshot(store, storeDir)
  const path = c.pathBytes === undefined ? c.path : Buffer.from(c.pathBytes, 'base64')
  const stop = watchTemp()
  const started = performance.now()
  let got = 'ok'
  let message = ''
  try {
    await importImage(store, path as string, { ...c.options, tmpDir: tmp, workers: 0 })
  } catch (error) {
    const code = tesseraCode(error)
    message = error instanceof Error ? error.message : String(error)
    got = code ?? `crash: ${error instanceof Error ? error.name : typeof error}: ${message}`
  }
  const ms = Math.round(performance.now() - started)
  const tempPeak = stop()
  const after = await snapshot(store, storeDir)
  await store.close()
  const tempLeft = readdirSync(tmp)
  rmSync(storeDir, { recursive: true, force: true })
  rmSync(tmp, { recursive: true, force: true })
  // A successful control adds an image: only failures must leave the store as it was.
  const storeUnchanged = got === 'ok' || before === after
  return {
    name: c.name,
    got,
    message: message.slice(0, 300),
    ms,
    tempPeak,
    tempLeft,
    storeUnchanged,
    ...(storeUnchanged ? {} : { storeDiff: `${before} -> ${after}` }),
    maxRssMiB: maxRssMiB(),
  }
}

function maxRssMiB(): number {
  return Math.round(peakRssBytes() / 2 ** 20)
}

const cases = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as WrittenCase[]
const root = mkdtempSync(join(process.env.TESSERA_CORPUS_TMP ?? tmpdir(), 'tessera-corpus-run-'))
try {
  for (const c of cases) process.stdout.write(`${JSON.stringify(await runCase(c, root))}\n`)
} finally {
  rmSync(root, { recursive: true, force: true })
}
process.stdout.write(`${JSON.stringify({ maxRssMiB: maxRssMiB() })}\n`)
