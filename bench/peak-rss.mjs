// Preloaded with `node --import ./bench/peak-rss.mjs ...`: on exit, reports the process's peak
// resident set size (getrusage ru_maxrss, so native allocations such as libvips count too).
import { writeSync } from 'node:fs'

process.on('exit', () => {
  const file = process.env.TESSERA_BENCH_RSS_FD
  if (file) writeSync(Number(file), `${process.resourceUsage().maxRSS}\n`)
})
