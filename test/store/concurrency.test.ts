/**
 * Many processes on one store (spec/store.md §5, §7, §10; issue 9), on disk and on a real S3
 * (Ceph radosgw: test/helpers/s3.ts): kill -9 of a writer at random moments while readers crop;
 * writers in several processes racing on one dataset and on one reference (no lost update);
 * collections again and again beside writers and readers, and the rescue of a block a writer
 * reused from a pack a collection drops; a reader whose view predates a collection; 8
 * `tessera crop` processes at once; a reader that stays open seeing what others commit. Other processes are the built CLI (`npm run build`
 * first) and StoreChild (test/helpers/store-child.ts). Random moments and regions come from
 * one seed, printed in the test names: TESSERA_TEST_SEED=N repeats a run's choices.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { DecodePool } from '../../src/crop/decode-pool.js'
import { commitChanges, datasetHead, history, pruneHistory, removeEntries } from '../../src/dataset/dataset.js'
import { importDataset } from '../../src/dataset/import.js'
import { collectGarbage, type GcResult, unpin, verifyAll } from '../../src/dataset/maintenance.js'
import { iterateEntries, NodeCache } from '../../src/dataset/tree.js'
import { CID } from '../../src/format/block.js'
import type { Region } from '../../src/format/interface.js'
import { cropImage, importImage, openImage } from '../../src/image.js'
import type { BlockStore } from '../../src/store/interface.js'
import type { ObjectBlockStore } from '../../src/store/object-store.js'
import { openStoreAt } from '../../src/store/open.js'
import { tiledImage, writeTiled } from '../dataset/images.js'
import { makeImage, naiveCrop, type TestImage, writePam } from '../helpers/oracle.js'
import { ChildError, cliIsStale, killAll, runCli, StoreChild, startCli } from '../helpers/processes.js'
import { random } from '../helpers/random.js'
import { deleteS3Prefix, missingS3, s3RunUrl } from '../helpers/s3.js'

const SEED = Number(process.env.TESSERA_TEST_SEED ?? Math.floor(Math.random() * 1e6))

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

let dir: string
const opened: BlockStore[] = []

/** Opens the store at `location` in this process; closed after the test. */
async function open(location: string): Promise<ObjectBlockStore> {
  const store = await openStoreAt(location)
  opened.push(store)
  return store
}

beforeAll(async () => {
  expect(cliIsStale(), 'dist/bundle is missing or older than src/: run npm run build').toBe(false)
  dir = await mkdtemp(join(tmpdir(), 'tessera-concurrency-'))
})
afterAll(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true })
})
afterEach(async () => {
  killAll()
  for (const store of opened.splice(0)) await store.close().catch(() => {})
})

/**
 * `count` RGB images of 8 x 8 tiles of 16 px, written as PAM files `NAME-i.pam` in `folder`
 * and remembered in `oracle` under `prefix` + file name (their entry names). Each image shares
 * every other tile with the one before, so imports deduplicate within a set.
 */
async function writeSet(
  folder: string,
  name: string,
  seed: number,
  count: number,
  oracle: Map<string, TestImage>,
  prefix = '',
): Promise<string[]> {
  await mkdir(folder, { recursive: true })
  const files: string[] = []
  for (let i = 0; i < count; i++) {
    const seeds = Array.from({ length: 8 }, (_, r) =>
      Array.from({ length: 8 }, (_, c) => ((r + c) % 2 === 0 ? seed + i * 100 + r * 8 + c : seed + (i - 1) * 100 + r * 8 + c)),
    )
    const image = tiledImage(16, seeds)
    const file = `${name}-${i}.pam`
    await writeTiled(join(folder, file), image)
    oracle.set(`${prefix}${file}`, image)
    files.push(join(folder, file))
  }
  return files
}

/** The entries of dataset `name` (entry name -> image CID); none if there is no such dataset. */
async function entriesOf(store: BlockStore, name: string): Promise<Map<string, CID>> {
  const out = new Map<string, CID>()
  const head = await datasetHead(store, name)
  if (head === undefined) return out
  for await (const entry of iterateEntries(new NodeCache(store), head.version.entries)) out.set(entry.name, entry.image)
  return out
}

/** The region of image `cid` as raw samples, through the facade's crop. */
async function cropRaw(store: BlockStore, cid: CID, region: Region): Promise<Buffer> {
  const image = await openImage(store, cid)
  const chunks: Uint8Array[] = []
  for await (const chunk of await cropImage(image, region, { format: 'raw' })) chunks.push(chunk)
  return Buffer.concat(chunks)
}

/** Every pixel of image `cid` equals the oracle's. */
async function expectExact(store: BlockStore, cid: CID, image: TestImage, what: string): Promise<void> {
  const whole = { x: 0, y: 0, width: image.width, height: image.height }
  expect(Buffer.compare(await cropRaw(store, cid, whole), Buffer.from(naiveCrop(image, whole))), what).toBe(0)
}

/** A random region of at most 48 x 48 pixels inside the image, now and then the whole image. */
function randomRegion(next: () => number, image: TestImage): Region {
  if (next() < 0.05) return { x: 0, y: 0, width: image.width, height: image.height }
  const width = 1 + Math.floor(next() * Math.min(48, image.width))
  const height = 1 + Math.floor(next() * Math.min(48, image.height))
  return { x: Math.floor(next() * (image.width - width + 1)), y: Math.floor(next() * (image.height - height + 1)), width, height }
}

/**
 * Readers in this process cropping, until stopped, random regions of the images committed to
 * `datasets` (found by looking at the datasets again and again), each crop compared with the
 * oracle: one through the facade (cropImage), one through DecodePool (the path of `sample`
 * and `serve`: on disk it locates blocks in pack files and reads them itself).
 */
class Readers {
  crops = 0
  /** Crops that succeeded with other pixels than the oracle's: never acceptable. */
  readonly wrong: string[] = []
  /** Crops that failed (with their code), and anything else that went wrong. */
  readonly errors: string[] = []
  readonly #targets = new Map<string, { cid: CID; image: TestImage }>()
  readonly #store: BlockStore
  readonly #next: () => number
  readonly #oracle: ReadonlyMap<string, TestImage>
  readonly #datasets: readonly string[]
  readonly #pauseMs: number
  #stopped = false
  #loops: Promise<void>[] = []

  /** `pauseMs` between crops: a few dozen a second are plenty, and leave the writers (on two cores) their share. */
  constructor(store: BlockStore, next: () => number, oracle: ReadonlyMap<string, TestImage>, datasets: readonly string[], pauseMs: number) {
    this.#store = store
    this.#pauseMs = pauseMs
    this.#next = next
    this.#oracle = oracle
    this.#datasets = datasets
  }

  /** Entries known to the readers. */
  get targets(): number {
    return this.#targets.size
  }

  /** Looks at the datasets' heads for new entries. */
  async discover(): Promise<void> {
    for (const dataset of this.#datasets) {
      for (const [name, cid] of await entriesOf(this.#store, dataset)) {
        const image = this.#oracle.get(name)
        if (image === undefined) this.errors.push(`${dataset} has an unexpected entry ${name}`)
        else this.#targets.set(`${dataset}/${name}`, { cid, image })
      }
    }
  }

  start(): void {
    const pool = new DecodePool(0)
    this.#loops = [this.#discoverLoop(), this.#cropLoop(undefined), this.#cropLoop(pool).finally(() => pool.close())]
  }

  async stop(): Promise<void> {
    this.#stopped = true
    await Promise.all(this.#loops)
  }

  async #discoverLoop(): Promise<void> {
    while (!this.#stopped) {
      await this.discover().catch((error: Error & { code?: string }) => this.errors.push(`discover: ${error.code}: ${error.message}`))
      await sleep(100)
    }
  }

  async #cropLoop(pool: DecodePool | undefined): Promise<void> {
    while (!this.#stopped) {
      const targets = [...this.#targets]
      if (targets.length === 0) {
        await sleep(20)
        continue
      }
      const [what, { cid, image }] = targets[Math.floor(this.#next() * targets.length)]!
      const region = randomRegion(this.#next, image)
      const label = `${what} ${region.x},${region.y},${region.width},${region.height}${pool === undefined ? '' : ' (DecodePool)'}`
      try {
        const bytes =
          pool === undefined ? await cropRaw(this.#store, cid, region) : await pool.read((await openImage(this.#store, cid)).reader, region)
        if (Buffer.compare(Buffer.from(bytes), Buffer.from(naiveCrop(image, region))) !== 0) this.wrong.push(label)
      } catch (error) {
        const { code, message } = error as Error & { code?: string }
        this.errors.push(`${label}: ${code ?? 'no code'}: ${message}`)
      }
      this.crops++
      await sleep(this.#pauseMs)
    }
  }
}

/** A place for test stores: a fresh location per test. */
interface Backend {
  readonly name: string
  readonly index: number
  location(label: string): string
  /** Pause of the readers between crops (a crop on S3 is a request per tile). */
  readonly pauseMs: number
}

const s3Url = s3RunUrl('concurrency')
const backends: Backend[] = [{ name: 'disk', index: 0, location: (label) => join(dir, `store-${label}`), pauseMs: 25 }]
if (s3Url !== undefined) backends.push({ name: 's3', index: 1, location: (label) => `${s3Url}/${label}`, pauseMs: 80 })
else missingS3('store concurrency suite')

afterAll(async () => {
  if (s3Url !== undefined) await deleteS3Prefix(s3Url)
})

describe.each(backends)('$name store shared by processes', (backend) => {
  const seedOf = (test: number) => SEED + 1000 * test + backend.index
  const files = (label: string) => join(dir, `${backend.name}-${label}`)

  it(`kill -9 of a dataset import at random moments while readers crop: never a wrong pixel, the next import succeeds (seed ${SEED})`, async () => {
    const next = random(seedOf(1))
    const location = backend.location('kill')
    const oracle = new Map<string, TestImage>()
    const sets = ['base', 'r0', 'r1', 'r2']
    for (const [i, set] of sets.entries()) await writeSet(join(files('kill'), set), set, 100_000 * (i + 1), 6, oracle, `${set}/`)
    const args = (set: string) => ['import', set, '--dataset', 'd', '--prefix', set, '--tile-size', '16', '--checkpoint-files', '2']
    // The first set, committed before the readers start; how long it takes sets the range of kill moments.
    const t0 = Date.now()
    const base = await runCli(location, args('base'), files('kill'))
    expect(base.code, base.stderr).toBe(0)
    const span = Date.now() - t0
    const store = await open(location)
    const readers = new Readers(store, next, oracle, ['d'], backend.pauseMs)
    await readers.discover()
    expect(readers.targets).toBe(6)
    readers.start()
    const outcomes: string[] = []
    try {
      for (const set of sets.slice(1)) {
        const writer = startCli(location, args(set), files('kill'))
        const delay = Math.floor(next() * span * 0.8)
        await sleep(delay)
        writer.child.kill('SIGKILL')
        const killed = await writer.exit
        outcomes.push(killed.signal === 'SIGKILL' ? `${set} killed at ${delay} ms` : `${set} exit ${killed.code} before ${delay} ms`)
        if (killed.signal !== 'SIGKILL') expect(killed.code, killed.stderr).toBe(0)
        const verified = await verifyAll(store)
        expect(verified.problems, outcomes.join('; ')).toEqual([])
        // The next writer: the same import again, to its end.
        const again = await runCli(location, args(set), files('kill'))
        expect(again.code, `${outcomes.join('; ')}: ${again.stderr}`).toBe(0)
        // A view may be a refresh period old: look now.
        await store.refresh()
        const names = [...(await entriesOf(store, 'd')).keys()].filter((name) => name.startsWith(`${set}/`))
        expect(names).toEqual([...oracle.keys()].filter((name) => name.startsWith(`${set}/`)))
      }
    } finally {
      await readers.stop()
    }
    console.info(`${backend.name} store, seed ${SEED}: ${outcomes.join('; ')}; ${readers.crops} crops`)
    expect(
      outcomes.some((outcome) => outcome.includes('killed')),
      outcomes.join('; '),
    ).toBe(true)
    expect(readers.wrong, outcomes.join('; ')).toEqual([])
    expect(readers.errors, outcomes.join('; ')).toEqual([])
    expect(readers.crops).toBeGreaterThan(20)
    // The killed writers' packs (their processes are gone) and the replaced checkpoint versions go
    // at the next collection; the one after finds nothing to do.
    await collectGarbage(store)
    expect(await collectGarbage(store)).toMatchObject({ orphanPacks: 0, packsDeleted: 0, packsRewritten: 0, deletedBlocks: 0 })
    expect((await verifyAll(store)).problems).toEqual([])
    const entries = await entriesOf(store, 'd')
    expect([...entries.keys()].sort()).toEqual([...oracle.keys()].sort())
    for (const [name, cid] of entries) await expectExact(store, cid, oracle.get(name)!, name)
  })

  it('writers in 4 processes commit 3 versions each to one dataset at once: no lost entry, no lost version', async () => {
    const K = 4
    const M = 3
    const location = backend.location('race')
    const oracle = new Map<string, TestImage>()
    const sets = await Promise.all(
      Array.from({ length: K }, (_, k) => writeSet(join(files('race'), `w${k}`), `w${k}`, 500_000 + 10_000 * k, M, oracle)),
    )
    const children = sets.map(() => new StoreChild(location))
    const heads = await Promise.all(
      children.map((child, k) => child.request<string[]>({ op: 'importFiles', dataset: 'shared', files: sets[k]!, tileSize: 16 })),
    )
    expect(heads.flat()).toHaveLength(K * M)
    await Promise.all(children.map((child) => child.close()))
    const store = await open(location)
    const entries = await entriesOf(store, 'shared')
    expect([...entries.keys()].sort()).toEqual([...oracle.keys()].sort())
    // One version per commit, each with one entry more than the one before: none replaced another.
    const head = await datasetHead(store, 'shared')
    const counts: number[] = []
    for await (const { version } of history(store, head!.cid)) {
      expect(version.checkpoint).toBeUndefined()
      counts.push(version.count)
    }
    expect(counts).toEqual(Array.from({ length: K * M }, (_, i) => K * M - i))
    // Every head a writer committed is in the history.
    const all = new Set<string>()
    for await (const { cid } of history(store, head!.cid)) all.add(cid.toString())
    for (const cid of heads.flat()) expect(all.has(cid)).toBe(true)
    for (const [name, cid] of entries) await expectExact(store, cid, oracle.get(name)!, name)
    expect((await verifyAll(store)).problems).toEqual([])
  })

  it('two processes compare-and-swap one reference at once: exactly one wins, the other gets ERR_CONFLICT and can retry', async () => {
    const location = backend.location('cas')
    const store = await open(location)
    const children = [new StoreChild(location), new StoreChild(location)]
    let current: string | null = null
    for (let round = 0; round < 3; round++) {
      const txn = `t${round}`
      const cids = await Promise.all(
        children.map((child, i) =>
          child.request<string>({ op: 'prepareRef', txn, name: 'race', text: `${round}/${i}`, expected: current }),
        ),
      )
      // Both commit at once: both read the same state, at most one creates the next record.
      const results = await Promise.allSettled(children.map((child) => child.request({ op: 'commit', txn })))
      const won = results.flatMap((result, i) => (result.status === 'fulfilled' ? [i] : []))
      expect(won, JSON.stringify(results)).toHaveLength(1)
      const winner = won[0]!
      const loser = 1 - winner
      expect((results[loser] as PromiseRejectedResult).reason).toBeInstanceOf(ChildError)
      expect((results[loser] as PromiseRejectedResult).reason).toMatchObject({ code: 'ERR_CONFLICT' })
      await store.refresh()
      expect((await store.ref('race'))?.toString()).toBe(cids[winner])
      // The loser's transaction is still open: it looks again, and wins against the new value.
      await children[loser]!.request({ op: 'setRef', txn, name: 'race', cid: cids[loser]!, expected: cids[winner]! })
      await children[loser]!.request({ op: 'commit', txn })
      await store.refresh()
      expect((await store.ref('race'))?.toString()).toBe(cids[loser])
      current = cids[loser]!
    }
    await Promise.all(children.map((child) => child.close()))
    // Both blocks of every round are stored: nothing a winner or loser wrote went missing.
    expect((await verifyAll(store)).problems).toEqual([])
  })

  it(`gc again and again beside writers and readers: everything referenced stays exact, garbage goes (seed ${SEED})`, async () => {
    const next = random(seedOf(4))
    const location = backend.location('gc')
    const folder = files('gc')
    const oracle = new Map<string, TestImage>()
    const store = await open(location)
    // Kept: a dataset, imported with two more files in one transaction (one pack), which then
    // go with the history that names them: the first collection rewrites the pack while the
    // readers read from it. Garbage: images imported, then unpinned; the writers' images share
    // tiles with them, so writers reuse blocks in packs the collections drop.
    await writeSet(join(folder, 'keep'), 'keep', 700_000, 4, oracle)
    await writeSet(join(folder, 'keep'), 'trash', 710_000, 2, new Map())
    await importDataset(store, 'keep', [join(folder, 'keep')], { tileSize: 16 })
    await removeEntries(store, 'keep', ['trash-0.pam', 'trash-1.pam'])
    await pruneHistory(store, 'keep', 1)
    const writerFiles = [
      await writeSet(join(folder, 'w0'), 'w0', 800_000, 3, oracle),
      await writeSet(join(folder, 'w1'), 'w1', 810_000, 3, oracle),
    ]
    const garbageFiles = [
      ...(await writeSet(join(folder, 'g0'), 'g0', 800_050, 4, new Map())),
      ...(await writeSet(join(folder, 'g1'), 'g1', 810_050, 4, new Map())),
    ]
    const garbage: CID[] = []
    const makeGarbage = async (file: string) => {
      const { cid } = await importImage(store, file, { tileSize: 16 })
      await unpin(store, [cid])
      garbage.push(cid)
    }
    for (const file of garbageFiles.slice(0, 2)) await makeGarbage(file)

    const readers = new Readers(store, next, oracle, ['keep', 'live'], backend.pauseMs)
    readers.start()
    const writers = writerFiles.map(() => new StoreChild(location))
    let writing = true
    const written = Promise.all(
      writers.map((child, k) => child.request<string[]>({ op: 'importFiles', dataset: 'live', files: writerFiles[k]!, tileSize: 16 })),
    ).finally(() => {
      writing = false
    })
    const runs: GcResult[] = []
    // The collector: a store handle of its own (it shares nothing with the readers' handle).
    const collector = await open(location)
    try {
      // Collections while the writers write (at most 3: enough to land in their commits), at least 2.
      for (let i = 0; (writing && runs.length < 3) || runs.length < 2; i++) {
        // New garbage for every collection, sharing tiles with what the writers import.
        await makeGarbage(garbageFiles[i % garbageFiles.length]!)
        runs.push(await collectGarbage(collector))
        await sleep(Math.floor(next() * 200))
      }
      await written
      // One more, with the writers gone: what they committed stays, the rest goes.
      runs.push(await collectGarbage(collector))
    } finally {
      await readers.stop()
      await Promise.all(writers.map((child) => child.close()))
    }
    const summary = JSON.stringify(runs)
    expect(readers.wrong, summary).toEqual([])
    expect(readers.errors, summary).toEqual([])
    expect(readers.crops).toBeGreaterThan(10)
    expect(
      runs.some((run) => run.deletedBlocks > 0 && run.bytesAfter < run.bytesBefore),
      summary,
    ).toBe(true)
    expect(runs[0]!.packsRewritten, summary).toBeGreaterThan(0)
    await store.refresh()
    expect((await verifyAll(store)).problems).toEqual([])
    const keep = await entriesOf(store, 'keep')
    const live = await entriesOf(store, 'live')
    expect(keep.size).toBe(4)
    expect([...live.keys()].sort()).toEqual(writerFiles.flat().map((file) => file.slice(file.lastIndexOf('/') + 1)))
    for (const [name, cid] of [...keep, ...live]) await expectExact(store, cid, oracle.get(name)!, name)
    for (const cid of garbage) expect(await store.has(cid), `garbage ${cid}`).toBe(false)
  })

  it('a writer that began before a collection reuses blocks the collection drops; committing a reference rescues them', async () => {
    const location = backend.location('rescue')
    const folder = files('rescue')
    const oracle = new Map<string, TestImage>()
    const [file] = await writeSet(folder, 'x', 900_000, 1, oracle)
    const image = oracle.get('x-0.pam')!
    const store = await open(location)
    const { cid } = await importImage(store, file!, { tileSize: 16 })
    await unpin(store, [cid])
    // The writer (another process) begins, and puts every block of the unreferenced image: all deduplicated.
    const child = new StoreChild(location)
    const reused = await child.request<{ blocks: number; fresh: number }>({ op: 'reuse', txn: 't', root: cid.toString(), name: 'rescued' })
    expect(reused.fresh).toBe(0)
    expect(reused.blocks).toBeGreaterThan(40)
    // A collection in a third process finds the image unreferenced and drops its packs ...
    const gc = await runCli(location, ['gc', '--json'], folder)
    expect(gc.code, gc.stderr).toBe(0)
    expect(JSON.parse(gc.stdout.toString())).toMatchObject({ deletedBlocks: reused.blocks })
    await store.refresh()
    expect(await store.has(cid)).toBe(false)
    // ... but keeps them on disk while the writer, which began before, may still need them (purge late).
    expect(store.state.dropped.size).toBeGreaterThan(0)
    // The writer commits its reference: it copies what it reused from the dropped packs.
    await child.request({ op: 'commit', txn: 't' })
    await child.close()
    await store.refresh()
    expect((await store.ref('rescued'))?.toString()).toBe(cid.toString())
    await expectExact(store, cid, image, 'rescued image')
    expect((await verifyAll(store)).problems).toEqual([])
    // The next collection purges the dropped packs; the rescued image stays whole.
    await collectGarbage(store)
    expect(store.state.dropped.size).toBe(0)
    await expectExact(store, cid, image, 'rescued image after the next collection')
    expect((await verifyAll(store)).problems).toEqual([])
  })

  // Minimal reproduction: a reader whose view predates a collection asks the store where
  // blocks lie (locateMany, on disk) and is told the pack the collection rewrote and deleted;
  // DecodePool's inline path then fails to open it (ERR_INTEGRITY), where cropImage (getMany)
  // reads the log's tail and finds the blocks in the new pack (spec/store.md §6 step 2, §10.2).
  it('a reader whose view predates a collection crops through DecodePool (inline) the blocks of a pack it rewrote', async () => {
    const location = backend.location('locate')
    const folder = files('locate')
    const oracle = new Map<string, TestImage>()
    await writeSet(folder, 'a', 980_000, 1, oracle)
    await writeSet(folder, 'b', 981_000, 1, new Map())
    const writer = await open(location)
    await importDataset(writer, 'mix', [folder], { tileSize: 16 })
    await removeEntries(writer, 'mix', ['b-0.pam'])
    await pruneHistory(writer, 'mix', 1)
    // Two readers, each with a view from before the collection.
    const cid = (await entriesOf(writer, 'mix')).get('a-0.pam')!
    const first = await openImage(await open(location), cid)
    const second = await openImage(await open(location), cid)
    expect((await collectGarbage(writer)).packsRewritten).toBeGreaterThan(0)
    const region = { x: 3, y: 5, width: 100, height: 70 }
    const expected = Buffer.from(naiveCrop(oracle.get('a-0.pam')!, region))
    const chunks: Uint8Array[] = []
    for await (const chunk of await cropImage(first, region, { format: 'raw' })) chunks.push(chunk)
    expect(Buffer.compare(Buffer.concat(chunks), expected), 'cropImage').toBe(0)
    const pool = new DecodePool(0)
    try {
      expect(Buffer.compare(Buffer.from(await pool.read(second.reader, region)), expected), 'DecodePool').toBe(0)
    } finally {
      await pool.close()
    }
  })

  it('8 tessera crop processes started at once on one store: all succeed, every crop exact', async () => {
    const location = backend.location('crops')
    const folder = files('crops')
    await mkdir(folder, { recursive: true })
    const rgb = makeImage(256, 192, 3, 8, 11)
    const gray16 = makeImage(160, 96, 1, 16, 12)
    await writePam(join(folder, 'rgb.pam'), rgb)
    await writePam(join(folder, 'gray16.pam'), gray16)
    const store = await open(location)
    const a = (await importImage(store, join(folder, 'rgb.pam'), { tileSize: 32 })).cid
    const b = (await importImage(store, join(folder, 'gray16.pam'), { tileSize: 32 })).cid
    const crops: Array<[CID, TestImage, Region]> = [
      [a, rgb, { x: 0, y: 0, width: 64, height: 64 }],
      [a, rgb, { x: 17, y: 30, width: 100, height: 61 }],
      [a, rgb, { x: 200, y: 150, width: 56, height: 42 }],
      [a, rgb, { x: 0, y: 0, width: 256, height: 192 }],
      [a, rgb, { x: 128, y: 5, width: 1, height: 1 }],
      [b, gray16, { x: 31, y: 31, width: 66, height: 34 }],
      [b, gray16, { x: 0, y: 64, width: 160, height: 32 }],
      [b, gray16, { x: 150, y: 0, width: 10, height: 96 }],
    ]
    const processes = crops.map(([cid, , r]) =>
      startCli(location, ['crop', cid.toString(), '--region', `${r.x},${r.y},${r.width},${r.height}`, '-f', 'raw', '-o', '-'], folder),
    )
    const exits = await Promise.all(processes.map((p) => p.exit))
    for (const [i, exit] of exits.entries()) {
      const [, image, region] = crops[i]!
      expect(exit.code, `crop ${i}: ${exit.stderr}`).toBe(0)
      expect(Buffer.compare(exit.stdout, Buffer.from(naiveCrop(image, region))), `crop ${i}`).toBe(0)
    }
  })

  it('a reader that stays open sees what other processes commit later: pins, references and blocks', async () => {
    const location = backend.location('reader')
    const folder = files('reader')
    const oracle = new Map<string, TestImage>()
    const [one] = await writeSet(join(folder, 'one'), 'one', 950_000, 1, oracle)
    await writeSet(join(folder, 'set'), 'set', 960_000, 2, oracle)
    const [late] = await writeSet(join(folder, 'late'), 'late', 970_000, 1, oracle)
    // Opened once, before anything is in the store.
    const reader = await open(location)
    const refreshMs = reader.init.refreshMs
    const pins = async () => {
      const out: string[] = []
      for await (const pin of reader.pins()) out.push(pin.cid.toString())
      return out
    }
    expect(await pins()).toEqual([])

    // An image pinned by another process: listed once the reader's view is older than its refresh period.
    const first = await runCli(location, ['import', one!, '--tile-size', '16'], folder)
    expect(first.code, first.stderr).toBe(0)
    const pinned = first.stdout.toString().trim()
    await sleep(refreshMs + 50)
    expect(await pins()).toEqual([pinned])
    await expectExact(reader, CID.parse(pinned), oracle.get('one-0.pam')!, 'pinned image')

    // A dataset: its blocks are found at once (a block not found makes the reader look at the log again) ...
    const second = await runCli(location, ['import', join(folder, 'set'), '--dataset', 'd', '--tile-size', '16'], folder)
    expect(second.code, second.stderr).toBe(0)
    const head = second.stdout.toString().trim()
    expect((await reader.get(CID.parse(head))).length).toBeGreaterThan(0)
    // ... and so is its reference.
    expect((await reader.ref('dataset/d'))?.toString()).toBe(head)

    // A new version moves the reference: seen within the refresh period, without a miss first.
    const third = await runCli(location, ['import', late!, '--dataset', 'd', '--tile-size', '16'], folder)
    expect(third.code, third.stderr).toBe(0)
    const newHead = third.stdout.toString().trim()
    expect(newHead).not.toBe(head)
    await sleep(refreshMs + 50)
    expect((await reader.ref('dataset/d'))?.toString()).toBe(newHead)
    const entries = await entriesOf(reader, 'd')
    expect([...entries.keys()]).toEqual(['late-0.pam', 'set-0.pam', 'set-1.pam'])
    for (const [name, cid] of entries) await expectExact(reader, cid, oracle.get(name)!, name)
  })
})

// A smaller reproduction of what the dataset race above runs into, in one process: a writer
// gives up with ERR_CONFLICT after 8 attempts (retryOnConflict in src/dataset/dataset.ts) while
// the others keep moving the head. Separate store handles share no lock, like processes. The
// store is not the point, so it runs on disk only.
describe('dataset commits from many store handles', () => {
  it('6 writers (separate store handles) commit 4 versions each to one dataset at once: all succeed', async () => {
    const location = join(dir, 'store-starve')
    const folder = join(dir, 'starve')
    const oracle = new Map<string, TestImage>()
    const [file] = await writeSet(folder, 'one', 990_000, 1, oracle)
    const store = await open(location)
    const { cid } = await importImage(store, file!, { tileSize: 16 })
    const handles = await Promise.all(Array.from({ length: 6 }, () => open(location)))
    const entry = (name: string) => ({ name, image: cid, size: 1, mtime: 1, sha256: new Uint8Array(32) })
    const results = await Promise.allSettled(
      handles.map(async (handle, k) => {
        for (let m = 0; m < 4; m++) {
          await commitChanges(handle, 'many', async () => [{ name: `w${k}-${m}`, entry: entry(`w${k}-${m}`) }], { note: `w${k} ${m}` })
        }
      }),
    )
    const outcomes = results.map((result) => (result.status === 'fulfilled' ? 'ok' : (result.reason as { code?: string }).code))
    expect(outcomes).toEqual(['ok', 'ok', 'ok', 'ok', 'ok', 'ok'])
    await store.refresh()
    expect((await entriesOf(store, 'many')).size).toBe(24)
  })
})
