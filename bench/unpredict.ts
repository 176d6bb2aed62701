/**
 * The crop step after zstd (undo Predictor 2 for the needed rows and columns, copy them to the
 * band), per implementation, on real tiles: a 2048x2048 window of bench/data/big.ppm (RGB
 * photographs) cut into 256x256 tiles, predictor-differenced and zstd-compressed like an
 * import, then random 512x512 crops planned by planCrop and executed like ImageReader.bands.
 * Then every sample layout on synthetic photo-like tiles.
 *
 *   node --import tsx bench/unpredict.ts [--crops 400] [--seed 1] [--ppm bench/data/big.ppm]
 *
 * Figures are medians; times per crop exclude decompression, which is shown for scale, and
 * include allocating each band (as ImageReader.bands does): 'band allocation only' is that floor.
 * 'wasm' decompresses straight into unpredictScratch().tile and copies each band out of wasm
 * memory with slice(); 'wasm, tile copied in' decompresses into an ordinary buffer instead.
 */
import { closeSync, existsSync, openSync, readSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { planCrop } from '../src/crop/plan.js'
import { decodePredictorRows, encodePredictor } from '../src/format/predictor.js'
import { TileCoder } from '../src/format/tile-codec.js'
import { unpredictCopy, unpredictScratch } from '../src/format/unpredict.js'
import { median, random } from './lib.js'

const { values } = parseArgs({
  options: {
    crops: { type: 'string', default: '400' },
    seed: { type: 'string', default: '1' },
    ppm: { type: 'string', default: 'bench/data/big.ppm' },
  },
})

const TILE = 256
const GRID = 8
const CROP = 512

const now = () => Number(process.hrtime.bigint())

/** RGB pixels of a GRID*TILE square from the PPM (or photo-like noise if it is missing). */
function loadPixels(rand: () => number): { pixels: Uint8Array; source: string } {
  const side = GRID * TILE
  const pixels = new Uint8Array(side * side * 3)
  if (existsSync(values.ppm!)) {
    const fd = openSync(values.ppm!, 'r')
    const head = Buffer.alloc(64)
    readSync(fd, head, 0, 64, 0)
    const match = /^P6\s+(\d+)\s+(\d+)\s+255\s/.exec(head.toString('latin1'))
    if (match) {
      const width = Number(match[1])
      const x0 = Math.floor(width / 3)
      const y0 = Math.floor(Number(match[2]) / 3)
      for (let y = 0; y < side; y++) {
        readSync(fd, pixels, y * side * 3, side * 3, match[0].length + ((y0 + y) * width + x0) * 3)
      }
      closeSync(fd)
      return { pixels, source: `${values.ppm} at ${x0},${y0}` }
    }
    closeSync(fd)
  }
  syntheticPhoto(pixels, side, 3, 8, rand)
  return { pixels, source: 'synthetic gradients + noise' }
}

/** Smooth gradients plus a little noise: after Predictor 2, mostly small values, like photographs. */
function syntheticPhoto(data: Uint8Array | Uint16Array, side: number, channels: number, bits: number, rand: () => number): void {
  const max = 2 ** bits - 1
  for (let y = 0, i = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      for (let c = 0; c < channels; c++, i++) {
        const v = 0.5 + 0.4 * Math.sin((x + 3 * c) / 37 + y / 53) * Math.cos(y / 29 - c) + (rand() - 0.5) * 0.03
        data[i] = Math.max(0, Math.min(max, Math.round(v * max)))
      }
    }
  }
}

const rand = random(Number(values.seed))
const { pixels, source } = loadPixels(rand)
const shape = { tileSize: TILE, channels: 3, bitsPerSample: 8 as const }
const coder = new TileCoder(shape, { name: 'zstd', level: 3, predictor: 2 })
const tileBytes = TILE * TILE * 3
const payloads: Uint8Array[] = []
for (let ty = 0; ty < GRID; ty++) {
  for (let tx = 0; tx < GRID; tx++) {
    const tile = new Uint8Array(tileBytes)
    for (let y = 0; y < TILE; y++) {
      const from = ((ty * TILE + y) * GRID * TILE + tx * TILE) * 3
      tile.set(pixels.subarray(from, from + TILE * 3), y * TILE * 3)
    }
    payloads.push(coder.encode(tile))
  }
}

type Step = 'baseline' | 'js' | 'wasm' | 'wasm, tile copied in' | 'band allocation only'
const steps: Step[] = ['baseline', 'js', 'wasm', 'wasm, tile copied in', 'band allocation only']
const jsTile = new Uint8Array(tileBytes)

/** Crops one region with `step`; returns [decompress ns, step ns] and the bands' bytes. */
function crop(step: Step, x: number, y: number, bands: Uint8Array[]): [number, number] {
  let unzip = 0
  let work = 0
  const rowBytes = CROP * 3
  for (const band of planCrop({ x, y, width: CROP, height: CROP }, TILE)) {
    const bandBytes = band.height * rowBytes
    let t = now()
    const scratch = step === 'wasm' || step === 'wasm, tile copied in' ? unpredictScratch(tileBytes, bandBytes)! : undefined
    const out = scratch?.out ?? new Uint8Array(bandBytes)
    work += now() - t
    for (const slice of band.slices) {
      const payload = payloads[band.row * GRID + slice.column]!
      t = now()
      const tile = step === 'wasm' ? scratch!.tile : jsTile
      coder.decompress(payload, tile)
      const t1 = now()
      unzip += t1 - t
      if (step === 'baseline') {
        decodePredictorRows(tile, TILE, 3, 8, band.tileY, band.height, slice.tileX + slice.width)
        const sliceBytes = slice.width * 3
        let from = (band.tileY * TILE + slice.tileX) * 3
        let to = slice.regionX * 3
        for (let r = 0; r < band.height; r++, from += TILE * 3, to += rowBytes) out.set(tile.subarray(from, from + sliceBytes), to)
      } else if (step !== 'band allocation only') {
        if (step === 'wasm, tile copied in') scratch!.tile.set(tile)
        unpredictCopy(step === 'js' ? tile : scratch!.tile, out, {
          ...shape,
          predictor: 2,
          firstRow: band.tileY,
          rowCount: band.height,
          tileX: slice.tileX,
          width: slice.width,
          outOffset: slice.regionX * 3,
          outStride: rowBytes,
        })
      }
      work += now() - t1
    }
    t = now()
    bands.push(scratch ? scratch.out.slice() : out)
    work += now() - t
  }
  return [unzip, work]
}

// Correctness first: every step yields the same bytes as the baseline.
for (let i = 0; i < 20; i++) {
  const x = Math.floor(rand() * (GRID * TILE - CROP))
  const y = Math.floor(rand() * (GRID * TILE - CROP))
  const expected: Uint8Array[] = []
  crop('baseline', x, y, expected)
  for (const step of ['js', 'wasm', 'wasm, tile copied in'] as const) {
    const got: Uint8Array[] = []
    crop(step, x, y, got)
    if (!got.every((band, j) => Buffer.compare(band, expected[j]!) === 0)) throw new Error(`${step} differs at ${x},${y}`)
  }
}

const count = Number(values.crops)
const times = new Map(steps.map((s) => [s, { unzip: [] as number[], work: [] as number[] }]))
for (let i = 0; i < count; i++) {
  const x = Math.floor(rand() * (GRID * TILE - CROP))
  const y = Math.floor(rand() * (GRID * TILE - CROP))
  // Rotate the order so no step always runs with a warm or cold cache.
  for (let k = 0; k < steps.length; k++) {
    const step = steps[(i + k) % steps.length]!
    const [unzip, work] = crop(step, x, y, [])
    times.get(step)!.unzip.push(unzip)
    times.get(step)!.work.push(work)
  }
}

const samples = CROP * CROP * 3
const unzipMs = median(steps.flatMap((s) => times.get(s)!.unzip)) / 1e6
console.log(`Tiles: ${source}, ${GRID}x${GRID} tiles of ${TILE}x${TILE} RGB 8-bit, zstd 3, predictor 2`)
console.log(`Crops: ${count} random ${CROP}x${CROP} (9 tiles each), node ${process.version}`)
console.log(`zstd decompression: ${unzipMs.toFixed(3)} ms per crop (median)\n`)
console.log('| step | ms per crop | ns per output sample | step / zstd | crop / zstd |')
console.log('|---|---|---|---|---|')
for (const step of steps) {
  const ms = median(times.get(step)!.work) / 1e6
  console.log(
    `| ${step} | ${ms.toFixed(3)} | ${((ms * 1e6) / samples).toFixed(3)} | ${(ms / unzipMs).toFixed(2)} | ${(1 + ms / unzipMs).toFixed(2)}x |`,
  )
}

// Every layout, synthetic tiles: rows 0..255, columns 64..255 (a third summed, the rest copied).
console.log('\nKernel only, one 256x256 tile, rows 0-255, columns 64-255, ns per output sample (median of 200):')
console.log('| layout | baseline | js | wasm |')
console.log('|---|---|---|---|')
for (const bits of [8, 16] as const) {
  for (const channels of [1, 2, 3, 4]) {
    const bytes = TILE * TILE * channels * (bits / 8)
    const raw = new Uint8Array(bytes)
    syntheticPhoto(bits === 8 ? raw : new Uint16Array(raw.buffer), TILE, channels, bits, rand)
    encodePredictor(raw, TILE, channels, bits)
    const pixel = channels * (bits / 8)
    const width = TILE - 64
    const options = {
      tileSize: TILE,
      channels,
      bitsPerSample: bits,
      predictor: 2 as const,
      firstRow: 0,
      rowCount: TILE,
      tileX: 64,
      width,
      outOffset: 0,
      outStride: width * pixel,
    }
    const scratch = unpredictScratch(bytes, TILE * width * pixel)!
    const plainTile = new Uint8Array(bytes)
    const plainOut = new Uint8Array(TILE * width * pixel)
    const result: Record<string, number[]> = { baseline: [], js: [], wasm: [] }
    for (let i = 0; i < 200; i++) {
      plainTile.set(raw)
      let t = now()
      decodePredictorRows(plainTile, TILE, channels, bits, 0, TILE, TILE)
      for (let r = 0; r < TILE; r++) plainOut.set(plainTile.subarray((r * TILE + 64) * pixel, (r + 1) * TILE * pixel), r * width * pixel)
      result.baseline!.push(now() - t)
      plainTile.set(raw)
      t = now()
      unpredictCopy(plainTile, plainOut, options)
      result.js!.push(now() - t)
      scratch.tile.set(raw)
      t = now()
      unpredictCopy(scratch.tile, scratch.out, options)
      result.wasm!.push(now() - t)
    }
    if (Buffer.compare(scratch.out, plainOut) !== 0) throw new Error(`wasm differs for ${channels}x${bits}`)
    const perSample = (xs: number[]) => (median(xs) / (TILE * width * channels)).toFixed(3)
    console.log(`| ${channels} x ${bits}-bit | ${perSample(result.baseline!)} | ${perSample(result.js!)} | ${perSample(result.wasm!)} |`)
  }
}
