/**
 * `npm run bench:many`: many images at once (performance issue, target 7). Imports 100
 * different 5000x5000 regions of the benchmark image as separate images (once, into
 * bench/data/many-store), then runs 64 concurrent random 512x512 crops spread over all 100
 * images, and the same over one image, each in a fresh process, and compares peak RSS.
 *
 *   node --import tsx bench/many.ts [--images 100] [--crops 3000] [--concurrency 64]
 */
import { spawnSync } from 'node:child_process'
import { closeSync, existsSync, openSync, readSync, rmSync, writeSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { importImage, openStore } from '../src/image.js'
import { random } from './lib.js'
import { HEIGHT, makeBenchImage, WIDTH } from './make-image.js'

const { values } = parseArgs({
  options: {
    data: { type: 'string', default: 'bench/data' },
    images: { type: 'string', default: '100' },
    crops: { type: 'string', default: '3000' },
    concurrency: { type: 'string', default: '64' },
  },
})
const data = resolve(values.data!)
const storeDir = join(data, 'many-store')
const SIDE = 5000

const count = Number(values.images)
if (!existsSync(join(storeDir, 'VERSION'))) {
  const ppm = join(data, 'big.ppm')
  if (!existsSync(ppm)) await makeBenchImage(data)
  const [width, height] = [WIDTH, HEIGHT]
  const headerBytes = `P6\n${width} ${height}\n255\n`.length
  const next = random(1)
  const store = await openStore(storeDir)
  const source = openSync(ppm, 'r')
  const row = Buffer.allocUnsafe(SIDE * 3)
  for (let i = 0; i < count; i++) {
    const x = Math.floor(next() * (width - SIDE))
    const y = Math.floor(next() * (height - SIDE))
    const file = join(data, `many-${i}.ppm`)
    const out = openSync(file, 'w')
    writeSync(out, `P6\n${SIDE} ${SIDE}\n255\n`)
    for (let r = 0; r < SIDE; r++) {
      readSync(source, row, 0, row.length, headerBytes + ((y + r) * width + x) * 3)
      writeSync(out, row)
    }
    closeSync(out)
    const { cid } = await importImage(store, file, { label: `region ${i} at ${x},${y}` })
    rmSync(file)
    process.stdout.write(`\rimported ${i + 1}/${count} ${cid}`)
  }
  closeSync(source)
  console.log(`\nstored: ${((await store.storedBytes()) / 2 ** 20).toFixed(0)} MiB`)
  await store.close()
}

// Each measurement in a fresh plain-node process on the build (no TypeScript loader in its RSS).
function child(images: number): { images: number; crops: number; seconds: number; rssMiB: number } {
  const result = spawnSync(process.execPath, ['bench/many-child.mjs', storeDir, String(images), values.crops!, values.concurrency!], {
    encoding: 'utf8',
  })
  if (result.status !== 0) throw new Error(result.stderr)
  return JSON.parse(result.stdout.trim().split('\n').pop()!)
}

const one = child(1)
const all = child(count)
console.log(`\n${values.concurrency} concurrent random 512x512 crops, ${values.crops} in all, peak RSS of the whole process:\n`)
console.log('| images | crops/s | peak RSS |')
console.log('| --- | --- | --- |')
for (const r of [one, all]) console.log(`| ${r.images} | ${(r.crops / r.seconds).toFixed(0)} | ${r.rssMiB.toFixed(0)} MiB |`)
console.log(`\nRSS with ${all.images} images / with 1 image: ${(all.rssMiB / one.rssMiB).toFixed(2)}x (target: at most 1.2x and 200 MiB)`)
