/**
 * `npm run bench:window`: concurrent crops on one server (issue 12, part 2).
 *
 * 1. 64 concurrent 512x512 crops over one 4096x4096 window of the benchmark image, served with
 *    the decoded-tile cache (single-flight, 64 MiB: `TileCache`'s default, which holds the
 *    window's 54 MiB of tiles; `tessera serve` keeps 24 MiB unless `--tile-cache` says
 *    otherwise) and without it, in alternating passes of one run: requests/s, p50/p99, and
 *    tiles decoded against the distinct tiles the requests touched (targets: <= 1.2x, and >= 2x
 *    the req/s without shared decoding).
 * 2. 64 concurrent 512x512 crops anywhere in the image (default server): p99 against p50
 *    (target: <= 4x).
 *
 *   npm run bench:window [-- --store DIR] [--cid CID] [--duration 8] [--connections 64] [--passes 2] [--format raw] [--seed 1]
 *
 * Each pass's server is a child process (window-server.mjs: createServer of the build, dist/,
 * over the store) that reports the cache's counters over IPC; the load generator (load.ts, its
 * connections open before the clock starts) runs here and shares the two cores with it.
 */
import { fork } from 'node:child_process'
import { loadavg } from 'node:os'
import { parseArgs } from 'node:util'
import { openImage, openStore, type TileCacheStats } from '../../src/image.js'
import { random } from '../lib.js'
import { type LoadResult, load } from './load.js'

const { values } = parseArgs({
  options: {
    store: { type: 'string', default: 'bench/data/bench-store' },
    cid: { type: 'string' },
    duration: { type: 'string', default: '8' },
    connections: { type: 'string', default: '64' },
    passes: { type: 'string', default: '2' },
    format: { type: 'string', default: 'raw' },
    seed: { type: 'string', default: '1' },
  },
})
const duration = Number(values.duration)
const connections = Number(values.connections)
const WINDOW = 4096
const CROP = 512

const store = await openStore(values.store!)
try {
  let cid: string | undefined = values.cid
  if (cid === undefined)
    for await (const pin of store.pins()) {
      cid = pin.cid.toString()
      break
    }
  if (cid === undefined) throw new Error(`No image in ${values.store}: import bench/data/big.png first`)
  const image = await openImage(store, cid)
  const { width: W, height: H, tileSize } = image.manifest
  const pick = random(Number(values.seed))
  const wx = Math.floor(pick() * (W - WINDOW))
  const wy = Math.floor(pick() * (H - WINDOW))
  const cropPath = (x: number, y: number) => `/images/${cid}/crop?region=${x},${y},${CROP},${CROP}&format=${values.format}`
  console.log(
    `image ${cid} (${W}x${H}, ${tileSize}-px tiles); window ${wx},${wy},${WINDOW},${WINDOW}; ${connections} connections, ${duration} s per pass; load ${loadavg()[0]!.toFixed(1)}`,
  )

  /** Runs `measure` against a fresh server process (with a fresh cache, or none); returns its result and the cache's counters over it. */
  async function withServer<T>(cached: boolean, measure: (base: string) => Promise<T>) {
    const server = fork(new URL('./window-server.mjs', import.meta.url), [values.store!, cached ? 'cache' : 'none'], { execArgv: [] })
    const reply = () =>
      new Promise<{ port?: number; stats?: TileCacheStats }>((resolve, reject) => {
        server.once('message', (message) => resolve(message as { port?: number; stats?: TileCacheStats }))
        server.once('error', reject)
      })
    try {
      const { port } = await reply()
      const base = `http://127.0.0.1:${port}`
      // Warm the process (JIT, index blocks) outside the window: the cache starts cold for it.
      const warm = random(Number(values.seed) + 11)
      const left = Math.max(0, wx - CROP)
      const right = Math.max(0, W - CROP - (wx + WINDOW))
      await load({
        base,
        connections: 4,
        duration: 2,
        path: () => {
          const at = Math.floor(warm() * (left + right))
          return cropPath(at < left ? at : wx + WINDOW + (at - left), Math.floor(warm() * (H - CROP)))
        },
      })
      server.send('stats')
      const before = (await reply()).stats
      const result = await measure(base)
      server.send('stats')
      const after = (await reply()).stats
      const stats =
        after && before ? { ...after, requested: after.requested - before.requested, decoded: after.decoded - before.decoded } : undefined
      return { result, stats }
    } finally {
      server.kill()
    }
  }

  const line = (r: LoadResult) =>
    `${r.perSecond.toFixed(1)} req/s, p50 ${r.p50.toFixed(0)} ms, p99 ${r.p99.toFixed(0)} ms (${(r.p99 / r.p50).toFixed(1)}x), max ${r.max.toFixed(0)} ms${r.failed ? `, ${r.failed} failed` : ''}`

  console.log('\n1. crops over one 4096x4096 window')
  const rows: Array<{ cached: boolean; result: LoadResult; touched: number; stats: TileCacheStats | undefined }> = []
  for (let i = 0; i < Number(values.passes); i++) {
    for (const cached of i % 2 === 0 ? [false, true] : [true, false]) {
      const next = random(Number(values.seed) + 7)
      const touched = new Set<string>()
      const path = () => {
        const x = wx + Math.floor(next() * (WINDOW - CROP))
        const y = wy + Math.floor(next() * (WINDOW - CROP))
        for (let r = Math.floor(y / tileSize); r <= Math.floor((y + CROP - 1) / tileSize); r++)
          for (let c = Math.floor(x / tileSize); c <= Math.floor((x + CROP - 1) / tileSize); c++) touched.add(`${c},${r}`)
        return cropPath(x, y)
      }
      const { result, stats } = await withServer(cached, (base) => load({ base, connections, duration, path }))
      rows.push({ cached, result, touched: touched.size, stats })
      const tiles = stats
        ? `; tiles requested ${stats.requested}, decoded ${stats.decoded} of ${touched.size} distinct touched (${(stats.decoded / touched.size).toFixed(2)}x)`
        : ''
      console.log(`${cached ? 'cache   ' : 'no cache'}: ${line(result)}${tiles}`)
    }
  }
  const mean = (cached: boolean) => {
    const own = rows.filter((row) => row.cached === cached)
    return own.reduce((sum, row) => sum + row.result.perSecond, 0) / own.length
  }
  const ratios = rows.filter((row) => row.stats).map((row) => (row.stats!.decoded / row.touched).toFixed(2))
  console.log(
    `req/s with the cache / without: ${mean(true).toFixed(1)} / ${mean(false).toFixed(1)} = ${(mean(true) / mean(false)).toFixed(2)}x (target >= 2x); tiles decoded / distinct touched: ${ratios.join(', ')} (target <= 1.2x)`,
  )

  console.log('\n2. crops anywhere in the image (default server)')
  for (let i = 0; i < Number(values.passes); i++) {
    const next = random(Number(values.seed) + 100 + i)
    const path = () => cropPath(Math.floor(next() * (W - CROP)), Math.floor(next() * (H - CROP)))
    const { result } = await withServer(true, (base) => load({ base, connections, duration, path }))
    console.log(`pass ${i + 1}: ${line(result)} (target p99 <= 4x p50); load ${loadavg()[0]!.toFixed(1)}`)
  }
} finally {
  await store.close()
}
