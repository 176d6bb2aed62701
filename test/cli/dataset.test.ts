/**
 * The dataset commands as a user drives them, through main(argv, io): import --dataset, ls,
 * datasets, log, du, crop/info/export/verify by name, rm, prune, gc, car export/import; and as
 * processes of the built CLI (bin/tessera.js): kill -9 of import and of gc at seeded random
 * moments (and at each step of a collection), each followed by `verify --all`, and a
 * collection racing an import in another process.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { cp, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tiledImage, writeJunk, writeTiled } from '../dataset/images.js'
import { type CliRun, runCli } from '../helpers/cli.js'
import { naiveCrop, type TestImage } from '../helpers/oracle.js'
import { random } from '../helpers/random.js'

const root = new URL('../../', import.meta.url).pathname
const bin = join(root, 'bin/tessera.js')
let dir: string

async function run(store: string, ...argv: string[]): Promise<CliRun> {
  return runCli(store, dir, argv)
}

function full(image: TestImage): Buffer {
  return Buffer.from(naiveCrop(image, { x: 0, y: 0, width: image.width, height: image.height }))
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-cli-dataset-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('dataset commands', () => {
  const store = () => join(dir, 'store')
  const images: Record<string, TestImage> = {
    'a.pam': tiledImage(16, [
      [1, 2],
      [3, 4],
    ]),
    'b.pam': tiledImage(16, [
      [1, 2],
      [5, 6],
    ]),
    'day2/c.pam': tiledImage(16, [[1, 7, 8]]),
    'day2/d.pam': tiledImage(16, [[9]]),
  }
  let head: string

  beforeAll(async () => {
    await mkdir(join(dir, 'shots', 'day2'), { recursive: true })
    for (const [name, image] of Object.entries(images)) await writeTiled(join(dir, 'shots', name), image)
    const result = await run(store(), 'import', 'shots', '--dataset', 'shots', '--tile-size', '16')
    expect(result.stderr).toBe(
      'dataset shots: 4 files: 4 imported, 0 reused, 0 unchanged, 0 failed\n' +
        'dataset shots: tile size 16, delta tiles on (dataset default; --no-deltas to turn off), ' +
        'zstd level auto (dataset default: 9 for screen-like images, else 3; --zstd-level to fix), ' +
        'predictor auto (dataset default: 1 for screen-like images, else the better of 1 and 2; --predictor to fix)\n',
    )
    expect(result.code).toBe(0)
    head = result.stdout.toString().trim()
    expect(head).toMatch(/^bafyrei/)
  })

  it('lists datasets, entries, directories and versions', async () => {
    expect((await run(store(), 'datasets')).stdout.toString()).toMatch(new RegExp(`^shots\\t4 entries\\t\\S+\\t${head}\\n$`))
    const top = (await run(store(), 'ls', 'shots')).stdout.toString().trim().split('\n')
    expect(top.map((line) => line.split('\t')[0])).toEqual(['a.pam', 'b.pam', 'day2/'])
    expect(top[2]).toBe('day2/\t2 entries')
    const sub = (await run(store(), 'ls', 'shots/day2')).stdout.toString()
    expect(sub.split('\n')[0]).toMatch(/^day2\/c\.pam\tbafyrei\S+\t\d+\t\d{4}-/)
    const all = JSON.parse((await run(store(), 'ls', 'shots', '-r', '--json')).stdout.toString())
    expect(all.map((e: { name: string }) => e.name)).toEqual(Object.keys(images))
    const log = (await run(store(), 'log', 'shots')).stdout.toString().trim().split('\n')
    expect(log).toHaveLength(1)
    expect(log[0]).toMatch(new RegExp(`^${head}\\t\\S+\\t4 entries\\timport 4 files`))
    expect((await run(store(), 'ls')).stdout.toString()).toBe('') // dataset images are not pins
  })

  it('resolves NAME/path wherever a CID is accepted: crop, export, info, verify', async () => {
    const crop = await run(store(), 'crop', 'shots/day2/c.pam', '--region', '0,0,48,16', '--format', 'raw', '-o', '-')
    expect(crop.code).toBe(0)
    expect(Buffer.compare(crop.stdout, full(images['day2/c.pam']!))).toBe(0)
    const exported = await run(store(), 'export', 'shots/b.pam', '--format', 'raw', '-o', '-')
    expect(Buffer.compare(exported.stdout, full(images['b.pam']!))).toBe(0)
    expect((await run(store(), 'info', 'shots/a.pam')).stdout.toString()).toContain('32 x 32')
    expect((await run(store(), 'verify', 'shots/a.pam')).stdout.toString()).toMatch(/^ok: 7 blocks/)
    expect((await run(store(), 'verify', 'shots')).stdout.toString()).toMatch(/^ok: \d+ blocks/)
    expect((await run(store(), 'verify', '--all')).stdout.toString()).toMatch(/^1 roots\nok: \d+ blocks/)
    expect((await run(store(), 'crop', `${head}/a.pam`, '--region', '0,0,1,1', '-o', '-', '-f', 'raw')).code).toBe(0)
  })

  it('accounts for dedup exactly (du --json)', async () => {
    const du = JSON.parse((await run(store(), 'du', 'shots', '--json')).stdout.toString())
    expect(du.name).toBe('shots')
    expect(du.usage).toMatchObject({
      entries: 4,
      images: 4,
      tiles: 4 + 4 + 3 + 1,
      uniqueTiles: 9,
      pixelBytes: (32 * 32 * 2 + 48 * 16 + 16 * 16) * 3,
    })
    expect(du.usage.dedupRatio).toBeGreaterThan(1)
    const text = (await run(store(), 'du')).stdout.toString()
    expect(text).toContain('dataset shots')
    expect(text).toContain('tiles:           12 in all, 9 distinct (75.0%)')
  })

  const failures: Array<[string, string[], string, number]> = [
    ['a dataset where an image is needed', ['crop', 'shots', '--region', '0,0,1,1', '-o', 'x.tiff'], 'ERR_INVALID_ARGUMENT', 1],
    ['a missing entry', ['crop', 'shots/nope.pam', '--region', '0,0,1,1', '-o', 'x.tiff'], 'ERR_NOT_FOUND', 1],
    ['a missing dataset', ['ls', 'nosuch'], 'ERR_INVALID_CID', 1],
    ['a missing directory', ['ls', 'shots/nope'], 'ERR_NOT_FOUND', 1],
    ['a bad dataset name', ['import', 'shots', '--dataset', '-x'], 'ERR_INVALID_ARGUMENT', 1],
    ['--label with --dataset', ['import', 'shots', '--dataset', 'shots', '--label', 'x'], 'ERR_INVALID_ARGUMENT', 1],
    ['verify without a target', ['verify'], 'expected either', 2],
    ['removing a missing entry', ['rm', 'shots/nope.pam'], 'ERR_NOT_FOUND', 1],
    ['unpinning an image that is not pinned', ['rm', 'bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'], 'ERR_NOT_FOUND', 1],
    ['a missing CAR file', ['car', 'import', 'nope.car'], 'ERR_NOT_FOUND', 1],
    ['a checkpoint every 0 files', ['import', 'shots', '--dataset', 'shots', '--checkpoint-files', '0'], 'ERR_INVALID_ARGUMENT', 1],
    ['a zstd level past 22 with --dataset', ['import', 'shots', '--dataset', 'shots', '--zstd-level', '23'], 'ERR_INVALID_ARGUMENT', 1],
    ['a whole dataset where an entry is needed', ['car', 'export', 'shots/day2', '-o', 'x.car'], 'ERR_NOT_FOUND', 1],
    ['a path where a whole dataset is needed', ['log', 'shots/a.pam'], 'ERR_INVALID_ARGUMENT', 1],
  ]
  for (const [what, argv, expected, code] of failures) {
    it(`fails on ${what} with exit ${code} and the store unchanged`, async () => {
      const listing = async () => [(await run(store(), 'datasets')).stdout.toString(), (await readdir(join(store(), 'packs'))).join()]
      const before = await listing()
      const result = await run(store(), ...argv)
      expect(result.code).toBe(code)
      expect(result.stderr).toContain(expected)
      expect(await listing()).toEqual(before)
    })
  }

  it('reports the files that fail, imports the others, and fails with the first code', async () => {
    await mkdir(join(dir, 'mixed'))
    await writeTiled(join(dir, 'mixed', 'ok.pam'), tiledImage(16, [[11]]))
    await writeJunk(join(dir, 'mixed', 'junk.png'))
    const result = await run(store(), 'import', 'mixed', '--dataset', 'mixed', '--tile-size', '16')
    expect(result.code).toBe(1)
    const lines = result.stderr.trim().split('\n')
    expect(lines[0]).toMatch(/junk\.png: ERR_UNSUPPORTED_FORMAT: /)
    expect(lines.at(-1)).toMatch(/^tessera: ERR_UNSUPPORTED_FORMAT: 1 of 2 files could not be imported/)
    expect((await run(store(), 'ls', 'mixed')).stdout.toString()).toMatch(/^ok\.pam\t/)
    expect((await run(store(), 'rm', 'mixed')).code).toBe(0)
  })

  it('moves a dataset through a CAR file to another store', async () => {
    expect((await run(store(), 'car', 'export', 'shots', '-o', 'shots.car')).code).toBe(0)
    const other = join(dir, 'other-store')
    const imported = await run(other, 'car', 'import', 'shots.car')
    expect(imported.stdout.toString()).toBe(`${head}\tdataset\tshots\n`)
    const crop = await run(other, 'crop', 'shots/day2/c.pam', '--region', '0,0,48,16', '--format', 'raw', '-o', '-')
    expect(Buffer.compare(crop.stdout, full(images['day2/c.pam']!))).toBe(0)
    // A single image, by name, becomes a pin in the other store.
    await run(store(), 'car', 'export', 'shots/a.pam', '-o', 'a.car')
    const pinned = await run(other, 'car', 'import', 'a.car')
    expect(pinned.stdout.toString()).toMatch(/^bafyrei\S+\timage\ta\.pam\n$/)
    expect((await readFile(join(dir, 'a.car'))).length).toBeGreaterThan(100)
  })

  it('picks the root and the verifier by what a specifier names; unpins an image by CID', async () => {
    const image = JSON.parse((await run(store(), 'ls', 'shots/a.pam', '--json')).stdout.toString())[0].image
    const roots: Array<[string, string]> = [
      ['shots', head],
      [head, head],
      [`${head}/a.pam`, image],
      ['shots/a.pam', image],
      [image, image],
    ]
    for (const [spec, root] of roots) {
      const car = await run(store(), 'car', 'export', spec, '-o', '-')
      expect(car.stderr, spec).toMatch(new RegExp(`^${root}: \\d+ blocks`))
    }
    // A version CID is verified as a dataset (with its history), an entry's image as an image.
    expect((await run(store(), 'verify', head)).stdout.toString()).toBe((await run(store(), 'verify', 'shots')).stdout.toString())
    expect((await run(store(), 'verify', `${head}/a.pam`)).stdout.toString()).toMatch(/^ok: 7 blocks/)
    await writeTiled(join(dir, 'lone.pam'), tiledImage(16, [[21]]))
    const lone = (await run(store(), 'import', 'lone.pam', '--tile-size', '16')).stdout.toString().trim()
    expect((await run(store(), 'rm', lone)).stdout.toString()).toBe(`unpinned ${lone}\n`)
    expect((await run(store(), 'ls')).stdout.toString()).not.toContain(lone)
  })

  it('removes entries and datasets, prunes history, and gc reclaims the space', async () => {
    // The garbage the tests before left (the dataset `mixed`).
    expect((await run(store(), 'gc')).code).toBe(0)
    expect((await run(store(), 'rm', 'shots/day2', '-r')).stdout.toString()).toBe('shots: removed 2 entries\n')
    expect((await run(store(), 'rm', 'shots/b.pam')).stdout.toString()).toBe('shots: removed 1 entry\n')
    expect((await run(store(), 'log', 'shots')).stdout.toString().trim().split('\n')).toHaveLength(3)
    // History keeps everything: nothing to delete yet.
    const kept = JSON.parse((await run(store(), 'gc', '--json')).stdout.toString())
    expect(kept.deletedBlocks).toBe(0)
    expect((await run(store(), 'prune', 'shots', '--keep', '1')).stderr).toBe('dataset shots: dropped 2 version(s)\n')
    const dry = JSON.parse((await run(store(), 'gc', '--dry-run', '--json')).stdout.toString())
    expect(dry.deletedBlocks).toBeGreaterThan(0)
    const gc = await run(store(), 'gc')
    expect(gc.code).toBe(0)
    expect(gc.stdout.toString()).toMatch(/deleted \d+ blocks/)
    expect(JSON.parse((await run(store(), 'gc', '--json')).stdout.toString())).toMatchObject({
      deletedBlocks: 0,
      packsDeleted: 0,
      packsRewritten: 0,
    })
    expect((await run(store(), 'verify', '--all')).code).toBe(0)
    const crop = await run(store(), 'export', 'shots/a.pam', '--format', 'raw', '-o', '-')
    expect(Buffer.compare(crop.stdout, full(images['a.pam']!))).toBe(0)
    expect((await run(store(), 'rm', 'shots')).code).toBe(0)
    await run(store(), 'gc')
    expect((await run(store(), 'datasets')).stdout.toString()).toBe('')
    expect(await readdir(join(store(), 'packs'))).toEqual([])
  })
})

// The built CLI as separate processes.
const built = join(root, 'dist/bundle/main.js')
// The sources of what these tests exercise (others' edits elsewhere need no rebuild for them).
const sources = ['src/dataset', 'src/store', 'src/car', 'src/cli']
function stale(): boolean {
  if (!existsSync(built)) return true
  const builtAt = statSync(built).mtimeMs
  return sources.some((folder) => {
    const walk = (path: string): boolean =>
      statSync(path).isDirectory() ? readdirSync(path).some((name) => walk(join(path, name))) : statSync(path).mtimeMs > builtAt
    return walk(join(root, folder))
  })
}

interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

function start(store: string, args: string[], env: Record<string, string> = {}): { child: ChildProcess; exit: Promise<Exit> } {
  const child = spawn(process.execPath, [bin, ...args], { cwd: dir, env: { ...process.env, TESSERA_STORE: store, ...env } })
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (c: Buffer) => {
    stdout += c.toString()
  })
  child.stderr!.on('data', (c: Buffer) => {
    stderr += c.toString()
  })
  const exit = new Promise<Exit>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })))
  return { child, exit }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe('crashes and concurrency (built CLI processes)', () => {
  const images = new Map<string, TestImage>()
  // 20 images of 12x12 tiles of 16 pixels; each shares half its tiles with the one before.
  beforeAll(async () => {
    expect(stale(), 'dist/bundle is missing or older than src/: run npm run build').toBe(false)
    await mkdir(join(dir, 'many'))
    for (let i = 0; i < 20; i++) {
      const seeds = Array.from({ length: 12 }, (_, r) =>
        Array.from({ length: 12 }, (_, c) => ((r * 12 + c) % 2 === 0 ? i * 1000 + r * 12 + c : (i - 1) * 1000 + r * 12 + c + 1)),
      )
      const image = tiledImage(16, seeds)
      const name = `f${String(i).padStart(2, '0')}.pam`
      images.set(name, image)
      await writeTiled(join(dir, 'many', name), image)
    }
  })

  async function checkStore(store: string, dataset: string | undefined, names: Iterable<string>): Promise<void> {
    const verify = await run(store, 'verify', '--all')
    expect(verify.stderr).toBe('')
    expect(verify.code).toBe(0)
    if (dataset === undefined) return
    for (const name of names) {
      const crop = await run(store, 'export', `${dataset}/${name}`, '--format', 'raw', '-o', '-')
      expect(crop.code, `${dataset}/${name}: ${crop.stderr}`).toBe(0)
      expect(Buffer.compare(crop.stdout, full(images.get(name)!))).toBe(0)
    }
  }

  async function entries(store: string, dataset: string): Promise<string[]> {
    const ls = await run(store, 'ls', dataset, '-r', '--json')
    return ls.code === 0 ? JSON.parse(ls.stdout.toString()).map((e: { name: string }) => e.name) : []
  }

  it('kill -9 of a dataset import at random moments leaves a verifiable store, and the import resumes', async () => {
    const store = join(dir, 'kill-import')
    const next = random(42)
    const args = ['import', 'many', '--dataset', 'd', '--tile-size', '16', '--checkpoint-files', '3', '--jobs', '2']
    // How long an uninterrupted import takes here sets the range of kill moments.
    const t0 = Date.now()
    const reference = await start(join(dir, 'kill-import-reference'), args).exit
    expect(reference.code).toBe(0)
    const span = Date.now() - t0
    const killed: string[] = []
    for (let round = 0; round < 5; round++) {
      const { child, exit } = start(store, args)
      await sleep(Math.floor(next() * span))
      child.kill('SIGKILL')
      const result = await exit
      killed.push(result.signal === 'SIGKILL' ? 'killed' : `exit ${result.code}`)
      // Whatever the moment: the store verifies, and every committed entry crops exactly.
      if (existsSync(join(store, 'VERSION'))) {
        const names = await entries(store, 'd')
        await checkStore(store, names.length > 0 ? 'd' : undefined, names)
      }
    }
    expect(killed).toContain('killed')
    const done = await start(store, args).exit
    expect(done.code, done.stderr).toBe(0)
    await checkStore(store, 'd', images.keys())
    // The same entries (names, images, file facts) as the uninterrupted import, one version in the log.
    const listing = async (at: string) => (await run(at, 'ls', 'd', '-r', '--json')).stdout.toString()
    expect(await listing(store)).toBe(await listing(join(dir, 'kill-import-reference')))
    const log = (await run(store, 'log', 'd')).stdout.toString().trim().split('\n')
    expect(log).toHaveLength(1)
    // Orphan packs of killed imports, and replaced checkpoint versions, go at the next collection.
    expect((await run(store, 'gc')).code).toBe(0)
    expect(JSON.parse((await run(store, 'gc', '--json')).stdout.toString())).toMatchObject({ orphanPacks: 0, packsDeleted: 0 })
    await checkStore(store, 'd', images.keys())
  })

  it('kill -9 of gc at every step and at random moments leaves a consistent store; the next gc finishes the job', async () => {
    const store = join(dir, 'kill-gc')
    const template = join(dir, 'kill-gc-template')
    const all = [...images.keys()]
    const make = async (store: string) => {
      expect((await run(store, 'import', 'many', '--dataset', 'd', '--tile-size', '16')).code).toBe(0)
      expect((await run(store, 'import', 'many', '--dataset', 'e', '--tile-size', '16', '--prefix', 'copy')).code).toBe(0)
      // Half of d goes, and all of e: packs become partially and wholly dead.
      expect((await run(store, 'rm', ...all.filter((_, i) => i % 2 === 1).map((n) => `d/${n}`))).code).toBe(0)
      expect((await run(store, 'prune', 'd')).code).toBe(0)
      expect((await run(store, 'rm', 'e')).code).toBe(0)
    }
    const kept = all.filter((_, i) => i % 2 === 0)
    const next = random(7)
    const kills: Array<string | number> = ['marked', 'pack-written', 'index-written', 'packs-deleted', 'done', next(), next(), next()]
    await make(template)
    for (const kill of kills) {
      await rm(store, { recursive: true, force: true })
      await cp(template, store, { recursive: true })
      let result: Exit
      if (typeof kill === 'string') {
        result = await start(store, ['gc'], { TESSERA_TEST_KILL_AT: kill }).exit
        expect(result.signal, kill).toBe('SIGKILL')
      } else {
        const { child, exit } = start(store, ['gc'])
        // A collection of this store takes a few hundred ms, most of it process start: aim inside.
        await sleep(150 + Math.floor(kill * 400))
        child.kill('SIGKILL')
        result = await exit
      }
      expect([0, null]).toContain(result.code)
      await checkStore(store, 'd', kept)
      const again = await run(store, 'gc', '--json')
      expect(again.code, again.stderr).toBe(0)
      expect(JSON.parse((await run(store, 'gc', '--json')).stdout.toString())).toMatchObject({
        deletedBlocks: 0,
        packsDeleted: 0,
        packsRewritten: 0,
      })
      await checkStore(store, 'd', kept)
    }
  })

  it('gc racing a dataset import in another process never loses a block the import relies on', async () => {
    const store = join(dir, 'race')
    const next = random(99)
    // Blocks of a dropped dataset stay in the store as garbage, which the racing import reuses.
    expect((await run(store, 'import', 'many', '--dataset', 'old', '--tile-size', '16')).code).toBe(0)
    for (let round = 0; round < 3; round++) {
      expect((await run(store, 'rm', 'old')).code).toBe(0)
      const gcFirst = next() < 0.5
      const delay = Math.floor(next() * 300)
      const importArgs = ['import', 'many', '--dataset', 'old', '--tile-size', '16', '--checkpoint-files', '4']
      const first = start(store, gcFirst ? ['gc', '--lock-timeout', '60000'] : importArgs)
      await sleep(delay)
      const second = start(store, gcFirst ? importArgs : ['gc', '--lock-timeout', '60000'])
      const [a, b] = await Promise.all([first.exit, second.exit])
      expect(a.code, a.stderr).toBe(0)
      expect(b.code, b.stderr).toBe(0)
      await checkStore(store, 'old', images.keys())
    }
  })
})
