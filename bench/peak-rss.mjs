// Preloaded with `node --import ./bench/peak-rss.mjs ...`: on exit, reports the process's peak
// resident set size in KiB (VmHWM, so native allocations such as libvips count too; not
// ru_maxrss, which on Linux starts at the bench harness's own size: src/peak-rss.ts). The
// harness builds dist/ first.
import { writeSync } from 'node:fs'
import { peakRssBytes } from '../dist/peak-rss.js'

process.on('exit', () => {
  const file = process.env.TESSERA_BENCH_RSS_FD
  if (file) writeSync(Number(file), `${Math.round(peakRssBytes() / 1024)}\n`)
})
