/**
 * `npm run bench:dedup`: the screenshot archive (issue 11). Renders a series of desktop
 * screenshots with bench/make-screens.ts (once, into bench/data/screens), then measures, in
 * one run:
 *
 * - the PNG files' bytes, and a 512x512 crop of a random frame decoded from its PNG;
 * - every frame's raw pixels in one `zstd --long=31 -12` stream (no random access at all):
 *   the information in the archive, as the issue's yardstick;
 * - Tessera with the dataset defaults (`tessera import DIR --dataset`: delta tiles on,
 *   DATASET_DEFAULTS) and the same import with `--no-deltas`: everything on disk in the
 *   store's directory (packs, indexes, log: manifests, index blocks and dataset trees
 *   included), frames/s and peak RSS of the `tessera import` process (time(1)), and crops of
 *   the same random regions of the same random frames, in process (median = p50, and p90);
 * - optionally (`--chain`) the script a user would write: each frame a PNG of its difference
 *   from the previous one when few pixels changed, else a full PNG.
 *
 * Targets (issue 11) are printed with each figure and whether it is met. Timings are medians
 * (the machine is shared and noisy).
 *
 *   npm run bench:dedup [-- --frames 400] [--seed 7] [--crops 100] [--jobs 2] [--chain] [--data bench/data]
 *                       [--series DIR]   (PNG frames made elsewhere, e.g. by another generator)
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import sharp from 'sharp'
import { datasetUsage, type Usage } from '../src/dataset/accounting.js'
import { datasetHead, resolveImage } from '../src/dataset/dataset.js'
import type { Region } from '../src/format/interface.js'
import { cropImage, openImage } from '../src/image.js'
import { DATASET_DEFAULTS } from '../src/import/options.js'
import { openStoreAt as openPackStore } from '../src/store/open.js'
import { median, quantile, random } from './lib.js'
import { makeScreens } from './make-screens.js'

const { values } = parseArgs({
  options: {
    data: { type: 'string', default: 'bench/data' },
    frames: { type: 'string', default: '400' },
    seed: { type: 'string', default: '7' },
    crops: { type: 'string', default: '100' },
    jobs: { type: 'string', default: '2' },
    chain: { type: 'boolean', default: false },
    // A frame of the PNG delta chain is a delta when fewer than this fraction of its pixels changed.
    'delta-threshold': { type: 'string', default: '0.25' },
    // Another series instead of make-screens.ts' (a directory of PNG frames, in name order).
    series: { type: 'string' },
  },
})

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(2)} MiB`
const mb = (bytes: number) => `${(bytes / 1e6).toFixed(2)} MB`
const ms = (seconds: number) => `${(seconds * 1000).toFixed(1)} ms`

/** Bytes of every file under `dir`: everything the store keeps on disk. */
function diskBytes(dir: string): number {
  let sum = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    sum += entry.isDirectory() ? diskBytes(path) : statSync(path).size
  }
  return sum
}

const data = resolve(values.data!)
const frames = Number(values.frames)
const screens = join(data, 'screens')
const series = values.series === undefined ? join(screens, 'series') : resolve(values.series)
const CROP = 512

function pngFiles(): string[] {
  return readdirSync(series)
    .filter((name) => name.endsWith('.png'))
    .sort()
}

if (values.series === undefined && (!existsSync(series) || pngFiles().length < frames)) {
  console.log(`Rendering ${frames} screenshots into ${screens} (about 0.3 s a frame)...`)
  await makeScreens(screens, { frames, seed: Number(values.seed) })
}
const files = pngFiles().slice(0, frames)
if (files.length < frames) throw new Error(`Only ${files.length} frames in ${series}`)
const pngBytes = files.reduce((sum, name) => sum + statSync(join(series, name)).size, 0)
const { width, height, channels } = await sharp(join(series, files[0]!)).metadata()
console.log(`${files.length} frames ${width}x${height}x${channels}, PNG ${mb(pngBytes)}`)

// The same random frames and regions for every contender.
const next = random(Number(values.seed))
const picks = Array.from({ length: Number(values.crops) }, () => {
  const frame = Math.floor(next() * files.length)
  const region: Region = {
    x: Math.floor(next() * (width! - CROP + 1)),
    y: Math.floor(next() * (height! - CROP + 1)),
    width: CROP,
    height: CROP,
  }
  return { frame, region }
})

interface Row {
  readonly what: string
  readonly bytes: number
  readonly importPerSecond?: number
  readonly peakRss?: number
  readonly cropP50?: number
  readonly cropP90?: number
  readonly note: string
}
const rows: Row[] = []

// PNG files as they are: a crop decodes the whole frame.
{
  const times: number[] = []
  for (const { frame, region } of picks) {
    const t = performance.now()
    await sharp(join(series, files[frame]!))
      .extract({ left: region.x, top: region.y, width: region.width, height: region.height })
      .raw()
      .toBuffer()
    times.push((performance.now() - t) / 1000)
  }
  rows.push({
    what: 'PNG files',
    bytes: pngBytes,
    cropP50: median(times),
    cropP90: quantile(times, 0.9),
    note: 'sharp decodes the frame, then extracts',
  })
}

// Every frame's raw pixels, in order, through one zstd process: the archive's information.
const zstdLong = await (async () => {
  const { spawn } = await import('node:child_process')
  const started = performance.now()
  const zstd = spawn('zstd', ['--long=31', '-12', '-T1', '-q', '-c'], { stdio: ['pipe', 'pipe', 'inherit'] })
  let bytes = 0
  zstd.stdout.on('data', (chunk: Buffer) => {
    bytes += chunk.length
  })
  const closed = new Promise<number | null>((done) => zstd.on('close', done))
  for (const name of files) {
    const pixels = await sharp(join(series, name)).raw().toBuffer()
    if (!zstd.stdin.write(pixels)) await new Promise((done) => zstd.stdin.once('drain', done))
  }
  zstd.stdin.end()
  if ((await closed) !== 0) throw new Error('zstd failed (is the zstd command installed?)')
  const seconds = (performance.now() - started) / 1000
  rows.push({
    what: '`zstd --long=31 -12` of all raw frames',
    bytes,
    importPerSecond: files.length / seconds,
    note: 'one stream, no random access (PNG decoding included in frames/s)',
  })
  return bytes
})()
console.log(`zstd --long=31 -12 stream: ${mb(zstdLong)}`)

// Tessera: the dataset defaults, and the same without deltas.
const source = join(data, 'screens-input')
rmSync(source, { recursive: true, force: true })
// Only the first `frames` frames: a directory of links to them.
mkdirSync(source, { recursive: true })
for (const name of files) symlinkSync(join(series, name), join(source, name))
// The CLI runs from its bundle: build it from the current sources.
if (spawnSync(process.execPath, ['scripts/bundle.mjs'], { stdio: 'inherit' }).status !== 0) throw new Error('bundling failed')
const tessera: Record<string, { bytes: number; fps: number; peakRss: number; p50: number; usage: Usage }> = {}
const imports: Record<string, { dir: string; bytes: number; fps: number; peakRss: number; usage: Usage }> = {}
for (const deltas of ['on', 'off'] as const) {
  const dir = join(data, `dedup-store-deltas-${deltas}`)
  rmSync(dir, { recursive: true, force: true })
  // The import as a user runs it: the CLI (bundled, through the package's bin/tessera and its
  // malloc settings), timed by time(1) for its wall time and peak RSS (the process's, its
  // compression threads included).
  const child = spawnSync(
    '/usr/bin/time',
    [
      '-f',
      'TIME %e %M',
      'bin/tessera',
      'import',
      source,
      '--dataset',
      'screens',
      '--store',
      dir,
      '--jobs',
      values.jobs!,
      ...(deltas === 'off' ? ['--no-deltas'] : []),
    ],
    { encoding: 'utf8' },
  )
  if (child.status !== 0) throw new Error(`tessera import failed (${child.status}): ${child.stderr}`)
  const [, seconds, kib] = /TIME ([\d.]+) (\d+)/.exec(child.stderr)!
  if (deltas === 'on')
    console.log(
      child.stderr
        .split('\n')
        .filter((line) => line.startsWith('dataset'))
        .join('\n'),
    )
  const figures = { seconds: Number(seconds), peakRss: Number(kib) * 1024 }
  const store = await openPackStore(dir)
  const usage = await datasetUsage(store, (await datasetHead(store, 'screens'))!)
  await store.close()
  imports[deltas] = { dir, bytes: diskBytes(dir), fps: files.length / figures.seconds, peakRss: figures.peakRss, usage }
}
rmSync(source, { recursive: true, force: true })

// Crops of both stores interleaved, pick by pick (the order alternating), so that a noisy
// neighbour slows both alike; each crop opens its frame by name, as a user's would.
const stores = { on: await openPackStore(imports.on!.dir), off: await openPackStore(imports.off!.dir) }
const cropTimes: Record<'on' | 'off', number[]> = { on: [], off: [] }
for (const [i, { frame, region }] of picks.entries()) {
  for (const deltas of i % 2 === 0 ? (['on', 'off'] as const) : (['off', 'on'] as const)) {
    const store = stores[deltas]
    const t0 = performance.now()
    const image = await openImage(store, await resolveImage(store, `screens/${files[frame]}`))
    for await (const _ of await cropImage(image, region, { format: 'raw' })) {
    }
    cropTimes[deltas].push((performance.now() - t0) / 1000)
  }
}
await Promise.all([stores.on.close(), stores.off.close()])
for (const deltas of ['on', 'off'] as const) {
  const { bytes, fps, peakRss, usage } = imports[deltas]!
  const times = cropTimes[deltas]
  tessera[deltas] = { bytes, fps, peakRss, p50: median(times), usage }
  const tiles = `${usage.uniqueTiles} of ${usage.tiles} tiles distinct`
  const split =
    deltas === 'on' ? `; plain ${usage.plainTiles} (${mb(usage.plainBytes)}), delta ${usage.deltaTiles} (${mb(usage.deltaBytes)})` : ''
  rows.push({
    what: `Tessera, dataset defaults${deltas === 'on' ? '' : ', --no-deltas'} (${DATASET_DEFAULTS.tileSize}px tiles)`,
    bytes,
    importPerSecond: fps,
    peakRss,
    cropP50: median(times),
    cropP90: quantile(times, 0.9),
    note: `all files of the store; ${tiles}${split}`,
  })
  console.log(`deltas ${deltas}: ${mb(bytes)}, ${fps.toFixed(1)} frames/s, peak RSS ${mib(peakRss)}, crop p50 ${ms(median(times))}`)
}

// The scripted alternative: full PNG, or a PNG of (frame - previous) mod 256 when few pixels changed.
if (values.chain === true) {
  const threshold = Number(values['delta-threshold'])
  const kinds: Array<'full' | 'delta'> = []
  const stored: Buffer[] = []
  let previous: Buffer | undefined
  const t = performance.now()
  for (const name of files) {
    const pixels = await sharp(join(series, name)).raw().toBuffer()
    let changed = 0
    let delta: Buffer | undefined
    if (previous !== undefined) {
      delta = Buffer.allocUnsafe(pixels.length)
      for (let i = 0; i < pixels.length; i += channels!) {
        let differs = false
        for (let c = 0; c < channels!; c++) {
          const d = (pixels[i + c]! - previous[i + c]!) & 0xff
          delta[i + c] = d
          if (d !== 0) differs = true
        }
        if (differs) changed++
      }
    }
    const useDelta = delta !== undefined && changed / (width! * height!) < threshold
    const raw = { raw: { width: width!, height: height!, channels: channels as 3 | 4 } }
    stored.push(
      await sharp(useDelta ? delta : pixels, raw)
        .png({ compressionLevel: 9 })
        .toBuffer(),
    )
    kinds.push(useDelta ? 'delta' : 'full')
    previous = pixels
  }
  const encodeSeconds = (performance.now() - t) / 1000
  const times: number[] = []
  for (const { frame, region } of picks) {
    const t0 = performance.now()
    let start = frame
    while (kinds[start] === 'delta') start--
    const pixels = await sharp(stored[start]!).raw().toBuffer()
    for (let k = start + 1; k <= frame; k++) {
      const delta = await sharp(stored[k]!).raw().toBuffer()
      for (let i = 0; i < pixels.length; i++) pixels[i] = (pixels[i]! + delta[i]!) & 0xff
    }
    await sharp(pixels, { raw: { width: width!, height: height!, channels: channels as 3 | 4 } })
      .extract({ left: region.x, top: region.y, width: region.width, height: region.height })
      .raw()
      .toBuffer()
    times.push((performance.now() - t0) / 1000)
  }
  const fulls = kinds.filter((k) => k === 'full').length
  rows.push({
    what: 'PNG delta chain',
    bytes: stored.reduce((sum, b) => sum + b.length, 0),
    importPerSecond: files.length / encodeSeconds,
    cropP50: median(times),
    cropP90: quantile(times, 0.9),
    note: `${fulls} full frames, ${files.length - fulls} deltas (< ${threshold * 100}% of pixels changed); a crop replays the chain`,
  })
}

// The issue's targets, against this run's figures.
const on = tessera.on!
const off = tessera.off!
const targets: Array<[string, string, boolean]> = [
  [`on disk <= 11 MB`, mb(on.bytes), on.bytes <= 11e6],
  [`>= 28x smaller than the PNGs`, `${(pngBytes / on.bytes).toFixed(1)}x`, pngBytes / on.bytes >= 28],
  [`<= 2.5x the zstd --long stream`, `${(on.bytes / zstdLong).toFixed(2)}x`, on.bytes <= 2.5 * zstdLong],
  [`crop p50 <= 1.5x without deltas`, `${ms(on.p50)} vs ${ms(off.p50)}: ${(on.p50 / off.p50).toFixed(2)}x`, on.p50 <= 1.5 * off.p50],
  [`import >= 20 frames/s`, `${on.fps.toFixed(1)} frames/s`, on.fps >= 20],
  [`peak RSS <= 300 MiB`, mib(on.peakRss), on.peakRss <= 300 * 2 ** 20],
]

const table = [
  `${files.length} screenshots ${width}x${height} (${values.series === undefined ? `make-screens.ts seed ${values.seed}` : series}), ${values.jobs} files at once; crops: ${picks.length} random ${CROP}x${CROP} regions of random frames, in process`,
  '',
  '| storage | bytes | vs PNG | vs zstd --long | import (frames/s) | peak RSS | crop p50 | crop p90 | notes |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ...rows.map(
    (row) =>
      `| ${row.what} | ${mb(row.bytes)} | ${(pngBytes / row.bytes).toFixed(1)}x smaller | ${(row.bytes / zstdLong).toFixed(2)}x | ${row.importPerSecond === undefined ? '-' : row.importPerSecond.toFixed(1)} | ${row.peakRss === undefined ? '-' : mib(row.peakRss)} | ${row.cropP50 === undefined ? '-' : ms(row.cropP50)} | ${row.cropP90 === undefined ? '-' : ms(row.cropP90)} | ${row.note} |`,
  ),
  '',
  `delta tiles saved about ${mb(on.usage.deltaSavedBytes)} (du's estimate: each delta counted at its reference's size)`,
  '',
  '| target (issue 11) | this run | met |',
  '| --- | ---: | --- |',
  ...targets.map(([what, figure, met]) => `| ${what} | ${figure} | ${met ? 'yes' : 'no'} |`),
].join('\n')
console.log(`\n${table}`)
writeFileSync(join(data, 'dedup-results.md'), `${table}\n`)
