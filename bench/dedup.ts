/**
 * `npm run bench:dedup`: the screenshot archive (dataset issue). Renders a series of desktop
 * screenshots with bench/make-screens.ts (once, into bench/data/screens), imports it as a
 * dataset with tiles of 256, 128 and 64 pixels, and prints side by side: the PNG files' size;
 * the stored size in Tessera; the simple alternative a user would script (each frame stored as
 * a lossless PNG delta against the previous one when few pixels differ, else as a full PNG);
 * import throughput; and the time to crop a 512x512 region of a random frame, which Tessera
 * does reading only that frame's tiles while the delta chain must replay every delta since
 * the last full frame. Timings are medians (the machine is shared and noisy).
 *
 *   npm run bench:dedup [-- --frames 120] [--seed 7] [--crops 25] [--jobs 2] [--data bench/data]
 */
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import sharp from 'sharp'
import { datasetUsage } from '../src/dataset/accounting.js'
import { datasetHead, resolveImage } from '../src/dataset/dataset.js'
import { importDataset } from '../src/dataset/import.js'
import type { Region } from '../src/format/interface.js'
import { cropImage, openImage } from '../src/image.js'
import { openStoreAt as openPackStore } from '../src/store/open.js'
import { median, random } from './lib.js'
import { makeScreens } from './make-screens.js'

const { values } = parseArgs({
  options: {
    data: { type: 'string', default: 'bench/data' },
    frames: { type: 'string', default: '120' },
    seed: { type: 'string', default: '7' },
    crops: { type: 'string', default: '25' },
    jobs: { type: 'string', default: '2' },
    // A frame becomes a delta when fewer than this fraction of its pixels changed.
    'delta-threshold': { type: 'string', default: '0.25' },
  },
})
const data = resolve(values.data!)
const frames = Number(values.frames)
const screens = join(data, 'screens')
const series = join(screens, 'series')
const TILE_SIZES = [256, 128, 64]
const CROP = 512

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`
const ms = (seconds: number) => `${(seconds * 1000).toFixed(1)} ms`

function pngFiles(): string[] {
  return readdirSync(series)
    .filter((name) => name.endsWith('.png'))
    .sort()
}

if (!existsSync(series) || pngFiles().length < frames) {
  console.log(`Rendering ${frames} screenshots into ${screens} (about 0.3 s a frame)...`)
  await makeScreens(screens, { frames, seed: Number(values.seed) })
}
const files = pngFiles().slice(0, frames)
if (files.length < frames) throw new Error(`Only ${files.length} frames in ${series}`)
const pngBytes = files.reduce((sum, name) => sum + statSync(join(series, name)).size, 0)
const { width, height } = await sharp(join(series, files[0]!)).metadata()
console.log(`${files.length} frames ${width}x${height}, PNG ${mib(pngBytes)}`)

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
  readonly cropSeconds: number
  readonly cliCropSeconds?: number
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
  rows.push({ what: 'PNG files', bytes: pngBytes, cropSeconds: median(times), note: 'sharp decodes the frame, then extracts' })
}

// Tessera, one dataset per tile size.
const source = join(data, 'screens-input')
rmSync(source, { recursive: true, force: true })
// Only the first `frames` frames: a directory of links to them.
const { mkdirSync, symlinkSync } = await import('node:fs')
mkdirSync(source, { recursive: true })
for (const name of files) symlinkSync(join(series, name), join(source, name))
spawnSync('npm', ['run', 'build'], { stdio: 'ignore' })
for (const tileSize of TILE_SIZES) {
  const dir = join(data, `dedup-store-${tileSize}`)
  rmSync(dir, { recursive: true, force: true })
  const store = await openPackStore(dir)
  const t = performance.now()
  const result = await importDataset(store, 'screens', [source], { tileSize, jobs: Number(values.jobs) })
  const importSeconds = (performance.now() - t) / 1000
  if (result.failed > 0) throw new Error(`${result.failed} frames failed to import`)
  const head = (await datasetHead(store, 'screens'))!
  const usage = await datasetUsage(store, head)
  const times: number[] = []
  for (const { frame, region } of picks) {
    const t0 = performance.now()
    const image = await openImage(store, await resolveImage(store, `screens/${files[frame]}`))
    for await (const _ of await cropImage(image, region, { format: 'raw' })) {
    }
    times.push((performance.now() - t0) / 1000)
  }
  const storedBytes = await store.storedBytes()
  await store.close()
  // The same crops by a user at the shell: one `tessera crop` process each.
  const cli: number[] = []
  for (const { frame, region } of picks.slice(0, 7)) {
    const t0 = performance.now()
    const crop = spawnSync(
      process.execPath,
      [
        resolve('bin/tessera.js'),
        'crop',
        `screens/${files[frame]}`,
        '--region',
        `${region.x},${region.y},${region.width},${region.height}`,
        '-f',
        'raw',
        '-o',
        '/dev/null',
      ],
      { env: { ...process.env, TESSERA_STORE: dir } },
    )
    if (crop.status !== 0) throw new Error(crop.stderr.toString())
    cli.push((performance.now() - t0) / 1000)
  }
  rows.push({
    what: `Tessera, ${tileSize}px tiles`,
    bytes: storedBytes,
    importPerSecond: files.length / importSeconds,
    cropSeconds: median(times),
    cliCropSeconds: median(cli),
    note: `${usage.uniqueTiles} of ${usage.tiles} tiles distinct; dedup ${usage.dedupRatio.toFixed(1)}x (stored apart ${mib(usage.perImageBytes)})`,
  })
  console.log(`tile ${tileSize}: ${mib(storedBytes)}, ${(files.length / importSeconds).toFixed(1)} frames/s, crop ${ms(median(times))}`)
}

// The scripted alternative: full PNG, or a PNG of (frame - previous) mod 256 when few pixels changed.
{
  const threshold = Number(values['delta-threshold'])
  const kinds: Array<'full' | 'delta'> = []
  const stored: Buffer[] = []
  let previous: Buffer | undefined
  const t = performance.now()
  const channels = (await sharp(join(series, files[0]!)).metadata()).channels!
  for (const name of files) {
    const pixels = await sharp(join(series, name)).raw().toBuffer()
    let changed = 0
    let delta: Buffer | undefined
    if (previous !== undefined) {
      delta = Buffer.allocUnsafe(pixels.length)
      for (let i = 0; i < pixels.length; i += channels) {
        let differs = false
        for (let c = 0; c < channels; c++) {
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
    cropSeconds: median(times),
    note: `${fulls} full frames, ${files.length - fulls} deltas (< ${threshold * 100}% of pixels changed); a crop replays the chain`,
  })
}
rmSync(source, { recursive: true, force: true })

const table = [
  `${files.length} screenshots ${width}x${height} (make-screens.ts seed ${values.seed}); crops: ${picks.length} random ${CROP}x${CROP} regions of random frames, median`,
  '',
  '| storage | bytes | vs PNG | import (frames/s) | crop 512x512, in process | crop, CLI process | notes |',
  '| --- | ---: | ---: | ---: | ---: | ---: | --- |',
  ...rows.map(
    (row) =>
      `| ${row.what} | ${mib(row.bytes)} | ${(row.bytes / pngBytes).toFixed(3)} | ${row.importPerSecond === undefined ? '-' : row.importPerSecond.toFixed(1)} | ${ms(row.cropSeconds)} | ${row.cliCropSeconds === undefined ? '-' : ms(row.cliCropSeconds)} | ${row.note} |`,
  ),
].join('\n')
console.log(`\n${table}`)
writeFileSync(join(data, 'dedup-results.md'), `${table}\n`)
