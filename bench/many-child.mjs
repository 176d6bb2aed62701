// Child of bench/many.ts: `crops` random 512x512 crops over the first `images` images of the
// store, `concurrency` at a time; prints throughput and the process's peak RSS as JSON.
import { openImage, openStore } from '../dist/image.js'
import { peakRssBytes } from '../dist/peak-rss.js'

const [storeDir, imageCount, crops, concurrency] = process.argv.slice(2)
const SIDE = 5000
let a = 7
const next = () => {
  a = (a + 0x6d2b79f5) >>> 0
  let t = a
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}
const store = await openStore(storeDir)
const cids = []
for await (const pin of store.pins()) cids.push(pin.cid)
const images = await Promise.all(cids.slice(0, Number(imageCount)).map((cid) => openImage(store, cid)))
const total = Number(crops)
let started = 0
const t0 = performance.now()
const worker = async () => {
  while (started < total) {
    started++
    const image = images[Math.floor(next() * images.length)]
    const region = { x: Math.floor(next() * (SIDE - 512)), y: Math.floor(next() * (SIDE - 512)), width: 512, height: 512 }
    for await (const band of image.reader.bands(region)) void band
  }
}
await Promise.all(Array.from({ length: Number(concurrency) }, worker))
const seconds = (performance.now() - t0) / 1000
console.log(JSON.stringify({ images: images.length, crops: total, seconds, rssMiB: peakRssBytes() / 2 ** 20 }))
await store.close()
