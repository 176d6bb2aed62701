/**
 * `npm run bench`: Tessera against sharp/libvips on the benchmark image made by
 * ../shared/bench/make-image.sh (29566x14321 RGB photographs), side by side in one run:
 * import time and peak RSS, random 512x512 crop latency, whole-process CLI crops, bytes stored.
 * Machines here are shared and noisy: read the ratios, not the absolute times.
 *
 *   npm run bench [-- --data DIR] [--crops 20] [--seed 1] [--skip-import]
 */
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, rmSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import sharp from 'sharp'
import { openImage, openStore } from '../src/image.js'

const { values } = parseArgs({
  options: {
    data: { type: 'string', default: 'bench/data' },
    crops: { type: 'string', default: '20' },
    seed: { type: 'string', default: '1' },
    'skip-import': { type: 'boolean', default: false },
  },
})
const data = resolve(values.data!)
const png = join(data, 'big.png')
const deflateTiff = join(data, 'big-tiled-deflate.tif')
const zstdTiff = join(data, 'big-tiled-zstd.tif')
const cli = resolve('bin/tessera.js')

if (!existsSync(zstdTiff)) {
  console.log(`Building the benchmark image in ${data} (10-15 minutes, ~3 GB)...`)
  const made = spawnSync('bash', [resolve('../shared/bench/make-image.sh'), data], { stdio: 'inherit' })
  if (made.status !== 0) throw new Error('make-image.sh failed')
}
if (!existsSync('dist/cli/main.js')) spawnSync('npm', ['run', 'build'], { stdio: 'inherit' })

/** Runs a node program, returning wall seconds, peak RSS in MiB and its stdout. */
function runNode(args: string[]): Promise<{ seconds: number; rssMiB: number; stdout: string }> {
  return new Promise((done, fail) => {
    const started = process.hrtime.bigint()
    const child = spawn(process.execPath, ['--import', resolve('bench/peak-rss.mjs'), ...args], {
      stdio: ['ignore', 'pipe', 'inherit', 'pipe'],
      env: { ...process.env, TESSERA_BENCH_RSS_FD: '3' },
    })
    let stdout = ''
    let rss = ''
    child.stdout!.on('data', (chunk) => (stdout += chunk))
    child.stdio[3]!.on('data', (chunk) => (rss += chunk))
    child.on('error', fail)
    child.on('close', (code) => {
      if (code !== 0) return fail(new Error(`${args.join(' ')} exited with ${code}`))
      done({ seconds: Number(process.hrtime.bigint() - started) / 1e9, rssMiB: Number(rss.trim()) / 1024, stdout })
    })
  })
}

function timeCommand(command: string, args: string[]): number {
  const started = process.hrtime.bigint()
  const result = spawnSync(command, args, { stdio: ['ignore', 'ignore', 'inherit'] })
  if (result.status !== 0) throw new Error(`${command} failed`)
  return Number(process.hrtime.bigint() - started) / 1e6
}

function quantile(samples: number[], q: number): number {
  const sorted = [...samples].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
}

/** A small seeded generator (mulberry32), so every run crops the same positions. */
function random(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const rows: Array<[string, string, string, string]> = []
const row = (what: string, tessera: string, peer: string, ratio: string) => rows.push([what, tessera, peer, ratio])
const fmt = (n: number, digits = 1) => n.toFixed(digits)
const mib = (bytes: number) => `${fmt(bytes / 2 ** 20)} MiB`

const store = join(data, 'bench-store')
const pyramidStore = join(data, 'bench-store-pyramid')
let cid: string
if (!values['skip-import'] || !existsSync(store)) {
  rmSync(store, { recursive: true, force: true })
  rmSync(pyramidStore, { recursive: true, force: true })
  const peerOut = join(data, 'sharp-converted.tif')
  console.log('import: sharp PNG -> tiled deflate TIFF ...')
  const peer = await runNode([resolve('bench/sharp-convert.mjs'), png, peerOut])
  rmSync(peerOut, { force: true })
  console.log('import: tessera import ...')
  const ours = await runNode([cli, 'import', png, '--store', store])
  cid = ours.stdout.trim()
  console.log('import: tessera import --pyramid ...')
  const pyramid = await runNode([cli, 'import', png, '--store', pyramidStore, '--pyramid'])
  row(
    'import big.png, wall',
    `${fmt(ours.seconds)} s`,
    `${fmt(peer.seconds)} s (sharp -> tiled TIFF)`,
    `${fmt(ours.seconds / peer.seconds, 2)}x`,
  )
  row('import big.png, peak RSS', `${fmt(ours.rssMiB, 0)} MiB`, `${fmt(peer.rssMiB, 0)} MiB`, `${fmt(ours.rssMiB / peer.rssMiB, 2)}x`)
  row(
    'import --pyramid, wall',
    `${fmt(pyramid.seconds)} s`,
    `${fmt(ours.seconds)} s (no pyramid)`,
    `+${fmt((100 * (pyramid.seconds - ours.seconds)) / ours.seconds, 0)}%`,
  )
  row('import --pyramid, peak RSS', `${fmt(pyramid.rssMiB, 0)} MiB`, '', '')
} else {
  cid = spawnSync(process.execPath, [cli, 'ls', '--store', store], { encoding: 'utf8' }).stdout.split('\t')[0]!
}

// Bytes stored.
const s = await openStore(store)
const stored = await s.storedBytes()
row('bytes stored (default settings)', mib(stored), `${mib(statSync(png).size)} (PNG)`, `${fmt(stored / statSync(png).size, 3)}x`)
row('', '', `${mib(statSync(zstdTiff).size)} (tiled zstd TIFF)`, `${fmt(stored / statSync(zstdTiff).size, 3)}x`)
row('', '', `${mib(statSync(deflateTiff).size)} (tiled deflate TIFF)`, `${fmt(stored / statSync(deflateTiff).size, 3)}x`)

// Random 512x512 crops, in process.
const image = await openImage(s, cid)
const next = random(Number(values.seed))
const count = Number(values.crops)
const regions = Array.from({ length: count }, () => ({
  x: Math.floor(next() * (image.manifest.width - 512)),
  y: Math.floor(next() * (image.manifest.height - 512)),
  width: 512,
  height: 512,
}))
sharp.cache(false)
const sharpFirst = performance.now()
await sharp(deflateTiff, { limitInputPixels: false })
  .extract({ left: regions[0]!.x, top: regions[0]!.y, width: 512, height: 512 })
  .raw()
  .toBuffer()
const sharpFirstMs = performance.now() - sharpFirst
const ourFirst = performance.now()
for await (const _ of image.reader.bands(regions[0]!)) void _
const ourFirstMs = performance.now() - ourFirst
const ours: number[] = []
const theirs: number[] = []
for (let pass = 0; pass < 3; pass++) {
  for (const region of regions) {
    let t = performance.now()
    for await (const _ of image.reader.bands(region)) void _
    ours.push(performance.now() - t)
    t = performance.now()
    await sharp(deflateTiff, { limitInputPixels: false })
      .extract({ left: region.x, top: region.y, width: 512, height: 512 })
      .raw()
      .toBuffer()
    theirs.push(performance.now() - t)
  }
}
row(
  '512x512 crop to raw, first (ms)',
  fmt(ourFirstMs, 2),
  `${fmt(sharpFirstMs, 2)} (sharp, tiled deflate TIFF)`,
  `${fmt(ourFirstMs / sharpFirstMs, 2)}x`,
)
row(
  '512x512 crop to raw, p50 (ms)',
  fmt(quantile(ours, 0.5), 2),
  fmt(quantile(theirs, 0.5), 2),
  `${fmt(quantile(ours, 0.5) / quantile(theirs, 0.5), 2)}x`,
)
row(
  '512x512 crop to raw, p95 (ms)',
  fmt(quantile(ours, 0.95), 2),
  fmt(quantile(theirs, 0.95), 2),
  `${fmt(quantile(ours, 0.95) / quantile(theirs, 0.95), 2)}x`,
)
await s.close()

// Whole-process CLI crops: tessera crop vs vips extract_area, both to a tiled zstd TIFF.
const out = join(data, 'bench-crop.tif')
const cliOurs: number[] = []
const cliVips: number[] = []
for (const region of regions.slice(0, 5)) {
  const spec = `${region.x},${region.y},512,512`
  cliOurs.push(timeCommand(process.execPath, [cli, 'crop', cid, '--store', store, '--region', spec, '-o', out]))
  cliVips.push(
    timeCommand('vips', [
      'extract_area',
      deflateTiff,
      `${out}[tile,compression=zstd,predictor=horizontal]`,
      String(region.x),
      String(region.y),
      '512',
      '512',
    ]),
  )
}
rmSync(out, { force: true })
row(
  'CLI crop 512x512 -> TIFF, p50 (ms)',
  fmt(quantile(cliOurs, 0.5), 0),
  `${fmt(quantile(cliVips, 0.5), 0)} (vips extract_area)`,
  `${fmt(quantile(cliOurs, 0.5) / quantile(cliVips, 0.5), 2)}x`,
)

const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i]!.length), ['measure', 'tessera', 'peer', 'ratio'][i]!.length))
const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`
console.log(`\nBenchmark image: ${image.manifest.width}x${image.manifest.height} RGB, crops at ${count} seeded positions x 3 passes\n`)
console.log(line(['measure', 'tessera', 'peer', 'ratio']))
console.log(line(widths.map((w) => '-'.repeat(w))))
for (const r of rows) console.log(line(r))
