/**
 * `npm run bench:http`: `tessera serve` under load on loopback, side by side with a sharp-based
 * IIIF server (iiif-processor behind node:http, bench/http/peer.ts) serving a pyramidal tiled
 * TIFF of the same image, in one run: random 512x512 crops (raw and png) and random IIIF tiles
 * (256 px jpg, every scale factor from 1 to 64), at 1, 16 and 64 connections (autocannon).
 * Reports requests/s, p50/p99 latency and each server's peak RSS. Machines here are shared
 * and noisy: read the ratios.
 *
 *   npm run bench:http [-- --data DIR] [--duration 8] [--connections 1,16,64] [--seed 1]
 *
 * Makes, if missing, the benchmark image (bench/make-image.ts), `http-store` (big.png imported
 * with its pyramid) and `big-pyramid-deflate.tif` (libvips).
 */
import { spawn, spawnSync } from 'node:child_process'
import { createReadStream, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer as createNetServer } from 'node:net'
import { join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { random } from '../lib.js'
import { benchImageReady, makeBenchImage } from '../make-image.js'

const { values } = parseArgs({
  options: {
    data: { type: 'string', default: 'bench/data' },
    duration: { type: 'string', default: '8' },
    connections: { type: 'string', default: '1,16,64' },
    seed: { type: 'string', default: '1' },
  },
})
const data = resolve(values.data!)
const duration = Number(values.duration)
const connectionCounts = values.connections!.split(',').map(Number)
const cli = resolve('bin/tessera.js')
const store = join(data, 'http-store')
const pyramidTiff = join(data, 'big-pyramid-deflate.tif')
const TILE = 256

function run(command: string, args: string[]): string {
  const result = spawnSync(command, args, { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' })
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed`)
  return result.stdout
}

async function freePort(): Promise<number> {
  const server = createNetServer()
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
  const { port } = server.address() as { port: number }
  await new Promise((done) => server.close(done))
  return port
}

/** Starts a server process and waits until it answers `probe`. */
async function start(name: string, args: string[], base: string, probe: string) {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'] })
  for (let i = 0; i < 600; i++) {
    const ok = await fetch(`${base}${probe}`).then(
      (r) => r.ok,
      () => false,
    )
    if (ok) return child
    if (child.exitCode !== null) break
    await sleep(100)
  }
  child.kill('SIGKILL')
  throw new Error(`${name} did not start`)
}

/** Peak resident memory of `pid` over a run: VmHWM after resetting it (clear_refs 5), else sampled VmRSS. */
function rssWatch(pid: number) {
  const status = () => readFileSync(`/proc/${pid}/status`, 'utf8')
  const field = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status())?.[1] ?? 0) / 1024
  let reset = true
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5')
  } catch {
    reset = false
  }
  let sampled = field('VmRSS')
  const timer = setInterval(() => {
    sampled = Math.max(sampled, field('VmRSS'))
  }, 25)
  return () => {
    clearInterval(timer)
    return Math.max(sampled, reset ? field('VmHWM') : 0)
  }
}

interface Scenario {
  readonly name: string
  /** Paths for Tessera and for the peer, from the same random draw. */
  readonly paths: (next: () => number) => [string, string]
}

async function main() {
  if (!benchImageReady(data)) {
    console.log(`Building the benchmark image in ${data} (5-15 minutes, ~2.7 GB)...`)
    await makeBenchImage(data)
  }
  if (!existsSync('dist/http/server.js')) run('npm', ['run', 'build'])
  if (!existsSync(join(store, 'VERSION'))) {
    console.log(`Importing big.png with its pyramid into ${store}...`)
    run(process.execPath, [cli, 'import', join(data, 'big.png'), '--pyramid', '--store', store])
  }
  const cid = run(process.execPath, [cli, 'ls', '--store', store]).split('\t')[0]!.trim()
  if (!existsSync(pyramidTiff)) {
    console.log(`Writing ${pyramidTiff} (libvips, deflate, 256 px tiles, pyramid)...`)
    run('vips', [
      'tiffsave',
      join(data, 'big.ppm'),
      pyramidTiff,
      '--tile',
      '--tile-width',
      '256',
      '--tile-height',
      '256',
      '--pyramid',
      '--compression',
      'deflate',
      '--predictor',
      'horizontal',
      '--bigtiff',
    ])
  }
  const info = JSON.parse(run(process.execPath, [cli, 'info', cid, '--json', '--store', store])) as { width: number; height: number }
  const { width: W, height: H } = info

  const crop = (format: string): Scenario => ({
    name: `crop 512x512 ${format}`,
    paths: (next) => {
      const x = Math.floor(next() * (W - 512))
      const y = Math.floor(next() * (H - 512))
      return [`/images/${cid}/crop?region=${x},${y},512,512&format=${format}`, `/crop?region=${x},${y},512,512&format=${format}`]
    },
  })
  const tiles: Scenario = {
    name: 'IIIF tile 256 jpg',
    paths: (next) => {
      // A tile of a random level with scale factor 1..64, as OpenSeadragon asks for it.
      const s = 2 ** Math.floor(next() * 7)
      const lw = Math.ceil(W / s)
      const lh = Math.ceil(H / s)
      const c = Math.floor(next() * Math.ceil(lw / TILE))
      const r = Math.floor(next() * Math.ceil(lh / TILE))
      const x = c * TILE * s
      const y = r * TILE * s
      const region = `${x},${y},${Math.min(TILE * s, W - x)},${Math.min(TILE * s, H - y)}`
      const size = `${Math.min(TILE, lw - c * TILE)},${Math.min(TILE, lh - r * TILE)}`
      const tail = `${region}/${size}/0/default.jpg`
      return [`/iiif/3/${cid}/${tail}`, `/iiif/3/big/${tail}`]
    },
  }
  const scenarios = [crop('raw'), crop('png'), tiles]

  // Both servers read from the page cache, not the disk: read their files once, whole.
  for (const file of [...readdirSync(join(store, 'packs')).map((name) => join(store, 'packs', name)), pyramidTiff]) {
    const stream = createReadStream(file, { highWaterMark: 8 << 20 })
    for await (const _ of stream) {
      // discard
    }
  }

  const tesseraPort = await freePort()
  const peerPort = await freePort()
  const servers = [
    {
      name: 'Tessera',
      base: `http://127.0.0.1:${tesseraPort}`,
      child: await start(
        'tessera serve',
        [cli, 'serve', '--store', store, '--port', String(tesseraPort), '--log-level', 'warn'],
        `http://127.0.0.1:${tesseraPort}`,
        `/images/${cid}`,
      ),
    },
    {
      name: 'iiif-processor',
      base: `http://127.0.0.1:${peerPort}`,
      child: await start(
        'peer',
        ['--import', 'tsx', resolve('bench/http/peer.ts'), '--tiff', pyramidTiff, '--port', String(peerPort)],
        `http://127.0.0.1:${peerPort}`,
        '/iiif/3/big/info.json',
      ),
    },
  ]
  try {
    // Both answer the same request with the same pixels (raw crops are lossless).
    const [t, p] = crop('raw').paths(random(99))
    const [a, b] = await Promise.all([fetch(`${servers[0]!.base}${t}`), fetch(`${servers[1]!.base}${p}`)])
    const same = Buffer.from(await a.arrayBuffer()).equals(Buffer.from(await b.arrayBuffer()))
    console.log(`image ${cid} (${W}x${H}); the same raw crop from both servers is ${same ? 'identical' : 'DIFFERENT'}`)

    const rows: string[] = []
    const results: unknown[] = []
    for (const scenario of scenarios) {
      for (const [index, server] of servers.entries()) {
        // Warm the page cache and the lazy paths (sharp, index blocks) outside the measurement.
        const warm = random(Number(values.seed) + 1000)
        await autocannon({
          url: server.base,
          connections: 4,
          duration: 2,
          requests: [{ method: 'GET', setupRequest: (req) => ({ ...req, path: scenario.paths(warm)[index]! }) }],
        })
      }
      for (const connections of connectionCounts) {
        const cells: string[] = []
        for (const [index, server] of servers.entries()) {
          const next = random(Number(values.seed))
          const peak = rssWatch(server.child.pid!)
          const result = await autocannon({
            url: server.base,
            connections,
            duration,
            timeout: 60,
            requests: [{ method: 'GET', setupRequest: (req) => ({ ...req, path: scenario.paths(next)[index]! }) }],
          })
          const rss = peak()
          const failed = result.errors + result.timeouts + result.non2xx
          results.push({ scenario: scenario.name, connections, server: server.name, result, peakRssMiB: rss })
          cells.push(
            `${result.requests.average.toFixed(0)}${failed > 0 ? ` (${failed} failed)` : ''}`,
            String(result.latency.p50),
            String(result.latency.p99),
            rss.toFixed(0),
          )
          console.log(
            `${scenario.name} x${connections} ${server.name}: ${result.requests.average.toFixed(1)} req/s, p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms, peak RSS ${rss.toFixed(0)} MiB${failed > 0 ? `, ${failed} failed` : ''}`,
          )
        }
        rows.push(`| ${scenario.name} | ${connections} | ${cells.join(' | ')} |`)
      }
    }
    // One whole-image export streamed (1.27 GB of raw samples): memory must not follow the size.
    const tessera = servers[0]!
    const peak = rssWatch(tessera.child.pid!)
    const started = process.hrtime.bigint()
    const response = await fetch(`${tessera.base}/images/${cid}/export?format=raw`)
    let bytes = 0
    for await (const chunk of response.body!) bytes += (chunk as Uint8Array).length
    const seconds = Number(process.hrtime.bigint() - started) / 1e9
    const exportRss = peak()
    results.push({ scenario: 'export raw', bytes, seconds, peakRssMiB: exportRss })
    console.log(
      `\nexport of level 0 as raw: ${(bytes / 2 ** 20).toFixed(0)} MiB streamed in ${seconds.toFixed(1)} s (${(bytes / 2 ** 20 / seconds).toFixed(0)} MiB/s), Tessera peak RSS ${exportRss.toFixed(0)} MiB`,
    )
    writeFileSync(join(data, 'http-results.json'), JSON.stringify(results, null, 2))
    console.log(
      `\n| request | conn. | Tessera req/s | p50 ms | p99 ms | peak RSS MiB | iiif-processor req/s | p50 ms | p99 ms | peak RSS MiB |`,
    )
    console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
    for (const row of rows) console.log(row)
  } finally {
    for (const server of servers) server.child.kill('SIGTERM')
  }
}

await main()
