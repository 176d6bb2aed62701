/**
 * `tessera repair` as a user drives it (main(argv, io)), and as a process of the built CLI
 * killed with SIGKILL at each step and at seeded random moments (spec/store.md §8): after a
 * lost root log `ls` is empty but `verify --all` and `gc` refuse with ERR_INTEGRITY, repair
 * brings every image and dataset back (crops exact against the oracle), a second run does
 * nothing, and a killed run is finished by the next one.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { cp, mkdir, mkdtemp, readdir, readFile, rm, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { tiledImage, writeTiled } from '../dataset/images.js'
import { type CliRun, runCli } from '../helpers/cli.js'
import { naiveCrop, type TestImage } from '../helpers/oracle.js'
import { cliIsStale } from '../helpers/processes.js'
import { random } from '../helpers/random.js'

let dir: string
let template: string
const pins = new Map<string, string>()

const PINNED: Record<string, TestImage> = {
  'a.pam': tiledImage(16, [
    [1, 2],
    [3, 4],
  ]),
  'b.pam': tiledImage(16, [[5, 6, 7]]),
}
const DATASET: Record<string, TestImage> = {
  'x.pam': tiledImage(16, [
    [8, 9],
    [10, 11],
  ]),
  'y.pam': tiledImage(16, [[12], [13]]),
}

async function run(store: string, ...argv: string[]): Promise<CliRun> {
  return runCli(store, dir, argv)
}

const bin = new URL('../../bin/tessera.js', import.meta.url).pathname
const children = new Set<ChildProcess>()

/** Starts the built CLI (`tessera ...args`) on `store` with `env` added, killed after 20 s at most. */
function start(store: string, args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [bin, ...args], { cwd: dir, env: { ...process.env, TESSERA_STORE: store, ...env } })
  children.add(child)
  const deadline = setTimeout(() => child.kill('SIGKILL'), 20_000)
  let stderr = ''
  child.stderr!.on('data', (c: Buffer) => {
    stderr += c.toString()
  })
  child.stdout!.resume()
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) =>
    child.on('close', (code, signal) => {
      clearTimeout(deadline)
      children.delete(child)
      resolve({ code, signal, stderr })
    }),
  )
  return { child, exit }
}

function full(image: TestImage): Buffer {
  return Buffer.from(naiveCrop(image, { x: 0, y: 0, width: image.width, height: image.height }))
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-cli-repair-'))
  await mkdir(join(dir, 'd'), { recursive: true })
  for (const [name, image] of Object.entries(PINNED)) await writeTiled(join(dir, name), image)
  for (const [name, image] of Object.entries(DATASET)) await writeTiled(join(dir, 'd', name), image)
  template = join(dir, 'template')
  for (const name of Object.keys(PINNED)) {
    const result = await run(template, 'import', name, '--tile-size', '16')
    expect(result.code, result.stderr).toBe(0)
    pins.set(name, result.stdout.toString().trim())
  }
  const dataset = await run(template, 'import', 'd', '--dataset', 'd', '--tile-size', '16')
  expect(dataset.code, dataset.stderr).toBe(0)
})
afterEach(() => {
  for (const child of children) child.kill('SIGKILL')
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

let copies = 0
async function copy(): Promise<string> {
  const path = join(dir, `store-${++copies}`)
  await cp(template, path, { recursive: true })
  return path
}

async function loseLog(store: string): Promise<void> {
  await rm(join(store, 'log'), { recursive: true })
  await rm(join(store, 'checkpoints'), { recursive: true, force: true })
}

async function packFiles(store: string): Promise<string[]> {
  return (await readdir(join(store, 'packs'))).sort()
}

/** Every image crops exactly, by CID and by dataset path; verify --all is clean. */
async function expectWhole(store: string): Promise<void> {
  for (const [name, cid] of pins) {
    const crop = await run(store, 'export', cid, '--format', 'raw', '-o', '-')
    expect(crop.code, crop.stderr).toBe(0)
    expect(crop.stdout.equals(full(PINNED[name]!)), name).toBe(true)
  }
  for (const [name, image] of Object.entries(DATASET)) {
    const crop = await run(store, 'export', `d/${name}`, '--format', 'raw', '-o', '-')
    expect(crop.code, crop.stderr).toBe(0)
    expect(crop.stdout.equals(full(image)), name).toBe(true)
  }
  const verify = await run(store, 'verify', '--all')
  expect(verify.stderr).toBe('')
  expect(verify.code).toBe(0)
}

describe('tessera repair', () => {
  it('a lost root log: ls shows nothing, verify and gc refuse, repair brings everything back, a second run does nothing', async () => {
    const store = await copy()
    await loseLog(store)
    const before = await packFiles(store)
    expect((await run(store, 'ls')).stdout.toString()).toBe('')
    const verify = await run(store, 'verify', '--all')
    expect(verify.code).toBe(1)
    expect(verify.stderr).toMatch(/^log\/: ERR_INTEGRITY: .*tessera repair/m)
    expect(verify.stderr).toMatch(/^tessera: ERR_INTEGRITY: /m)
    const gc = await run(store, 'gc')
    expect(gc.code).toBe(1)
    expect(gc.stderr).toMatch(/^tessera: ERR_INTEGRITY: .*tessera repair/)
    expect(await packFiles(store)).toEqual(before)

    const dry = await run(store, 'repair', '--dry-run', '--json')
    expect(dry.code, dry.stderr).toBe(0)
    expect(JSON.parse(dry.stdout.toString())).toMatchObject({
      dryRun: true,
      logLost: true,
      lost: [],
      refs: { 'dataset/d': expect.any(String) },
    })
    expect((await run(store, 'ls')).stdout.toString()).toBe('')

    const repaired = await run(store, 'repair')
    expect(repaired.code, repaired.stderr).toBe(0)
    expect(repaired.stdout.toString()).toContain('the root log named no pack')
    expect(repaired.stdout.toString()).toContain('ref dataset/d -> ')
    const ls = (await run(store, 'ls')).stdout.toString().trim().split('\n')
    expect(ls.map((line) => line.split('\t')[0]).sort()).toEqual([...pins.values()].sort())
    expect(ls.every((line) => line.endsWith('\trecovered'))).toBe(true)
    expect((await run(store, 'datasets')).stdout.toString()).toMatch(/^d\t2 entries\t/)
    await expectWhole(store)

    const again = await run(store, 'repair')
    expect(again.code).toBe(0)
    expect(again.stdout.toString()).toMatch(/nothing to repair/)
    expect(await packFiles(store)).toEqual(before)
  })

  it('a damaged block: repair exits 1 naming the lost block and the incomplete image; the rest is whole', async () => {
    const store = await copy()
    const a = pins.get('a.pam')!
    // The image's first tile: the first section of its pack.
    const pack = (await packFiles(store)).find((file) => file.endsWith('.pack'))!
    const bytes = await readFile(join(store, 'packs', pack))
    bytes[50] = bytes[50]! ^ 0xff
    await writeFile(join(store, 'packs', pack), bytes)
    const verify = await run(store, 'verify', '--all')
    expect(verify.code).toBe(1)
    const result = await run(store, 'repair', '--json')
    expect(result.code).toBe(1)
    expect(result.stderr).toMatch(/^tessera: ERR_INTEGRITY: 1 block\(s\) lost; 1 image\(s\) or dataset\(s\) incomplete: pin a\.pam/)
    const report = JSON.parse(result.stdout.toString())
    expect(report.lost).toHaveLength(1)
    expect(report.incomplete).toEqual([{ cid: a, source: 'pin a.pam', missing: 1 }])
    const text = await run(store, 'repair')
    expect(text.code).toBe(1)
    expect(text.stderr).toContain(`${report.lost[0]}: ERR_NOT_FOUND: lost`)
    const b = await run(store, 'export', pins.get('b.pam')!, '--format', 'raw', '-o', '-')
    expect(b.stdout.equals(full(PINNED['b.pam']!))).toBe(true)
  })

  it('killed at each step and at seeded random moments, the next run finishes the repair', async () => {
    expect(cliIsStale(), 'dist/bundle is missing or older than src/: run npm run build').toBe(false)
    const damaged = join(dir, 'damaged')
    await cp(template, damaged, { recursive: true })
    await loseLog(damaged)
    for (const file of (await packFiles(damaged)).filter((name) => name.endsWith('.idx')).slice(0, 2)) {
      await unlink(join(damaged, 'packs', file))
    }
    const next = random(10)
    const kills: Array<string | number> = ['scanned', 'index-written', 'index-written:2', 'committed', 'done', next(), next(), next()]
    const outcomes: string[] = []
    for (const kill of kills) {
      const store = join(dir, `killed-${outcomes.length}`)
      await cp(damaged, store, { recursive: true })
      if (typeof kill === 'string') {
        const result = await start(store, ['repair'], { TESSERA_TEST_KILL_AT: kill }).exit
        expect(result.signal, `${kill}: ${result.stderr}`).toBe('SIGKILL')
        outcomes.push(kill)
      } else {
        const { child, exit } = start(store, ['repair'])
        // A repair of this store takes a few hundred ms, most of it process start: aim inside.
        await sleep(150 + Math.floor(kill * 400))
        child.kill('SIGKILL')
        const result = await exit
        expect([0, null], result.stderr).toContain(result.code)
        outcomes.push(`${kill.toFixed(3)}: ${result.signal ?? `exit ${result.code}`}`)
      }
      const rerun = await run(store, 'repair')
      expect(rerun.code, `${outcomes.at(-1)}: ${rerun.stderr}`).toBe(0)
      await expectWhole(store)
      expect((await run(store, 'repair')).stdout.toString(), outcomes.at(-1)).toMatch(/nothing to repair/)
      await rm(store, { recursive: true, force: true })
    }
  })
})
