/**
 * PNG encoding (issue 12, part 3): Tessera's writer (rows filtered in WebAssembly SIMD, deflate
 * segments on worker threads) against sharp's and libvips' default PNG, on the benchmark
 * image's pixels (bench/data/big.ppm, RGB photographs). Report only: no targets enforced.
 *
 *   node --import tsx bench/png.ts [--data bench/data] [--crops 48] [--passes 3] [--rows 14321] [--concurrency 16] [--seed 1] [--skip-export]
 *
 * 1. 512x512 crops, raw pixels in memory -> PNG bytes: one at a time (latency) and
 *    `--concurrency` at once (throughput, as a server under load encodes), for Tessera with its
 *    deflate threads running (as `retainDeflateThreads` keeps them in a server), Tessera on
 *    libuv's pool only (threads 0; also with eight 96 KiB deflate segments per crop instead of
 *    the default two, the segmentation before 2026-12-06), and sharp `.png()` with its
 *    defaults (libvips: no filter, zlib-ng level 6). Also CPU time per crop (all threads,
 *    process.cpuUsage), which the machine's load disturbs less than wall time, and the output
 *    size against sharp's.
 * 2. A whole-image export: the top `--rows` rows of big.ppm streamed to Tessera's writer in
 *    bands of 256 rows, against `vips pngsave` of the same rows (vips crop of the PPM) and of
 *    the tiled deflate TIFF (the issue's reference, whole image only), in subprocesses, one
 *    after the other. Tessera's figure excludes tile decoding (what `tessera export` adds).
 *
 * Every figure is a median over `--passes` passes with its spread (min-max). Machines here
 * have two shared, noisy cores: read the ratios.
 */
import { spawnSync } from 'node:child_process'
import { closeSync, existsSync, openSync, readSync, statSync, unlinkSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import sharp from 'sharp'
import { retainDeflateThreads } from '../src/crop/writers/deflate.js'
import { writePng } from '../src/crop/writers/png.js'
import type { Band } from '../src/format/interface.js'
import { pixelFormat } from '../src/format/pixel.js'
import { median, random } from './lib.js'

const { values } = parseArgs({
  options: {
    data: { type: 'string', default: 'bench/data' },
    crops: { type: 'string', default: '48' },
    passes: { type: 'string', default: '3' },
    rows: { type: 'string', default: '14321' },
    concurrency: { type: 'string', default: '16' },
    seed: { type: 'string', default: '1' },
    'skip-export': { type: 'boolean', default: false },
  },
})
const ppm = join(values.data!, 'big.ppm')
const tiff = join(values.data!, 'big-tiled-deflate.tif')
if (!existsSync(ppm)) throw new Error(`${ppm} is missing: run node --import tsx bench/make-image.ts first`)
const passes = Number(values.passes)
const CROP = 512
const format = pixelFormat('rgb', 8)

// The PPM's header: P6 width height 255, then the samples.
const fd = openSync(ppm, 'r')
const head = Buffer.alloc(64)
readSync(fd, head, 0, 64, 0)
const match = /^P6\s+(\d+)\s+(\d+)\s+255\s/.exec(head.toString('latin1'))
if (!match) throw new Error(`${ppm} is not an 8-bit P6 PPM`)
const W = Number(match[1])
const H = Number(match[2])
const OFFSET = match[0].length

function readRows(y: number, count: number, x = 0, width = W): Uint8Array {
  const out = new Uint8Array(width * count * 3)
  if (x === 0 && width === W) readSync(fd, out, 0, out.length, OFFSET + y * W * 3)
  else for (let r = 0; r < count; r++) readSync(fd, out, r * width * 3, width * 3, OFFSET + ((y + r) * W + x) * 3)
  return out
}

async function* oneBand(data: Uint8Array, height: number): AsyncGenerator<Band> {
  yield { y: 0, height, data }
}

async function length(chunks: AsyncIterable<Uint8Array>): Promise<number> {
  let n = 0
  for await (const chunk of chunks) n += chunk.length
  return n
}

type Encoder = (raw: Uint8Array) => Promise<number>
const sharpPng: Encoder = async (raw) =>
  (
    await sharp(raw, { raw: { width: CROP, height: CROP, channels: 3 } })
      .png()
      .toBuffer()
  ).length
const tesseraPng =
  (threads?: number, chunkBytes?: number): Encoder =>
  (raw) =>
    length(writePng({ width: CROP, height: CROP, format }, oneBand(raw, CROP), { compression: 'deflate', threads, chunkBytes }))
// sharp first: the others' sizes are given against its.
const encoders: Record<string, Encoder> = {
  'sharp .png()': sharpPng,
  'tessera (deflate threads)': tesseraPng(),
  'tessera (threads 0)': tesseraPng(0),
  // The segmentation before 2026-12-06: eight 96 KiB segments per crop instead of two.
  'tessera (threads 0, 8 seg.)': tesseraPng(0, 96 << 10),
}

const cpuMs = () => {
  const { user, system } = process.cpuUsage()
  return (user + system) / 1000
}
const spread = (xs: number[], digits = 1) =>
  `${median(xs).toFixed(digits)} (${Math.min(...xs).toFixed(digits)}-${Math.max(...xs).toFixed(digits)})`

console.log(
  `big.ppm ${W}x${H}; ${cpus().length} cores, load average ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`,
)
const next = random(Number(values.seed))
const crops = Array.from({ length: Number(values.crops) }, () =>
  readRows(Math.floor(next() * (H - CROP)), CROP, Math.floor(next() * (W - CROP)), CROP),
)
const release = retainDeflateThreads()
try {
  // Warm up every encoder (and start the threads) outside the measurement.
  for (const encode of Object.values(encoders)) for (const raw of crops.slice(0, 4)) await encode(raw)
  console.log(`\n${crops.length} random 512x512 crops, ${passes} passes: median (min-max) over passes`)
  console.log('encoder                    | ms/crop one at a time | crops/s at concurrency | CPU ms/crop | size vs sharp')
  const sizes: Record<string, number> = {}
  for (const [name, encode] of Object.entries(encoders)) {
    const latency: number[] = []
    const rate: number[] = []
    const cpu: number[] = []
    let bytes = 0
    for (let pass = 0; pass < passes; pass++) {
      const times: number[] = []
      const c0 = cpuMs()
      bytes = 0
      for (const raw of crops) {
        const t = performance.now()
        bytes += await encode(raw)
        times.push(performance.now() - t)
      }
      cpu.push((cpuMs() - c0) / crops.length)
      latency.push(median(times))
      let at = 0
      const t = performance.now()
      await Promise.all(
        Array.from({ length: Number(values.concurrency) }, async () => {
          while (at < crops.length) await encode(crops[at++]!)
        }),
      )
      rate.push(crops.length / ((performance.now() - t) / 1000))
    }
    sizes[name] = bytes
    const ratio = (bytes / (sizes['sharp .png()'] ?? bytes)).toFixed(3)
    console.log(`${name.padEnd(26)} | ${spread(latency).padEnd(21)} | ${spread(rate, 0).padEnd(22)} | ${spread(cpu).padEnd(11)} | ${ratio}`)
  }

  if (!values['skip-export']) {
    const rows = Math.min(H, Number(values.rows))
    console.log(`\nExport of the top ${rows} rows (${((W * rows * 3) / 2 ** 20).toFixed(0)} MiB of samples) to PNG, ${passes} passes`)
    const ours: number[] = []
    let oursBytes = 0
    for (let pass = 0; pass < passes; pass++) {
      const t = performance.now()
      async function* bands(): AsyncGenerator<Band> {
        for (let y = 0; y < rows; y += 256) yield { y, height: Math.min(256, rows - y), data: readRows(y, Math.min(256, rows - y)) }
      }
      oursBytes = await length(writePng({ width: W, height: rows, format }, bands(), { compression: 'deflate' }))
      ours.push((performance.now() - t) / 1000)
    }
    console.log(`tessera writePng (bands read from the PPM): ${spread(ours)} s, ${(oursBytes / 2 ** 20).toFixed(1)} MiB`)
    const out = join(values.data!, 'bench-png-vips.png')
    const vips = (label: string, args: string[]) => {
      const times: number[] = []
      let bytes = 0
      for (let pass = 0; pass < passes; pass++) {
        const t = performance.now()
        const run = spawnSync('vips', args, { stdio: 'inherit' })
        if (run.status !== 0) throw new Error(`vips ${args.join(' ')} failed`)
        times.push((performance.now() - t) / 1000)
        bytes = statSync(out).size
      }
      unlinkSync(out)
      console.log(
        `${label}: ${spread(times)} s, ${(bytes / 2 ** 20).toFixed(1)} MiB; tessera ${(median(ours) / median(times)).toFixed(2)}x the time, ${(oursBytes / bytes).toFixed(3)}x the size`,
      )
    }
    vips('vips pngsave (crop of the PPM)', ['crop', ppm, out, '0', '0', String(W), String(rows)])
    if (rows === H && existsSync(tiff)) vips('vips pngsave of big-tiled-deflate.tif', ['pngsave', tiff, out])
  }
} finally {
  await release()
  closeSync(fd)
}
