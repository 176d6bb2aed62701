/**
 * kill -9 chaos (issue 10, "a chaos suite that stays"): SIGKILL at seeded random moments of every
 * writing command, with readers cropping beside them, then the store's promises checked.
 *
 *   node --import tsx scripts/chaos/kill.ts --seed 1 --rounds 50 [--store disk|s3] [--keep]
 *   node --import tsx scripts/chaos/kill.ts --seed 1 --epoch 3 --upto 5 [--delay-ms 412]   # one failing round again
 *
 * A run is a sequence of **epochs**: a fresh store (on disk, or under TESSERA_TEST_S3 with
 * `--store s3`), filled with a few pinned images and a dataset with history, then one **round**
 * per writing command in a seeded order: `import` (1-3 files, half with `--pyramid`), a dataset
 * import (`--checkpoint-files 2`), `rm` (an image, entries or a dataset), `prune`, `gc` (with
 * garbage: an unpinned image and a half-dead pack), `car import`, `repair` (after deleting a
 * live pack's index or the whole root log) and an upload to `tessera serve` (the server is
 * killed). Images are small (64-256 px, 16/32-px tiles, 1-4 channels, 8/16 bits, PAM or PNG)
 * so that a round takes seconds. Each round:
 *
 * 1. starts readers in this process (two store handles: one open for the whole epoch, one
 *    fresh; crops through the facade and through DecodePool, at every pyramid level) on every
 *    image committed before the round, each crop compared with the oracle
 *    (test/helpers/oracle.ts);
 * 2. runs the command (the built CLI, bin/tessera.js; `serve` for an upload) and SIGKILLs it:
 *    after a seeded delay, a phase (startup, early, middle, late) and a point in it, scaled by the
 *    command's duration measured first (a calibration epoch, then every run to its end); or, a
 *    fifth of the time, 0-2 ms after its first record appears in the log (what happens after a
 *    commit: lease deletion, checkpoints, a collection's purge); a quarter of the `gc` and
 *    `repair` rounds are killed by the command itself at a named step (TESSERA_TEST_KILL_AT).
 *    In a third of the rounds the log is first padded (in this process) so that the command's
 *    first commit is a multiple of 64: it writes a checkpoint and prunes the log;
 * 3. checks: `tessera verify --all` exits 0 (after the rerun when the round damaged the store);
 *    every image committed before crops exactly; whatever the store lists (what the killed
 *    command committed part of) is a known image and crops exactly; the rerun succeeds and the
 *    store then holds exactly what the model says; every reader crop was exact (a coded error
 *    is accepted only while the store is damaged); two collections later no orphan is left (no
 *    pack that the state does not name, no gc.lock) and everything still crops exactly.
 *
 * Every choice comes from `--seed` (epoch e, round r: mix(mix(seed, e + 1), r + 1)); a failing
 * round prints the command line that replays its epoch up to it with the same kill delay. A
 * failing round ends its epoch (its store is kept for inspection); the run goes on with the
 * next. Leftovers that are not failures (`.tmp-` files in the store, dead writers' leases no
 * collection deletes, files in the commands' TMPDIR) are listed in the summary.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import sharp from 'sharp'
import { exportCar } from '../../src/car/export.js'
import { DecodePool } from '../../src/crop/decode-pool.js'
import { history, listDatasets, removeEntries } from '../../src/dataset/dataset.js'
import { importDataset } from '../../src/dataset/import.js'
import { collectGarbage, unpin, verifyAll } from '../../src/dataset/maintenance.js'
import { iterateEntries, NodeCache } from '../../src/dataset/tree.js'
import { rawBlock } from '../../src/format/block.js'
import type { Region } from '../../src/format/interface.js'
import { cropImage, importImage, openImage } from '../../src/image.js'
import type { ObjectBlockStore } from '../../src/store/object-store.js'
import type { ObjectDriver } from '../../src/store/objects/interface.js'
import { openS3Driver, parseS3Url } from '../../src/store/objects/s3.js'
import { openStoreAt } from '../../src/store/open.js'
import { CHECKPOINT_EVERY } from '../../src/store/root-log.js'
import { makeImage, naiveCrop, naiveHalve, type TestImage, writePam } from '../../test/helpers/oracle.js'
import { cliIsStale } from '../../test/helpers/processes.js'

/** The writing commands, one round each per epoch. */
export const KINDS = ['import', 'dataset-import', 'rm', 'prune', 'gc', 'car-import', 'repair', 'upload'] as const
export type Kind = (typeof KINDS)[number]
/**
 * Where in a command's run a kill was aimed: startup, early, middle, late (a delay); `commit`:
 * a few ms after its first commit (its first record appears in the log); `step`: at a named step
 * (TESSERA_TEST_KILL_AT).
 */
export type Phase = 'startup' | 'early' | 'middle' | 'late' | 'commit' | 'step'
const PHASES: readonly Phase[] = ['startup', 'early', 'middle', 'late', 'commit', 'step']
type Landed = '0-25%' | '25-50%' | '50-75%' | '75-100%' | '>100%'
const LANDED: readonly Landed[] = ['0-25%', '25-50%', '50-75%', '75-100%', '>100%']

export interface KillChaosOptions {
  readonly seed: number
  /** Kill rounds to run (8 per epoch, one per command). */
  readonly rounds: number
  readonly store?: 'disk' | 's3'
  readonly log?: (line: string) => void
  /** Reproduction: run only this epoch ... */
  readonly epoch?: number
  /** ... up to this round of it (1-based) ... */
  readonly upto?: number
  /** ... killing its last round after this many ms. */
  readonly delayMs?: number
  /** Keep every store and file (default: only a failing epoch's store). */
  readonly keep?: boolean
}

/** Rounds of one command. */
export interface CommandCount {
  rounds: number
  /** Kill points: the command died of the SIGKILL. */
  killed: number
  /** Of those, kills after the command had committed a record (the root log's generation had moved). */
  afterCommit: number

  /** The command (or upload) had finished before the kill. */
  finished: number
  phases: Record<Phase, number>
  /** Timed kills by where they landed in the rerun's time (the rerun runs the same command to its end). */
  landed: Record<Landed, number>

  variants: Record<string, number>
  /** Rounds whose command's first commit was a checkpoint (the log padded to 64k - 1 first). */
  checkpoints: number

  /** Median full run (calibration and reruns), ms. */
  medianMs: number
}

export interface KillChaosFailure {
  readonly round: string
  readonly kind: Kind
  readonly variant: string
  readonly command: string
  readonly kill: string
  readonly reproduce: string
  readonly store: string
  readonly problems: string[]
}

export interface KillChaosSummary {
  readonly seed: number
  readonly store: 'disk' | 's3'
  readonly rounds: number
  readonly killPoints: number
  readonly finishedBeforeKill: number
  readonly perCommand: Record<Kind, CommandCount>
  readonly crops: { readonly total: number; readonly codedErrors: number }
  readonly failures: KillChaosFailure[]
  /** Not failures: `.tmp-` files left in stores, files left in the commands' TMPDIR. */
  readonly leftovers: {
    /** `.tmp-` files in stores after two collections (epoch: path). */
    readonly storeTmpFiles: string[]

    /**
     * Leases (txns/) of killed writers whose packs are all live (killed after its commit) or
     * that wrote none (killed before its first pack): no collection deletes them.
     */
    readonly deadLeases: string[]
    readonly tmpdirFiles: string[]
  }
  readonly seconds: number
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const BIN = join(ROOT, 'bin/tessera.js')

// ---------------------------------------------------------------------------------------------
// Seeded choices

/** A 32-bit hash of two numbers: the seed of epoch e is mix(seed, e + 1), of its round r mix(that, r + 1). */
export function mix(a: number, b: number): number {
  let h = Math.imul((a ^ 0x9e3779b9) >>> 0, 0x85ebca6b) ^ Math.imul((b + 0x632be5ab) >>> 0, 0xc2b2ae35)
  h ^= h >>> 16
  h = Math.imul(h, 0x7feb352d)
  h ^= h >>> 15
  h = Math.imul(h, 0x846ca68b)
  h ^= h >>> 16
  return h >>> 0
}

/** xorshift32, as in the other seeded tests. */
class Rng {
  #x: number
  constructor(seed: number) {
    this.#x = seed >>> 0 || 1
  }
  next(): number {
    let x = this.#x
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    this.#x = x
    return x / 2 ** 32
  }
  /** An integer in lo..hi inclusive. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1))
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!
  }
  chance(p: number): boolean {
    return this.next() < p
  }
  shuffle<T>(items: readonly T[]): T[] {
    const out = [...items]
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1))
      ;[out[i], out[j]] = [out[j]!, out[i]!]
    }
    return out
  }
}

// ---------------------------------------------------------------------------------------------
// Images and the model of what a store holds

/** An image the run made, with its pyramid levels by the spec's definition (computed on need). */
class Known {
  readonly name: string
  readonly #levels: TestImage[]
  constructor(name: string, image: TestImage) {
    this.name = name
    this.#levels = [image]
  }
  level(n: number): TestImage {
    while (this.#levels.length <= n) this.#levels.push(naiveHalve(this.#levels.at(-1)!))
    return this.#levels[n]!
  }
}

/** Pins (CID -> label) and datasets (name -> entry -> image CID). */
interface Model {
  pins: Map<string, string>
  datasets: Map<string, Map<string, string>>
}

const copyModel = (model: Model): Model => ({
  pins: new Map(model.pins),
  datasets: new Map([...model.datasets].map(([name, entries]) => [name, new Map(entries)])),
})

/** What a store lists now. */
async function listing(store: ObjectBlockStore): Promise<Model> {
  const pins = new Map<string, string>()
  for await (const pin of store.pins()) pins.set(pin.cid.toString(), pin.label)
  const datasets = new Map<string, Map<string, string>>()
  for await (const head of listDatasets(store)) {
    const entries = new Map<string, string>()
    for await (const entry of iterateEntries(new NodeCache(store), head.version.entries)) entries.set(entry.name, entry.image.toString())
    datasets.set(head.name, entries)
  }
  return { pins, datasets }
}

/** Differences between two models, as sentences; empty if equal. */
function compareModels(want: Model, got: Model): string[] {
  const out: string[] = []
  for (const cid of want.pins.keys()) if (!got.pins.has(cid)) out.push(`pin ${cid} (${want.pins.get(cid)}) is missing`)
  for (const cid of got.pins.keys()) if (!want.pins.has(cid)) out.push(`pin ${cid} (${got.pins.get(cid)}) is unexpected`)
  for (const [name, entries] of want.datasets) {
    const have = got.datasets.get(name)
    if (have === undefined) {
      out.push(`dataset ${name} is missing`)
      continue
    }
    for (const [entry, cid] of entries)
      if (have.get(entry) !== cid) out.push(`${name}/${entry}: ${have.get(entry) ?? 'missing'}, expected ${cid}`)
    for (const entry of have.keys()) if (!entries.has(entry)) out.push(`${name}/${entry} is unexpected`)
  }
  for (const name of got.datasets.keys()) if (!want.datasets.has(name)) out.push(`dataset ${name} is unexpected`)
  return out
}

const raw = async (chunks: AsyncIterable<Uint8Array>): Promise<Buffer> => {
  const out: Uint8Array[] = []
  for await (const chunk of chunks) out.push(chunk)
  return Buffer.concat(out)
}

/** Problems with image `cid` read from `store`: every level, whole, against the oracle. */
async function exactProblems(store: ObjectBlockStore, cid: string, known: Known, what: string): Promise<string[]> {
  try {
    const image = await openImage(store, cid)
    const levels = image.manifest.levels.length
    const out: string[] = []
    for (let level = 0; level < levels; level++) {
      const want = known.level(level)
      const region = { x: 0, y: 0, width: want.width, height: want.height }
      const got = await raw(await cropImage(image, region, { format: 'raw', level }))
      if (!got.equals(Buffer.from(naiveCrop(want, region)))) out.push(`${what} (${cid}) level ${level}: WRONG PIXELS`)
    }
    return out
  } catch (error) {
    const { code, message } = error as Error & { code?: string }
    return [`${what} (${cid}): ${code ?? 'no code'}: ${message}`]
  }
}

// ---------------------------------------------------------------------------------------------
// Processes

interface Exit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
  readonly ms: number
}

interface Proc {
  readonly child: ChildProcess
  readonly exit: Promise<Exit>
  readonly line: string
}

const quote = (arg: string) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`)

// ---------------------------------------------------------------------------------------------
// Readers

/** Crops in this process beside a round's writer, each compared with the oracle. */
class Readers {
  crops = 0
  readonly wrong: string[] = []
  readonly errors: string[] = []
  #stopped = false
  #loops: Promise<void>[] = []
  constructor(
    readonly handles: readonly ObjectBlockStore[],
    readonly targets: ReadonlyArray<readonly [string, Known]>,
    readonly rng: Rng,
    readonly pauseMs: number,
    readonly pool: DecodePool,
  ) {}

  start(): void {
    if (this.targets.length === 0) return
    this.#loops = [this.#loop(false), this.#loop(true)]
  }

  async stop(): Promise<void> {
    this.#stopped = true
    await Promise.all(this.#loops)
  }

  async #loop(viaPool: boolean): Promise<void> {
    while (!this.#stopped) {
      const [cid, known] = this.rng.pick(this.targets)
      const handle = this.rng.pick(this.handles)
      let label = `${known.name} (${cid})`
      try {
        const image = await openImage(handle, cid)
        const levels = image.manifest.levels.length
        const level = levels > 1 && this.rng.chance(0.3) ? this.rng.int(1, levels - 1) : 0
        const want = known.level(level)
        const width = this.rng.int(1, Math.min(64, want.width))
        const height = this.rng.int(1, Math.min(64, want.height))
        const region: Region = { x: this.rng.int(0, want.width - width), y: this.rng.int(0, want.height - height), width, height }
        label += ` level ${level} ${region.x},${region.y},${region.width},${region.height}${viaPool ? ' (DecodePool)' : ''}`
        const got = viaPool
          ? Buffer.from(await this.pool.read(image.reader, region, { level }))
          : await raw(await cropImage(image, region, { format: 'raw', level }))
        if (!got.equals(Buffer.from(naiveCrop(want, region)))) this.wrong.push(label)
      } catch (error) {
        const { code, message } = error as Error & { code?: string }
        this.errors.push(`${label}: ${code ?? 'NO CODE'}: ${message}`)
      }
      this.crops++
      await sleep(this.pauseMs)
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Rounds

/** What a round runs and how the model changes once it has run. */
interface Plan {
  readonly kind: Kind
  readonly variant: string
  /** tessera's arguments (without --store); for an upload, the POST's query string. */
  readonly args: readonly string[]
  /** TESSERA_TEST_KILL_AT: the command kills itself at that step. */
  readonly step?: string
  /** The store is damaged until this command has run to its end. */
  readonly damaged: boolean
  /** The root log was deleted: after the repair, the store's roots are adopted (a superset of the model's). */
  readonly logLost?: boolean
  readonly upload?: { readonly path: string }
  /**
   * Records committed (in this process) just before the command so that its first commit is a
   * multiple of 64: it writes a checkpoint and prunes the log.
   */
  readonly padded?: number
  /** A rerun may fail with this when the killed run had committed (rm of what is gone). */
  readonly rerunMayFail?: RegExp
  /** The model once the command has run: from what the (re)run printed and what the store lists. */
  expect(output: string, now: Model): Model | string
}

interface RoundResult {
  readonly problems: string[]
  /** The command line of the killed command. */
  readonly line: string
  readonly killed: boolean
  readonly afterCommit: boolean
  /** A timed kill's delay over the rerun's duration. */
  readonly landed?: number
  readonly finished: boolean
  readonly summary: string
}

interface Sampled {
  readonly phase: Phase
  readonly delayMs: number
}

/** An image file a round made. */
interface MadeFile {
  readonly path: string
  readonly name: string
  readonly known: Known
}

/** One epoch: a store, its model, the images made for it. */
class Epoch {
  model: Model = { pins: new Map(), datasets: new Map() }
  readonly images = new Map<string, Known>()
  readonly byName = new Map<string, Known>()
  #counter = 0
  #datasets = 0
  reader!: ObjectBlockStore
  carSource!: ObjectBlockStore
  constructor(
    readonly index: number | 'calibration',
    readonly seed: number,
    readonly location: string,
    readonly files: string,
  ) {}

  get label(): string {
    return this.index === 'calibration' ? 'cal' : `e${this.index}`
  }

  /** A new image file in `dir`: 64-256 px, 1-4 channels, 8 or 16 bits, PAM or (8-bit) PNG. */
  async makeFile(rng: Rng, dir: string): Promise<MadeFile> {
    await mkdir(dir, { recursive: true })
    const bits = rng.chance(0.25) ? 16 : 8
    const image = makeImage(rng.int(64, 256), rng.int(64, 256), rng.int(1, 4), bits, rng.int(1, 1e6))
    const ext = bits === 8 && rng.chance(0.3) ? 'png' : 'pam'
    const name = `${this.label}-${++this.#counter}.${ext}`
    const path = join(dir, name)
    if (ext === 'png') {
      await sharp(Buffer.from(image.data), { raw: { width: image.width, height: image.height, channels: image.channels as 1 | 2 | 3 | 4 } })
        // Gray stays gray (sharp writes 1 and 2 channels as RGB otherwise).
        .toColourspace(image.channels <= 2 ? 'b-w' : 'srgb')
        .png({ compressionLevel: 1 })
        .toFile(path)
    } else {
      await writePam(path, image)
    }
    const known = new Known(name, image)
    this.byName.set(name, known)
    return { path, name, known }
  }

  newFolder(): string {
    return join(this.files, `${this.label}-dir${++this.#counter}`)
  }

  newDatasetName(): string {
    return `${this.label}-ds${++this.#datasets}`
  }

  /** The image an entry or pin label names (file names are unique in a run). */
  knownByName(name: string): Known | undefined {
    return this.byName.get(basename(name))
  }

  /** Learns the CIDs of what `got` lists, and returns what it lists that is no known image. */
  learn(got: Model): string[] {
    const unknown: string[] = []
    const see = (cid: string, name: string, what: string) => {
      if (this.images.has(cid)) return
      const known = this.knownByName(name)
      if (known === undefined) unknown.push(`${what} ${cid} is no image this run made`)
      else this.images.set(cid, known)
    }
    for (const [cid, label] of got.pins) see(cid, label, `pin ${label}`)
    for (const [name, entries] of got.datasets) for (const [entry, cid] of entries) see(cid, entry, `${name}/${entry}`)
    return unknown
  }

  /** Every image the model holds, once each: [CID, image]. */
  committed(model = this.model): Array<[string, Known]> {
    const cids = new Set([...model.pins.keys(), ...[...model.datasets.values()].flatMap((entries) => [...entries.values()])])
    return [...cids].map((cid) => [cid, this.images.get(cid)!] as [string, Known]).filter(([, known]) => known !== undefined)
  }
}

const emptyCount = (): CommandCount => ({
  rounds: 0,
  killed: 0,
  afterCommit: 0,
  finished: 0,
  phases: Object.fromEntries(PHASES.map((phase) => [phase, 0])) as Record<Phase, number>,
  landed: Object.fromEntries(LANDED.map((bucket) => [bucket, 0])) as Record<Landed, number>,
  variants: {},
  checkpoints: 0,

  medianMs: 0,
})

class KillChaos {
  readonly seed: number
  readonly backend: 'disk' | 's3'
  readonly log: (line: string) => void
  readonly options: KillChaosOptions
  dir = ''
  #s3Base = ''
  readonly #children = new Set<ChildProcess>()
  readonly #estimates = new Map<Kind | 'startup', number>()
  readonly #durations = new Map<Kind | 'startup', number[]>()
  readonly counts = Object.fromEntries(KINDS.map((kind) => [kind, emptyCount()])) as Record<Kind, CommandCount>
  readonly failures: KillChaosFailure[] = []
  crops = 0
  codedErrors = 0
  readonly storeTmpFiles = new Set<string>()

  readonly deadLeases = new Set<string>()

  rounds = 0
  pool = new DecodePool(0)

  constructor(options: KillChaosOptions) {
    this.options = options
    this.seed = options.seed
    this.backend = options.store ?? 'disk'
    this.log = options.log ?? ((line) => console.log(line))
  }

  get pauseMs(): number {
    return this.backend === 's3' ? 80 : 25
  }

  get tmp(): string {
    return join(this.dir, 'tmp')
  }

  get cache(): string {
    return join(this.dir, 'cache')
  }

  location(name: string): string {
    return this.backend === 's3' ? `${this.#s3Base}/${name}` : join(this.dir, 'stores', name)
  }

  async open(location: string): Promise<ObjectBlockStore> {
    return openStoreAt(location, this.backend === 's3' ? { cache: { dir: this.cache, maxBytes: 256 << 20 } } : {})
  }

  // --- processes ---------------------------------------------------------------------------

  env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env, AWS_EC2_METADATA_DISABLED: 'true', TMPDIR: this.tmp, TESSERA_CACHE_DIR: this.cache }
    delete env.TESSERA_STORE
    delete env.TESSERA_TEST_KILL_AT
    return { ...env, ...extra }
  }

  /** Starts `tessera ...args --store LOCATION`, killed after `deadlineMs` at the latest. */
  cli(location: string, args: readonly string[], extra: Record<string, string> = {}, deadlineMs = 180_000): Proc {
    const argv = [...args, '--store', location]
    const started = performance.now()
    const child = spawn(process.execPath, [BIN, ...argv], { cwd: this.dir, env: this.env(extra) })
    this.#children.add(child)
    const deadline = setTimeout(() => child.kill('SIGKILL'), deadlineMs)
    deadline.unref()
    let stdout = ''
    let stderr = ''
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk
    })
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk
    })
    const exit = new Promise<Exit>((resolve) =>
      child.on('close', (code, signal) => {
        clearTimeout(deadline)
        this.#children.delete(child)
        resolve({ code, signal, stdout, stderr, ms: performance.now() - started })
      }),
    )
    const env = Object.entries(extra).map(([key, value]) => `${key}=${quote(value)} `)
    return { child, exit, line: `${env.join('')}node bin/tessera.js ${argv.map(quote).join(' ')}` }
  }

  run(location: string, args: readonly string[]): Promise<Exit> {
    return this.cli(location, args).exit
  }

  /** `tessera serve --port 0` on `location`; resolves once it listens. */
  async serve(location: string): Promise<{ proc: Proc; url: string }> {
    const proc = this.cli(location, ['serve', '--port', '0', '--log-level', 'info'])
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('tessera serve did not listen within 60 s')), 60_000)
      createInterface({ input: proc.child.stdout! }).on('line', (line) => {
        try {
          const message = JSON.parse(line) as { url?: string }
          if (typeof message.url === 'string') {
            clearTimeout(timer)
            resolve(message.url)
          }
        } catch {}
      })
      void proc.exit.then((exit) => {
        clearTimeout(timer)
        reject(new Error(`tessera serve exited (${exit.code ?? exit.signal}): ${exit.stderr.slice(-500)}`))
      })
    })
    return { proc, url }
  }

  killAll(): void {
    for (const child of this.#children) child.kill('SIGKILL')
  }

  // --- durations and kill moments -----------------------------------------------------------

  /**
   * A full run's duration. The estimate is the shortest of the last three: the load on the
   * machine drifts by 2x within minutes, and an estimate too long sends kills past the end.
   */
  measured(kind: Kind | 'startup', ms: number): void {
    const list = this.#durations.get(kind) ?? []
    list.push(ms)
    this.#durations.set(kind, list)
    this.#estimates.set(kind, Math.min(...list.slice(-3)))
  }

  /**
   * When to kill: a phase (startup 10 %, early, middle, late 30 % each), then a point in it.
   * The startup phase is the time a no-op command takes (process start, opening the store);
   * early/middle/late split the rest of the command's measured duration in thirds, late running
   * to its end (some commands finish first: not a kill point). An upload has no startup: the
   * server already listens and the clock starts with the request.
   */
  sample(kind: Kind, rng: Rng): Sampled {
    const total = this.#estimates.get(kind) ?? 2000
    const startup = kind === 'upload' ? 0 : Math.min(this.#estimates.get('startup') ?? 500, total * 0.8)
    const work = Math.max(30, total - startup)
    const roll = rng.next()
    const u = rng.next()
    if (roll < 0.1 && startup > 0) return { phase: 'startup', delayMs: Math.round(u * startup) }
    const phase: Phase = roll < 0.4 ? 'early' : roll < 0.7 ? 'middle' : 'late'
    const [lo, hi] = phase === 'early' ? [0, 0.33] : phase === 'middle' ? [0.33, 0.67] : [0.67, 1.0]
    return { phase, delayMs: Math.round(startup + (lo + u * (hi - lo)) * work) }
  }

  // --- epochs ------------------------------------------------------------------------------

  async newEpoch(index: number | 'calibration', seed: number): Promise<Epoch> {
    const name = index === 'calibration' ? 'calibration' : `e${index}`
    const epoch = new Epoch(index, seed, this.location(name), join(this.dir, 'files'))
    const rng = new Rng(mix(seed, 0))
    const store = await this.open(epoch.location)
    try {
      // Two pinned images (one with its pyramid) and a dataset of three entries in two versions.
      for (const pyramid of [false, true]) {
        const file = await epoch.makeFile(rng, join(epoch.files, 'prefill'))
        const { cid } = await importImage(store, file.path, { tileSize: rng.pick([16, 32]), pyramid, workers: 0 })
        epoch.images.set(cid.toString(), file.known)
      }
      const dataset = epoch.newDatasetName()
      const folder = epoch.newFolder()
      for (let i = 0; i < 2; i++) await epoch.makeFile(rng, folder)
      await importDataset(store, dataset, [folder], { tileSize: 16, prefix: 'p0' })
      const late = await epoch.makeFile(rng, epoch.newFolder())
      await importDataset(store, dataset, [late.path], { tileSize: 32, prefix: 'p1' })
      const got = await listing(store)
      const unknown = epoch.learn(got)
      if (unknown.length > 0) throw new Error(`prefill: ${unknown.join('; ')}`)
      epoch.model = got
      // The oracle itself: what was imported here, in this process, crops exactly.
      for (const [cid, known] of epoch.committed()) {
        const problems = await exactProblems(store, cid, known, `${known.name}, imported in-process`)
        if (problems.length > 0) throw new Error(`prefill: ${problems.join('; ')}`)
      }
    } finally {
      await store.close()
    }
    epoch.reader = await this.open(epoch.location)
    epoch.carSource = await openStoreAt('memory:')
    return epoch
  }

  async closeEpoch(epoch: Epoch, keep: boolean): Promise<void> {
    await epoch.reader.close().catch(() => {})
    await epoch.carSource.close().catch(() => {})
    if (keep || this.options.keep) return
    if (this.backend === 'disk') await rm(epoch.location, { recursive: true, force: true })
    else await deletePrefix(epoch.location)
  }

  /** The round's command: its arguments, and what the model becomes once it has run. */
  async prepare(kind: Kind, epoch: Epoch, rng: Rng): Promise<Plan> {
    const store = await this.open(epoch.location)
    try {
      const plan = await this.#prepare(kind, epoch, rng, store)
      // A third of the rounds: the command's first commit is a checkpoint (spec/store.md §5.3).
      if (plan.damaged || !rng.chance(0.3)) return plan
      return { ...plan, padded: await padLog(store) }
    } finally {
      await store.close()
    }
  }

  async #prepare(kind: Kind, epoch: Epoch, rng: Rng, store: ObjectBlockStore): Promise<Plan> {
    const model = epoch.model
    const tileSize = String(rng.pick([16, 32]))
    switch (kind) {
      case 'import': {
        const pyramid = rng.chance(0.5)
        const dir = epoch.newFolder()
        const files: MadeFile[] = []
        for (let i = rng.int(1, 3); i > 0; i--) files.push(await epoch.makeFile(rng, dir))
        return {
          kind,
          variant: pyramid ? 'pyramid' : 'image',
          args: ['import', ...files.map((file) => file.path), '--tile-size', tileSize, ...(pyramid ? ['--pyramid'] : [])],
          damaged: false,
          expect(output) {
            const cids = output.trim().split('\n')
            if (cids.length !== files.length) return `import printed ${cids.length} CIDs for ${files.length} files`
            const next = copyModel(model)
            for (const [i, cid] of cids.entries()) {
              epoch.images.set(cid, files[i]!.known)
              next.pins.set(cid, files[i]!.name)
            }
            return next
          },
        }
      }
      case 'dataset-import': {
        const existing = [...model.datasets.keys()]
        const name = existing.length > 0 && rng.chance(0.6) ? rng.pick(existing) : epoch.newDatasetName()
        const dir = epoch.newFolder()
        const prefix = `p${rng.int(2, 1e6)}`
        const files: MadeFile[] = []
        for (let i = rng.int(3, 6); i > 0; i--) files.push(await epoch.makeFile(rng, dir))
        return {
          kind,
          variant: existing.includes(name) ? 'existing' : 'new',
          args: ['import', dir, '--dataset', name, '--prefix', prefix, '--tile-size', tileSize, '--checkpoint-files', '2'],
          damaged: false,
          expect(_output, now) {
            const next = copyModel(model)
            const entries = next.datasets.get(name) ?? new Map<string, string>()
            next.datasets.set(name, entries)
            for (const file of files) {
              const entry = `${prefix}/${file.name}`
              const cid = now.datasets.get(name)?.get(entry)
              if (cid === undefined) return `${name}/${entry} is missing after the rerun`
              epoch.images.set(cid, file.known)
              entries.set(entry, cid)
            }
            return next
          },
        }
      }
      case 'rm': {
        const pins = [...model.pins.keys()]
        const datasets = [...model.datasets].filter(([, entries]) => entries.size > 0)
        const variants = [...(pins.length > 0 ? ['unpin'] : []), ...(datasets.length > 0 ? ['entries', 'dataset'] : [])]
        if (variants.length === 0) {
          // Nothing to remove: make something.
          const file = await epoch.makeFile(rng, epoch.newFolder())
          const { cid } = await importImage(store, file.path, { tileSize: 16, workers: 0 })
          epoch.images.set(cid.toString(), file.known)
          model.pins.set(cid.toString(), file.name)
          return this.#prepare(kind, epoch, rng, store)
        }
        const variant = rng.pick(variants)
        if (variant === 'unpin') {
          const cid = rng.pick(pins)
          return {
            kind,
            variant,
            args: ['rm', cid],
            damaged: false,
            rerunMayFail: /ERR_NOT_FOUND/,
            expect() {
              const next = copyModel(model)
              next.pins.delete(cid)
              return next
            },
          }
        }
        const [name, entries] = rng.pick(datasets)
        if (variant === 'dataset') {
          return {
            kind,
            variant,
            args: ['rm', name],
            damaged: false,
            rerunMayFail: /ERR_NOT_FOUND/,
            expect() {
              const next = copyModel(model)
              next.datasets.delete(name)
              return next
            },
          }
        }
        const chosen = rng.shuffle([...entries.keys()]).slice(0, rng.int(1, Math.min(2, entries.size)))
        return {
          kind,
          variant,
          args: ['rm', ...chosen.map((entry) => `${name}/${entry}`)],
          damaged: false,
          rerunMayFail: /ERR_NOT_FOUND/,
          expect() {
            const next = copyModel(model)
            for (const entry of chosen) next.datasets.get(name)!.delete(entry)
            return next
          },
        }
      }
      case 'prune': {
        const versions = new Map<string, number>()
        for await (const head of listDatasets(store)) {
          let n = 0
          for await (const _ of history(store, head.cid)) n++
          versions.set(head.name, n)
        }
        const candidates = [...versions].filter(([, n]) => n >= 2)
        if (candidates.length === 0) {
          // A dataset with history: one more version of an existing one, or a new one of two.
          const name = versions.size > 0 ? rng.pick([...versions.keys()]) : epoch.newDatasetName()
          for (let i = versions.has(name) ? 1 : 2; i > 0; i--) {
            const file = await epoch.makeFile(rng, epoch.newFolder())
            await importDataset(store, name, [file.path], { tileSize: 16, prefix: `p${rng.int(2, 1e6)}` })
          }
          const got = await listing(store)
          epoch.learn(got)
          epoch.model = got
          return this.#prepare(kind, epoch, rng, store)
        }
        const [name, n] = rng.pick(candidates)
        const keep = rng.int(1, n - 1)
        return {
          kind,
          variant: `keep ${keep}`,
          args: ['prune', name, '--keep', String(keep)],
          damaged: false,
          expect: () => copyModel(model),
        }
      }
      case 'gc': {
        // Garbage: an unpinned image (a pack to drop) and a dataset of two entries imported in
        // one transaction, one of them removed (a pack to rewrite).
        const garbage = await epoch.makeFile(rng, epoch.newFolder())
        const { cid } = await importImage(store, garbage.path, { tileSize: 16, workers: 0 })
        epoch.images.set(cid.toString(), garbage.known)
        await unpin(store, [cid])
        const name = epoch.newDatasetName()
        const folder = epoch.newFolder()
        const kept = await epoch.makeFile(rng, folder)
        const dropped = await epoch.makeFile(rng, folder)
        await importDataset(store, name, [folder], { tileSize: 16 })
        await removeEntries(store, name, [dropped.name])
        const got = await listing(store)
        epoch.learn(got)
        if (!got.datasets.get(name)?.has(kept.name)) throw new Error(`gc preparation: ${name}/${kept.name} is missing`)
        epoch.model = got
        const step = rng.chance(0.25) ? rng.pick(['marked', 'pack-written', 'index-written', 'packs-deleted', 'done']) : undefined
        return {
          kind,
          variant: step === undefined ? 'garbage' : `step ${step}`,
          args: ['gc'],
          step,
          damaged: false,
          expect: () => copyModel(got),
        }
      }
      case 'car-import': {
        const asDataset = rng.chance(0.5)
        const folder = epoch.newFolder()
        const car = join(folder, 'export.car')
        if (asDataset) {
          const files: MadeFile[] = []
          for (let i = rng.int(2, 4); i > 0; i--) files.push(await epoch.makeFile(rng, folder))
          const sourceName = epoch.newDatasetName()
          const result = await importDataset(epoch.carSource, sourceName, [folder], { tileSize: Number(tileSize) })
          await writeChunks(car, exportCar(epoch.carSource, result.head!))
          const source = await listing(epoch.carSource)
          const entries = source.datasets.get(sourceName)!
          for (const [entry, cid] of entries) epoch.images.set(cid, epoch.knownByName(entry)!)
          const name = epoch.newDatasetName()
          return {
            kind,
            variant: 'dataset',
            args: ['car', 'import', car, '--name', name],
            damaged: false,
            expect() {
              const next = copyModel(model)
              next.datasets.set(name, new Map(entries))
              return next
            },
          }
        }
        const file = await epoch.makeFile(rng, folder)
        const { cid } = await importImage(epoch.carSource, file.path, { tileSize: Number(tileSize), pyramid: rng.chance(0.5), workers: 0 })
        epoch.images.set(cid.toString(), file.known)
        await writeChunks(car, exportCar(epoch.carSource, cid))
        return {
          kind,
          variant: 'image',
          args: ['car', 'import', car],
          damaged: false,
          expect() {
            const next = copyModel(model)
            next.pins.set(cid.toString(), file.name)
            return next
          },
        }
      }
      case 'repair': {
        const step = rng.chance(0.25) ? rng.pick(['scanned', 'index-written', 'committed', 'done']) : undefined
        const variant = rng.chance(0.6) ? 'index' : 'log'
        if (variant === 'index') {
          const live = [...store.state.packs.keys()].sort()
          const pack = rng.pick(live)
          await store.driver.delete(`packs/${pack}.idx`)
          return {
            kind,
            variant: `index${step === undefined ? '' : `, step ${step}`}`,
            args: ['repair'],
            step,
            damaged: true,
            expect: () => copyModel(model),
          }
        }
        const keys: string[] = []
        for await (const { key } of store.driver.list('log/')) keys.push(key)
        for await (const { key } of store.driver.list('checkpoints/')) keys.push(key)
        for (const key of keys) await store.driver.delete(key)
        return {
          kind,
          variant: `log${step === undefined ? '' : `, step ${step}`}`,
          args: ['repair'],
          step,
          damaged: true,
          logLost: true,
          // The repaired store's roots: at least the model's (labels become "recovered"). A
          // dataset's reference comes back under the name its versions record: a dataset
          // imported from a CAR with --name comes back under its first name.
          expect(_output, now) {
            const renamed = copyModel(model)
            for (const [name, entries] of model.datasets) {
              if (now.datasets.has(name)) continue
              const same = [...now.datasets].find(
                ([other, have]) =>
                  !model.datasets.has(other) &&
                  compareModels(
                    { pins: new Map(), datasets: new Map([['x', entries]]) },
                    { pins: new Map(), datasets: new Map([['x', have]]) },
                  ).length === 0,
              )
              if (same !== undefined) {
                renamed.datasets.delete(name)
                renamed.datasets.set(same[0], entries)
              }
            }
            const missing = compareModels(renamed, now).filter((line) => !line.endsWith('is unexpected'))
            if (missing.length > 0) return `after the repair of a lost log: ${missing.join('; ')}`
            return copyModel(now)
          },
        }
      }
      case 'upload': {
        const file = await epoch.makeFile(rng, epoch.newFolder())
        const pyramid = rng.chance(0.5)
        return {
          kind,
          variant: pyramid ? 'pyramid' : 'image',
          args: [`name=${file.name}&tileSize=${tileSize}&pyramid=${pyramid}`],
          damaged: false,
          upload: { path: file.path },
          expect(output) {
            const { cid } = JSON.parse(output) as { cid: string }
            epoch.images.set(cid, file.known)
            const next = copyModel(model)
            next.pins.set(cid, file.name)
            return next
          },
        }
      }
    }
  }

  /**
   * Runs the plan's command and kills it at `kill` (undefined: let it finish, or kill itself at
   * its step): after a delay, or `delayMs` after the first record it commits appears in the log
   * (watched through `watch`, whose state was read before the command started). Returns how it
   * ended, what it printed (an upload: the response body) and when it was killed.
   */
  async execute(
    epoch: Epoch,
    plan: Plan,
    kill: Sampled | undefined,
    watch?: { readonly driver: ObjectDriver; readonly gen: number },
  ): Promise<{ exit: Exit; killed: boolean; killedAtMs?: number; line: string }> {
    if (plan.upload !== undefined) {
      const { proc, url } = await this.serve(epoch.location)
      const started = performance.now()
      const posted = post(`${url}/images?${plan.args[0]}`, plan.upload.path)
      const settled = posted.then(
        () => {},
        () => {},
      )
      if (kill === undefined) await settled
      const now = kill !== undefined && (await this.#moment(kill, settled, watch))
      const killedAtMs = now ? performance.now() - started : undefined
      proc.child.kill(now ? 'SIGKILL' : 'SIGTERM')
      await proc.exit
      const response = await posted.catch((error: Error) => ({ status: 0, body: error.message }))
      const ms = performance.now() - started
      const line = `${proc.line}  &&  curl -X POST --data-binary @${plan.upload.path} '${url}/images?${plan.args[0]}'`
      const ok = response.status === 200 || response.status === 201
      return {
        exit: {
          code: ok ? 0 : 1,
          signal: now ? 'SIGKILL' : null,
          stdout: response.body,
          stderr: ok ? '' : `HTTP ${response.status}: ${response.body}`,
          ms,
        },
        killed: now,
        ...(killedAtMs === undefined ? {} : { killedAtMs }),
        line,
      }
    }
    const started = performance.now()
    const proc = this.cli(
      epoch.location,
      plan.args,
      plan.step === undefined || kill !== undefined ? {} : { TESSERA_TEST_KILL_AT: plan.step },
    )
    let killedAtMs: number | undefined
    if (kill !== undefined && (await this.#moment(kill, proc.exit, watch))) {
      killedAtMs = performance.now() - started
      proc.child.kill('SIGKILL')
    }
    const exit = await proc.exit
    const killed = exit.signal === 'SIGKILL'
    return { exit, killed, ...(killed && killedAtMs !== undefined ? { killedAtMs } : {}), line: proc.line }
  }

  /** Waits for the moment to kill; false if `ended` settles first. */
  async #moment(kill: Sampled, ended: Promise<unknown>, watch?: { readonly driver: ObjectDriver; readonly gen: number }): Promise<boolean> {
    let over = false
    void ended.then(() => {
      over = true
    })
    if (kill.phase === 'commit' && watch !== undefined) {
      // The first record after the state read before the command started: the command's commit.
      const after = `log/${String(watch.gen).padStart(12, '0')}.json`
      const every = this.backend === 's3' ? 25 : 1
      for (;;) {
        if (over) return false
        let seen = false
        for await (const _ of watch.driver.list('log/', { startAfter: after })) {
          seen = true
          break
        }
        if (seen) break
        await sleep(every)
      }
    }
    if (kill.delayMs > 0) await Promise.race([ended, sleep(kill.delayMs)])
    return !over
  }

  /** Runs the plan to its end (calibration): its duration, and the model it leads to. */
  async calibrate(epoch: Epoch, plan: Plan): Promise<string[]> {
    const { exit } = await this.execute(epoch, { ...plan, step: undefined }, undefined)
    if (exit.code !== 0) return [`calibration: ${plan.kind} exited ${exit.code}: ${exit.stderr.trim()}`]
    this.measured(plan.kind, exit.ms)
    const store = await this.open(epoch.location)
    try {
      const now = await listing(store)
      const next = plan.expect(exit.stdout, now)
      if (typeof next === 'string') return [`calibration: ${next}`]
      epoch.model = next
      return compareModels(next, now).map((line) => `calibration: ${plan.kind}: ${line}`)
    } finally {
      await store.close()
    }
  }

  /** One kill round; returns its problems (empty: passed). */
  async round(epoch: Epoch, plan: Plan, kill: Sampled | undefined, rng: Rng): Promise<RoundResult> {
    const problems: string[] = []
    const before = copyModel(epoch.model)
    const targets = epoch.committed(before)
    const fresh = await this.open(epoch.location)
    const genBefore = fresh.state.gen
    let afterCommit = false
    let landed: number | undefined
    const readers = new Readers([epoch.reader, fresh], targets, new Rng(mix(rng.int(0, 2 ** 31), 7)), this.pauseMs, this.pool)
    readers.start()
    let line = ''
    let killed = false
    let finished = false
    const notes: string[] = []
    try {
      // 1. The command, killed.
      const run = await this.execute(epoch, plan, kill, { driver: fresh.driver, gen: genBefore })
      line = run.line
      killed = run.killed
      finished = !killed
      if (!killed) {
        if (run.exit.code !== 0)
          problems.push(`the command failed on its own (exit ${run.exit.code ?? run.exit.signal}): ${run.exit.stderr.trim().slice(-500)}`)
        else {
          notes.push(`finished in ${Math.round(run.exit.ms)} ms before the kill`)
          if (plan.upload === undefined) this.measured(plan.kind, run.exit.ms)
        }
      } else {
        const store = await this.open(epoch.location).catch(() => undefined)
        afterCommit = store !== undefined && store.state.gen > genBefore
        await store?.close()
        notes.push(afterCommit ? 'killed after a commit' : 'killed before any commit')
      }
      // 2. verify --all, unless the store is damaged until the rerun.
      if (!plan.damaged) {
        const verify = await this.run(epoch.location, ['verify', '--all'])
        if (verify.code !== 0 || verify.stderr !== '')
          problems.push(`verify --all after the kill: exit ${verify.code}: ${verify.stderr.trim().slice(-1500)}`)
      }
      // 3. Everything committed before crops exactly; whatever is listed now is known and crops exactly.
      if (!plan.logLost || !killed) {
        const store = await this.open(epoch.location)
        try {
          for (const [cid, known] of targets)
            problems.push(...(await exactProblems(store, cid, known, `${known.name}, committed before the kill`)))
          if (!plan.logLost) {
            const now = await listing(store)
            problems.push(...epoch.learn(now))
            for (const [cid, known] of epoch.committed(now)) {
              if (!targets.some(([seen]) => seen === cid))
                problems.push(...(await exactProblems(store, cid, known, `${known.name}, listed after the kill`)))
            }
          }
        } finally {
          await store.close()
        }
      }
      // 4. The command again, to its end.
      const rerun = await this.execute(epoch, { ...plan, step: undefined }, undefined)
      let output = rerun.exit.stdout
      if (rerun.exit.code !== 0) {
        if (plan.rerunMayFail?.test(rerun.exit.stderr)) notes.push('rerun: already done')
        else problems.push(`the rerun failed (exit ${rerun.exit.code ?? rerun.exit.signal}): ${rerun.exit.stderr.trim().slice(-800)}`)
        output = ''
      } else {
        this.measured(plan.kind, rerun.exit.ms)
        if (run.killedAtMs !== undefined) landed = run.killedAtMs / rerun.exit.ms
      }
      if (plan.damaged) {
        const verify = await this.run(epoch.location, ['verify', '--all'])
        if (verify.code !== 0 || verify.stderr !== '')
          problems.push(`verify --all after the rerun: exit ${verify.code}: ${verify.stderr.trim().slice(-1500)}`)
      }
      // 5. The store holds what the model says.
      if (problems.length === 0) {
        const store = await this.open(epoch.location)
        try {
          const now = await listing(store)
          const next = plan.expect(output, now)
          if (typeof next === 'string') problems.push(next)
          else {
            problems.push(...epoch.learn(now))
            problems.push(...compareModels(next, now))
            epoch.model = next
          }
          if (plan.kind === 'prune' && problems.length === 0) {
            const name = plan.args[1]!
            const keep = Number(plan.args[3])
            const head = [...(await collect(listDatasets(store)))].find((h) => h.name === name)
            let n = 0
            if (head !== undefined) for await (const _ of history(store, head.cid)) n++
            if (n !== keep) problems.push(`${name} has ${n} versions after prune --keep ${keep}`)
          }
        } finally {
          await store.close()
        }
      }
    } finally {
      await readers.stop()
      await fresh.close().catch(() => {})
    }
    this.crops += readers.crops
    problems.push(...readers.wrong.map((label) => `WRONG PIXELS from a reader: ${label}`))
    if (readers.errors.length > 0) {
      this.codedErrors += readers.errors.length
      const uncoded = readers.errors.filter((error) => error.includes('NO CODE'))
      if (!plan.damaged) problems.push(...readers.errors.slice(0, 5).map((error) => `a reader failed: ${error}`))
      else problems.push(...uncoded.slice(0, 5).map((error) => `a reader failed without a code: ${error}`))
    }
    // A reader that stayed open across a lost log holds generations the new log reuses: reopen it.
    if (plan.logLost) {
      await epoch.reader.close().catch(() => {})
      epoch.reader = await this.open(epoch.location)
    }
    // 6. Two collections: the first takes the killed command's orphans, the second finds nothing;
    // no object is left that the state does not name; everything still crops exactly.
    if (problems.length === 0) problems.push(...(await this.collected(epoch)))
    const summary = [`${readers.crops} crops${readers.errors.length > 0 ? ` (${readers.errors.length} coded errors)` : ''}`, ...notes].join(
      ', ',
    )
    return { problems, line, killed, afterCommit, landed, finished, summary }
  }

  async collected(epoch: Epoch): Promise<string[]> {
    const problems: string[] = []
    const store = await this.open(epoch.location)
    try {
      const first = await collectGarbage(store)
      const second = await collectGarbage(store)
      const { orphanPacks, packsDeleted, packsRewritten, deletedBlocks } = second
      if (orphanPacks + packsDeleted + packsRewritten + deletedBlocks > 0) {
        problems.push(
          `a second collection still found work: ${JSON.stringify({ orphanPacks, packsDeleted, packsRewritten, deletedBlocks })} (first: ${JSON.stringify(first)})`,
        )
      }
      await store.refresh()
      const named = new Set([...store.state.packs.keys(), ...store.state.dropped.keys()])
      const alive = new Set((await store.leases()).filter((lease) => isRunning(lease.pid)).map((lease) => lease.txn))
      for await (const { key } of store.driver.list('packs/')) {
        const pack = key.slice('packs/'.length).replace(/\.(pack|idx)$/, '')
        if (!named.has(pack) && !alive.has(pack.replace(/-\d+$/, ''))) problems.push(`${key}: left after two collections`)
      }
      // A dead writer's lease that outlives two collections: its packs are live (it was killed
      // after its commit) or it has none (killed before its first): a leftover, not a failure.
      // Packs of its that the state does not name are failures above.
      for await (const { key } of store.driver.list('txns/')) {
        if (!alive.has(key.slice('txns/'.length).replace(/\.json$/, ''))) this.deadLeases.add(`${epoch.label}: ${key}`)
      }
      if ((await store.driver.stat('gc.lock')) !== undefined) problems.push('gc.lock left after two collections')
      const verified = await verifyAll(store)
      problems.push(...verified.problems.map((p) => `verifyAll after two collections: ${p.cid}: ${p.code}: ${p.message}`))
      for (const [cid, known] of epoch.committed())
        problems.push(...(await exactProblems(store, cid, known, `${known.name}, after two collections`)))
      if (this.backend === 'disk') {
        for (const path of await findTmp(epoch.location)) this.storeTmpFiles.add(`${epoch.label}: ${path.slice(epoch.location.length + 1)}`)
      }
    } catch (error) {
      const { code, message } = error as Error & { code?: string }
      problems.push(`collections: ${code ?? 'no code'}: ${message}`)
    } finally {
      await store.close()
    }
    return problems
  }

  // --- the run -----------------------------------------------------------------------------

  async main(): Promise<KillChaosSummary> {
    const started = performance.now()
    if (cliIsStale()) this.log('kill: WARNING: dist/bundle is older than src/: the commands run the old build (npm run build)')
    this.dir = await mkdtemp(join(tmpdir(), 'tessera-chaos-kill-'))
    await mkdir(this.tmp, { recursive: true })
    if (this.backend === 's3') {
      const base = process.env.TESSERA_TEST_S3
      if (base === undefined || base === '')
        throw new Error('--store s3 needs TESSERA_TEST_S3 (eval "$(bash scripts/s3-up.sh /tmp/tessera-s3 17480)")')
      this.#s3Base = `${base.replace(/\/+$/, '')}/chaos-kill-${Date.now()}-${randomBytes(4).toString('hex')}`
    }
    this.log(`kill: seed ${this.seed}, ${this.backend} store, files in ${this.dir}`)
    try {
      await this.#calibration()
      const epochs = this.options.epoch === undefined ? Math.ceil(this.options.rounds / KINDS.length) : 1
      for (let e = 0; e < epochs; e++) {
        const index = this.options.epoch ?? e
        const left = this.options.epoch === undefined ? this.options.rounds - e * KINDS.length : (this.options.upto ?? KINDS.length)
        await this.#epoch(index, Math.min(KINDS.length, left))
      }
    } finally {
      this.killAll()
      await this.pool.close()
      if (this.backend === 's3' && !this.options.keep && this.failures.length === 0) await deletePrefix(this.#s3Base).catch(() => {})
    }
    const tmpdirFiles = await readdir(this.tmp).catch(() => [] as string[])
    for (const kind of KINDS) {
      const list = [...(this.#durations.get(kind) ?? [])].sort((a, b) => a - b)
      this.counts[kind].medianMs = Math.round(list[Math.floor(list.length / 2)] ?? 0)
    }
    const killPoints = KINDS.reduce((sum, kind) => sum + this.counts[kind].killed, 0)
    const summary: KillChaosSummary = {
      seed: this.seed,
      store: this.backend,
      rounds: this.rounds,
      killPoints,
      finishedBeforeKill: KINDS.reduce((sum, kind) => sum + this.counts[kind].finished, 0),
      perCommand: this.counts,
      crops: { total: this.crops, codedErrors: this.codedErrors },
      failures: this.failures,
      leftovers: { storeTmpFiles: [...this.storeTmpFiles], deadLeases: [...this.deadLeases], tmpdirFiles },
      seconds: Math.round((performance.now() - started) / 100) / 10,
    }
    if (this.failures.length === 0 && !this.options.keep) await rm(this.dir, { recursive: true, force: true })
    return summary
  }

  async #calibration(): Promise<void> {
    const t0 = performance.now()
    const epoch = await this.newEpoch('calibration', mix(this.seed, 0))
    try {
      for (let i = 0; i < 2; i++) this.measured('startup', (await this.run(epoch.location, ['ls'])).ms)
      const rng = new Rng(mix(this.seed, 0x5eed))
      for (const kind of KINDS) {
        const problems = await this.calibrate(epoch, await this.prepare(kind, epoch, rng))
        if (problems.length > 0) throw new Error(problems.join('; '))
      }
    } finally {
      await this.closeEpoch(epoch, false)
    }
    const estimates = [...this.#estimates].map(([kind, ms]) => `${kind} ${Math.round(ms)}`).join(', ')
    this.log(`kill: calibrated in ${((performance.now() - t0) / 1000).toFixed(1)} s (ms: ${estimates})`)
  }

  async #epoch(index: number, rounds: number): Promise<void> {
    const seed = mix(this.seed, index + 1)
    const epoch = await this.newEpoch(index, seed)
    let keep = false
    try {
      // Readers and estimates drift with the machine's load: measure the startup again.
      this.measured('startup', (await this.run(epoch.location, ['ls'])).ms)
      const kinds = new Rng(mix(seed, 0)).shuffle(KINDS)
      for (let r = 0; r < rounds; r++) {
        const kind = kinds[r]!
        const rng = new Rng(mix(seed, r + 1))
        const at = `${epoch.label}.r${r + 1}`
        let plan: Plan | undefined
        let kill: Sampled | undefined
        let result: RoundResult
        try {
          plan = await this.prepare(kind, epoch, rng)
          const forced =
            this.options.delayMs !== undefined && this.options.epoch === index && r + 1 === rounds ? this.options.delayMs : undefined
          // A delay (sampled), or a fifth of the time a few ms after the command's first commit;
          // a quarter of the gc and repair rounds kill themselves at a named step instead.
          if (forced !== undefined) kill = { ...this.sample(kind, rng), delayMs: forced }
          else if (plan.step !== undefined) kill = undefined
          else if (!plan.logLost && rng.chance(0.2)) kill = { phase: 'commit', delayMs: rng.int(0, 2) }
          else kill = this.sample(kind, rng)
          result = await this.round(epoch, plan, kill, rng)
        } catch (error) {
          result = {
            problems: [`the round threw: ${(error as Error).stack ?? error}`],
            line: '',
            killed: false,
            afterCommit: false,
            finished: false,
            summary: '',
          }
        }
        this.rounds++
        const count = this.counts[kind]
        count.rounds++
        const variant = plan?.variant ?? '?'
        count.variants[variant.replace(/^(index|log), step .*/, '$1')] =
          (count.variants[variant.replace(/^(index|log), step .*/, '$1')] ?? 0) + 1
        const phase: Phase = kill === undefined ? 'step' : kill.phase
        if (plan?.padded !== undefined) count.checkpoints++
        if (result.killed) {
          count.killed++
          if (result.afterCommit) count.afterCommit++
          if (result.landed !== undefined) count.landed[LANDED[Math.min(4, Math.floor(result.landed * 4))]!]++
          count.phases[phase]++
        } else if (result.finished) count.finished++
        const how =
          kill === undefined
            ? `at step ${plan?.step}`
            : kill.phase === 'commit'
              ? `${kill.delayMs} ms after its first commit`
              : `after ${kill.delayMs} ms (${kill.phase})`
        const outcome = result.killed ? `killed ${how}` : `not killed (${how})`
        const prefix = `${at} [--seed ${this.seed} --epoch ${index} --upto ${r + 1}] ${kind} (${variant}${plan?.padded === undefined ? '' : ', at a checkpoint'}): ${outcome}`
        if (result.problems.length === 0) {
          this.log(`${prefix}: ok; ${result.summary}`)
          continue
        }
        keep = true
        const timed = kill !== undefined && kill.phase !== 'commit' ? ` --delay-ms ${kill.delayMs}` : ''
        const reproduce = `node --import tsx scripts/chaos/kill.ts --seed ${this.seed} --store ${this.backend} --epoch ${index} --upto ${r + 1}${timed}`
        this.failures.push({
          round: at,
          kind,
          variant,
          command: result.line,
          kill: how,
          reproduce,
          store: epoch.location,
          problems: result.problems,
        })
        this.log(`${prefix}: FAILED; ${result.summary}`)
        for (const problem of result.problems.slice(0, 12)) this.log(`    ${problem}`)
        if (result.problems.length > 12) this.log(`    ... ${result.problems.length - 12} more`)
        this.log(`    command:   ${result.line}`)
        this.log(`    store:     ${epoch.location} (kept)`)
        this.log(`    reproduce: ${reproduce}`)
        // The store is in a state the model no longer describes: the next epoch starts afresh.
        break
      }
    } finally {
      this.killAll()
      await this.closeEpoch(epoch, keep)
    }
  }
}

/** Runs the kill part of the chaos suite: see the module comment. */
export async function killChaos(options: KillChaosOptions): Promise<KillChaosSummary> {
  return new KillChaos(options).main()
}

/** The summary in a few lines. */
export function formatSummary(summary: KillChaosSummary): string {
  const lines = [
    `${summary.killPoints} kill points in ${summary.rounds} rounds (${summary.finishedBeforeKill} commands finished before their kill), ${summary.store} store, seed ${summary.seed}, ${summary.seconds} s; ${summary.crops.total} reader crops (${summary.crops.codedErrors} coded errors); ${summary.failures.length} failures`,
  ]
  for (const kind of KINDS) {
    const c = summary.perCommand[kind]
    const phases = PHASES.filter((phase) => c.phases[phase] > 0)
      .map((phase) => `${phase} ${c.phases[phase]}`)
      .join(', ')
    const variants = Object.entries(c.variants)
      .map(([name, n]) => `${name} ${n}`)
      .join(', ')
    const landed = LANDED.filter((bucket) => c.landed[bucket] > 0)
      .map((bucket) => `${bucket} ${c.landed[bucket]}`)
      .join(', ')
    lines.push(
      `  ${kind.padEnd(15)} ${String(c.killed).padStart(4)} killed / ${c.rounds} rounds, ${c.afterCommit} after a commit, ${c.checkpoints} at a checkpoint; aimed: ${phases}; landed in the rerun's time: ${landed}; ${variants}; median run ${c.medianMs} ms`,
    )
  }
  const { storeTmpFiles, deadLeases, tmpdirFiles } = summary.leftovers
  if (storeTmpFiles.length > 0 || deadLeases.length > 0 || tmpdirFiles.length > 0) {
    const some = (list: string[]) => (list.length > 0 ? ` (${list.slice(0, 3).join(', ')}${list.length > 3 ? ', ...' : ''})` : '')
    lines.push(
      `  leftovers (not failures): ${storeTmpFiles.length} .tmp- files in stores after gc${some(storeTmpFiles)}; ${deadLeases.length} leases of killed writers that no gc deletes${some(deadLeases)}; ${tmpdirFiles.length} files in the commands' TMPDIR${some(tmpdirFiles)}`,
    )
  }
  for (const failure of summary.failures)
    lines.push(
      `  FAILED ${failure.round} ${failure.kind} (${failure.variant}): ${failure.problems[0]}\n    reproduce: ${failure.reproduce}`,
    )
  return lines.join('\n')
}

// ---------------------------------------------------------------------------------------------
// Small helpers

/**
 * Commits records (a reference `chaos/pad` set to one of two tiny raw blocks, by turns) until
 * the next record is a multiple of 64. Returns how many.
 */
async function padLog(store: ObjectBlockStore): Promise<number> {
  await store.refresh()
  const blocks = ['a', 'b'].map((text) => rawBlock(new TextEncoder().encode(`tessera chaos: log padding ${text}`)))
  let n = 0
  while ((store.state.gen + 1) % CHECKPOINT_EVERY !== 0) {
    const txn = await store.begin()
    if (n === 0) for (const block of blocks) await txn.put(block.cid, block.bytes)
    txn.setRef('chaos/pad', blocks[n % 2]!.cid)
    await txn.commit()
    n++
  }
  return n
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const item of items) out.push(item)
  return out
}

function isRunning(pid: number | undefined): boolean {
  if (typeof pid !== 'number') return false
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

async function writeChunks(path: string, chunks: AsyncIterable<Uint8Array>): Promise<void> {
  await writeFile(path, await raw(chunks))
}

/** Every `.tmp-` file under `dir`. */
async function findTmp(dir: string): Promise<string[]> {
  const out: string[] = []
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.name.includes('.tmp-')) out.push(join(entry.parentPath, entry.name))
  }
  return out
}

/** POSTs the file's bytes; resolves with the status and body. */
async function post(url: string, path: string): Promise<{ status: number; body: string }> {
  const body = await readFile(path)
  return new Promise((resolve, reject) => {
    const headers = { 'content-length': body.length, 'content-type': 'application/octet-stream' }
    const req = request(url, { method: 'POST', headers }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        text += chunk
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

/** Deletes every object under an s3:// prefix (a run's stores). */
async function deletePrefix(url: string): Promise<void> {
  if (parseS3Url(url).prefix === '') throw new Error(`Refusing to empty the whole bucket of ${url}`)
  const driver = await openS3Driver(url, process.env)
  try {
    const keys: string[] = []
    for await (const { key } of driver.list('')) keys.push(key)
    let next = 0
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < keys.length) await driver.delete(keys[next++]!)
      }),
    )
  } finally {
    await driver.close()
  }
}

// ---------------------------------------------------------------------------------------------
// On its own: node --import tsx scripts/chaos/kill.ts --seed S --rounds N [--store disk|s3]

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({
    options: {
      seed: { type: 'string' },
      rounds: { type: 'string', default: '48' },
      store: { type: 'string', default: 'disk' },
      epoch: { type: 'string' },
      upto: { type: 'string' },
      'delay-ms': { type: 'string' },
      keep: { type: 'boolean', default: false },
      json: { type: 'string' },
    },
  })
  const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed)
  if (!Number.isSafeInteger(seed) || (values.store !== 'disk' && values.store !== 's3')) {
    console.error('usage: kill.ts [--seed S] [--rounds N] [--store disk|s3] [--epoch E --upto R [--delay-ms D]] [--keep] [--json FILE]')
    process.exit(2)
  }
  const summary = await killChaos({
    seed,
    rounds: Number(values.rounds),
    store: values.store,
    ...(values.epoch === undefined ? {} : { epoch: Number(values.epoch) }),
    ...(values.upto === undefined ? {} : { upto: Number(values.upto) }),
    ...(values['delay-ms'] === undefined ? {} : { delayMs: Number(values['delay-ms']) }),
    keep: values.keep,
  })
  console.log(formatSummary(summary))
  if (values.json !== undefined) await writeFile(values.json, `${JSON.stringify(summary, null, 2)}\n`)
  process.exitCode = summary.failures.length === 0 ? 0 : 1
}
