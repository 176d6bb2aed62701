/**
 * The ML sampling workload: N seeded random crops (spec/sample.md) of the benchmark image,
 * cropped by Tessera from its store and by sharp/libvips from the tiled deflate TIFF, the same
 * regions for both, in process and with 1 and 2 workers. Reports crops per second.
 *
 *   node --import tsx bench/sample.ts [--data bench/data] [--count 400] [--size 224] [--seed 1] [--align] [--repeat 3] [--no-warm]
 *
 * Workers each crop every n-th region (i mod n = w), from the moment all are ready; each first
 * crops a few other regions so that timed crops run on warm code. Both sources are read once
 * beforehand so that they are in the page cache. sharp runs with cache(false) and
 * concurrency(1) (one libvips thread per crop): a worker is one core's worth of work.
 *
 * Tessera is measured two ways with workers:
 * - "blocks from main thread": the main thread opens the store and serves blocks by CID (index
 *   lookup, positional read, SHA-256 verification) to worker threads, which do the rest (zstd,
 *   predictor, cropping); the main thread's busy share is printed.
 * - "own open of the store": each worker opens the store itself (readers take no lock,
 *   spec/store.md), with threads and with processes.
 *
 * Machines here are shared and noisy: read the ratios, not the absolute numbers.
 */
import { type ChildProcess, fork } from 'node:child_process'
import { createReadStream } from 'node:fs'
import { readdir, stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads'
import { CID } from 'multiformats/cid'
import sharp from 'sharp'
import type { Region } from '../src/format/interface.js'
import { type BlockStore, openImage, openStore } from '../src/image.js'
import { planSamples, type RegionDecoder, sampleCrops } from '../src/sample.js'
import type { AbortOptions, BlockWriter, Pin } from '../src/store/interface.js'

/** Crops done before each timed run (other regions than the timed ones). */
const WARMUP = 20
const WORKER_ENV = 'TESSERA_SAMPLE_BENCH_WORKER'

type Engine = 'tessera-proxy' | 'tessera-replica' | 'sharp'
type Kind = 'thread' | 'process'

/** What a worker is told. */
interface WorkerInit {
  readonly engine: Engine
  /** tessera: the image root CID; sharp: the TIFF's path. */
  readonly source: string
  /** tessera-replica: the store directory this worker opens. */
  readonly store?: string
  readonly regions: readonly Region[]
  readonly warmup: readonly Region[]
}

/** Messages between the main thread and a worker. */
type ToWorker =
  | { type: 'init'; init: WorkerInit }
  | { type: 'go' }
  | { type: 'blocks'; id: number; blocks: Uint8Array[] }
  | { type: 'error'; id: number; message: string }
type ToMain = { type: 'ready' } | { type: 'get'; id: number; cids: Uint8Array[] } | { type: 'done'; bytes: number }

/** Either end of a worker's channel: a MessagePort or a child process's IPC. */
interface Channel {
  post(message: ToMain, transfer?: ArrayBuffer[]): void
  on(listener: (message: ToWorker) => void): void
}

async function runMain(): Promise<void> {
  const { values } = parseArgs({
    options: {
      data: { type: 'string', default: 'bench/data' },
      count: { type: 'string', default: '400' },
      size: { type: 'string', default: '224' },
      seed: { type: 'string', default: '1' },
      align: { type: 'boolean', default: false },
      repeat: { type: 'string', default: '3' },
      'no-warm': { type: 'boolean', default: false },
    },
  })
  const data = resolve(values.data!)
  const tiff = join(data, 'big-tiled-deflate.tif')
  const storeDir = join(data, 'bench-store')
  const size = Number(values.size)
  const count = Number(values.count)
  const seed = /^\d+$/.test(values.seed!) ? Number(values.seed) : values.seed!
  const align = values.align === true
  const repeat = Number(values.repeat)

  // Each worker opens the store itself: readers take no lock.
  const replicas = [storeDir, storeDir]
  const store = await openStore(storeDir, { create: false })
  try {
    let root: CID | undefined
    for await (const pin of store.pins()) root ??= pin.cid
    if (root === undefined) throw new Error('The bench store has no image: run `npm run bench` first')
    const image = await openImage(store, root)
    const { width, height, tileSize } = image.manifest
    const plan = (seed: number | string, count: number) =>
      [...planSamples([{ width, height, tileSize }], { size, count, seed, align })].map((p) => p.region)
    const regions = plan(seed, count)
    const warmup = plan('warm-up', WARMUP)
    console.log(`image ${root}: ${width}x${height} ${image.manifest.colorModel}, ${tileSize}-pixel tiles`)
    console.log(`${count} samples of ${size}x${size}, seed ${JSON.stringify(seed)}${align ? ', aligned' : ''}; sharp reads ${tiff}`)

    sharp.cache(false)
    sharp.concurrency(1)
    if (values['no-warm'] !== true) {
      const started = performance.now()
      for (const path of [tiff, join(storeDir, 'packs')]) await warm(path)
      console.log(`page cache warmed in ${((performance.now() - started) / 1000).toFixed(1)} s`)
    }

    // The same pixels on both sides (the store was imported from big.png, the TIFF made from it).
    let identical = 0
    let i = 0
    for await (const sample of sampleCrops(store, [root], { size, count: 5, seed, align })) {
      if (Buffer.compare(sample.data, await sharpCrop(tiff, regions[i++]!)) === 0) identical++
    }
    console.log(`pixels identical to sharp's for ${identical} of 5 samples checked`)

    // In process, one thread: the library as a user calls it, and sharp awaited crop by crop.
    const inProcess = {
      tessera: async () => {
        const t = performance.now()
        for await (const _ of sampleCrops(store, [root], { size, count, seed, align })) void _
        return { rate: count / ((performance.now() - t) / 1000), busy: 0 }
      },
      sharp: async () => {
        const t = performance.now()
        for (const r of regions) await sharpCrop(tiff, r)
        return { rate: count / ((performance.now() - t) / 1000), busy: 0 }
      },
    }
    for await (const _ of sampleCrops(store, [root], { size, count: WARMUP, seed: 'warm-up', align })) void _
    for (const r of warmup) await sharpCrop(tiff, r)
    // sampleCrops with a DecodePool: this thread reads payloads, pool threads verify and decode.
    const pools = new Map<number, RegionDecoder & { close(): Promise<void> }>()
    try {
      const { DecodePool } = await import('../src/crop/decode-pool.js')
      for (const threads of [1, 2]) {
        const pool = new DecodePool(threads)
        pools.set(threads, pool)
        for await (const _ of sampleCrops(store, [root], { size, count: WARMUP, seed: 'warm-up', align, decoder: pool, concurrency: 4 }))
          void _
      }
    } catch (error) {
      console.log(`no DecodePool measurement: ${String(error)}`)
    }
    const pooled = async (threads: number) => {
      const decoder = pools.get(threads)!
      const t = performance.now()
      for await (const _ of sampleCrops(store, [root], { size, count, seed, align, decoder, concurrency: 2 * threads + 2 })) void _
      return { rate: count / ((performance.now() - t) / 1000), busy: 0 }
    }

    const modes: Array<{ label: string; engine: Engine; kind: Kind }> = [
      { label: 'tessera, threads, blocks from main thread', engine: 'tessera-proxy', kind: 'thread' },
      { label: 'tessera, threads, own open of the store', engine: 'tessera-replica', kind: 'thread' },
      { label: 'tessera, processes, own open of the store', engine: 'tessera-replica', kind: 'process' },
      { label: 'sharp, threads', engine: 'sharp', kind: 'thread' },
      { label: 'sharp, processes', engine: 'sharp', kind: 'process' },
    ]
    // Every measurement `repeat` times, rounds interleaved so that a noisy spell hits all modes; medians reported.
    const runs = new Map<string, Array<{ rate: number; busy: number }>>()
    const record = (key: string, run: { rate: number; busy: number }) => runs.set(key, [...(runs.get(key) ?? []), run])
    for (let round = 0; round < repeat; round++) {
      record('tessera in process', await inProcess.tessera())
      record('sharp in process', await inProcess.sharp())
      for (const threads of pools.keys()) record(`tessera DecodePool/${threads}`, await pooled(threads))
      for (const mode of modes) {
        for (const workers of [1, 2]) {
          const source = mode.engine === 'sharp' ? tiff : root.toString()
          record(`${mode.label}/${workers}`, await runWorkers({ ...mode, workers, source, replicas, regions, warmup, store }))
        }
      }
      console.log(`round ${round + 1} of ${repeat}: ${[...runs].map(([k, v]) => `${k} ${v.at(-1)!.rate.toFixed(0)}`).join(', ')}`)
    }
    const median = (key: string, field: 'rate' | 'busy' = 'rate') => {
      const values = runs
        .get(key)!
        .map((run) => run[field])
        .sort((a, b) => a - b)
      const mid = values.length >> 1
      return values.length % 2 === 1 ? values[mid]! : (values[mid - 1]! + values[mid]!) / 2
    }
    const ourInProcess = median('tessera in process')
    const theirInProcess = median('sharp in process')
    const rates = new Map(
      modes.map((mode) => [
        mode.label,
        {
          rate: [median(`${mode.label}/1`), median(`${mode.label}/2`)],
          busy: [median(`${mode.label}/1`, 'busy'), median(`${mode.label}/2`, 'busy')],
        },
      ]),
    )
    console.log(`\nMedians of ${repeat} runs of ${count} crops each:\n`)
    for (const pool of pools.values()) await pool.close()
    const rows: string[][] = [['tessera, in process, sampleCrops on one thread', ourInProcess.toFixed(0), '', '']]
    const pooledRates = [...pools.keys()].map((threads) => median(`tessera DecodePool/${threads}`))
    if (pooledRates.length === 2) {
      const [one, two] = pooledRates as [number, number]
      rows.push(['tessera, in process, sampleCrops + DecodePool (threads)', one.toFixed(0), two.toFixed(0), ratio(two, one)])
    }
    const modeRow = (mode: (typeof modes)[number]) => {
      const { rate, busy } = rates.get(mode.label)!
      const note = mode.engine === 'tessera-proxy' ? ` (main thread busy ${pct(busy[0]!)} / ${pct(busy[1]!)})` : ''
      rows.push([`${mode.label}${note}`, rate[0]!.toFixed(0), rate[1]!.toFixed(0), ratio(rate[1]!, rate[0]!)])
    }
    for (const mode of modes.filter((m) => m.engine !== 'sharp')) modeRow(mode)
    rows.push(['sharp, in process', theirInProcess.toFixed(0), '', ''])
    for (const mode of modes.filter((m) => m.engine === 'sharp')) modeRow(mode)
    table(['crops/s', '1 worker', '2 workers', '2 / 1'], rows)

    const best = (labels: string[], w: number) => Math.max(...labels.map((l) => rates.get(l)!.rate[w]!))
    const sharpBest = (w: number) => best(['sharp, threads', 'sharp, processes'], w)
    const today = (w: number) => Math.max(rates.get('tessera, threads, blocks from main thread')!.rate[w]!, pooledRates[w] ?? 0)
    const replica = (w: number) => best(['tessera, threads, own open of the store', 'tessera, processes, own open of the store'], w)
    console.log('')
    table(
      ['tessera / sharp (sharp: best of threads, processes)', '1 worker', '2 workers'],
      [
        ['one thread, in process', ratio(ourInProcess, theirInProcess), ''],
        ['tessera today (best of DecodePool, blocks from main thread)', ratio(today(0), sharpBest(0)), ratio(today(1), sharpBest(1))],
        [
          'tessera, each worker opening the store (best of threads, processes)',
          ratio(replica(0), sharpBest(0)),
          ratio(replica(1), sharpBest(1)),
        ],
      ],
    )
  } finally {
    await store.close()
  }
}

const pct = (share: number) => `${(100 * share).toFixed(0)}%`
const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}x`

function table(header: string[], rows: string[][]): void {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)))
  const line = (r: string[]) => `| ${r.map((cell, c) => cell.padEnd(widths[c]!)).join(' | ')} |`
  console.log(`${line(header)}\n${line(widths.map((w) => '-'.repeat(w)))}`)
  for (const r of rows) console.log(line(r))
}

/** Reads a file (or every file of a directory) once, discarding the bytes. */
async function warm(path: string): Promise<void> {
  const files = (await stat(path)).isDirectory() ? (await readdir(path)).map((f) => join(path, f)) : [path]
  for (const file of files) for await (const _ of createReadStream(file, { highWaterMark: 1 << 22 })) void _
}

function sharpCrop(tiff: string, r: Region): Promise<Buffer> {
  return sharp(tiff, { limitInputPixels: false }).extract({ left: r.x, top: r.y, width: r.width, height: r.height }).raw().toBuffer()
}

/** One started worker, seen from the main thread. */
interface WorkerHandle {
  post(message: ToWorker, transfer?: ArrayBuffer[]): void
  on(listener: (message: ToMain) => void): void
  failed: Promise<never>
  stop(): Promise<void>
}

function startWorker(kind: Kind, init: WorkerInit): WorkerHandle {
  if (kind === 'thread') {
    // Worker threads do not inherit the parent's --import loaders on Node 20: register tsx in each.
    const loader = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((tsx) => { tsx.register(); return import(${JSON.stringify(import.meta.url)}) })`
    const thread = new Worker(loader, { eval: true, workerData: init })
    return {
      post: (message, transfer) => thread.postMessage(message, transfer ?? []),
      on: (listener) => thread.on('message', listener),
      failed: new Promise<never>((_, reject) => thread.on('error', reject)),
      stop: async () => void (await thread.terminate()),
    }
  }
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), [], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, [WORKER_ENV]: '1' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  child.send({ type: 'init', init } satisfies ToWorker)
  return {
    post: (message) => child.send(message),
    on: (listener) => child.on('message', (message) => listener(message as ToMain)),
    failed: new Promise<never>((_, reject) =>
      child.on('exit', (code) => {
        if (code !== 0) reject(new Error(`worker process exited with ${code}`))
      }),
    ),
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((done) => child.once('exit', done))
        child.kill()
        await exited
      }
    },
  }
}

/** Runs the workers; returns crops per second from the moment all are ready, and the main thread's busy share. */
async function runWorkers(options: {
  engine: Engine
  kind: Kind
  workers: number
  source: string
  replicas: readonly string[]
  regions: readonly Region[]
  warmup: readonly Region[]
  store: BlockStore
}): Promise<{ rate: number; busy: number }> {
  const { engine, kind, workers, regions, store } = options
  let busy = 0
  const handles = Array.from({ length: workers }, (_, w) =>
    startWorker(kind, {
      engine,
      source: options.source,
      ...(engine === 'tessera-replica' ? { store: options.replicas[w]! } : {}),
      warmup: options.warmup,
      regions: regions.filter((_, i) => i % workers === w),
    }),
  )
  const ready: Array<Promise<void>> = []
  const done: Array<Promise<void>> = []
  for (const handle of handles) {
    let onReady!: () => void
    let onDone!: () => void
    ready.push(Promise.race([new Promise<void>((resolve) => (onReady = resolve)), handle.failed]))
    done.push(Promise.race([new Promise<void>((resolve) => (onDone = resolve)), handle.failed]))
    handle.on(async (message) => {
      if (message.type === 'ready') onReady()
      else if (message.type === 'done') onDone()
      else if (message.type === 'get') {
        const t = performance.now()
        try {
          const blocks = await store.getMany(message.cids.map((bytes) => CID.decode(bytes)))
          // Small blocks may be views of a shared pool: copy those, transfer the rest.
          const owned = blocks.map((b) => (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b : b.slice()))
          handle.post(
            { type: 'blocks', id: message.id, blocks: owned },
            owned.map((b) => b.buffer as ArrayBuffer),
          )
        } catch (error) {
          handle.post({ type: 'error', id: message.id, message: String(error) })
        }
        busy += performance.now() - t
      }
    })
  }
  try {
    await Promise.all(ready)
    busy = 0
    const started = performance.now()
    for (const handle of handles) handle.post({ type: 'go' })
    await Promise.all(done)
    const seconds = (performance.now() - started) / 1000
    return { rate: regions.length / seconds, busy: busy / 1000 / seconds }
  } finally {
    await Promise.all(handles.map((handle) => handle.stop()))
  }
}

async function runWorker(channel: Channel, init: WorkerInit): Promise<void> {
  const go = new Promise<void>((resolve) => {
    channel.on((message) => {
      if (message.type === 'go') resolve()
    })
  })
  let crop: (r: Region) => Promise<number>
  let close = async () => {}
  if (init.engine === 'sharp') {
    sharp.cache(false)
    sharp.concurrency(1)
    crop = async (r) => (await sharpCrop(init.source, r)).length
  } else {
    const store = init.engine === 'tessera-proxy' ? new RemoteStore(channel) : await openStore(init.store!, { create: false })
    close = () => store.close()
    const image = await openImage(store, init.source)
    const pixel = image.manifest.channels * (image.manifest.bitsPerSample / 8)
    crop = async (r) => {
      // As sampleCrops does: the sample's bands into one buffer (or the one band as it is).
      let out: Uint8Array | undefined
      for await (const band of image.reader.bands(r)) {
        if (band.height === r.height) {
          out = band.data
          break
        }
        out ??= new Uint8Array(r.width * r.height * pixel)
        out.set(band.data, band.y * r.width * pixel)
      }
      return out!.length
    }
  }
  for (const r of init.warmup) await crop(r)
  channel.post({ type: 'ready' })
  await go
  let bytes = 0
  for (const r of init.regions) bytes += await crop(r)
  await close()
  channel.post({ type: 'done', bytes })
}

/** A read-only BlockStore that asks the main thread for blocks. */
class RemoteStore implements BlockStore {
  readonly #channel: Channel
  readonly #pending = new Map<number, { resolve: (blocks: Uint8Array[]) => void; reject: (error: Error) => void }>()
  #next = 0

  constructor(channel: Channel) {
    this.#channel = channel
    channel.on((message) => {
      if (message.type !== 'blocks' && message.type !== 'error') return
      const pending = this.#pending.get(message.id)!
      this.#pending.delete(message.id)
      if (message.type === 'blocks') pending.resolve(message.blocks)
      else pending.reject(new Error(message.message))
    })
  }

  async get(cid: CID, options?: AbortOptions): Promise<Uint8Array> {
    return (await this.getMany([cid], options))[0]!
  }

  /** The main thread verifies what it sends. */
  getManyUnsafe(cids: readonly CID[], options?: AbortOptions): Promise<Uint8Array[]> {
    return this.getMany(cids, options)
  }

  getMany(cids: readonly CID[], _options?: AbortOptions): Promise<Uint8Array[]> {
    return new Promise((resolve, reject) => {
      const id = this.#next++
      this.#pending.set(id, { resolve, reject })
      this.#channel.post({ type: 'get', id, cids: cids.map((cid) => cid.bytes) })
    })
  }

  has(): Promise<boolean> {
    throw new Error('RemoteStore is read-only')
  }
  size(): Promise<number | undefined> {
    throw new Error('RemoteStore is read-only')
  }
  begin(): Promise<BlockWriter> {
    throw new Error('RemoteStore is read-only')
  }
  pins(): AsyncIterable<Pin> {
    throw new Error('RemoteStore is read-only')
  }
  storedBytes(): Promise<number> {
    throw new Error('RemoteStore is read-only')
  }
  async close(): Promise<void> {}
}

// Last, so that every class above is initialised: this file is also each worker's entry point.
if (!isMainThread) {
  const port = parentPort!
  await runWorker(
    { post: (message, transfer) => port.postMessage(message, transfer ?? []), on: (listener) => port.on('message', listener) },
    workerData as WorkerInit,
  )
} else if (process.env[WORKER_ENV] === '1') {
  const channel: Channel = {
    post: (message) => process.send!(message),
    on: (listener) => process.on('message', listener as (m: unknown) => void),
  }
  const init = await new Promise<WorkerInit>((resolve) =>
    process.once('message', (message) => resolve((message as Extract<ToWorker, { type: 'init' }>).init)),
  )
  await runWorker(channel, init)
  process.disconnect()
} else {
  await runMain()
}
