/**
 * `npm run bench:soak`: `tessera serve` under a long mixed load on loopback (issue 10, finding
 * 7, 9, 11): many connections asking for IIIF tiles, crops, `full/max` renders and small uploads,
 * beside slow clients (uploads that send their headers and stall, requests whose headers never
 * end, readers that read slowly or not at all). Reports requests/s, p50/p99/max latency and
 * statuses per kind, the server's peak RSS (VmHWM) and its RSS once idle, and checks the targets:
 * no 5xx but 503 with Retry-After, p99 <= 5x p50 for tiles and crops, peak RSS <= 300 MiB, every
 * legitimate upload succeeds while the stalled ones stall.
 *
 *   npm run bench:soak [-- --duration 60] [--connections 64] [--small] [--seed 1]
 *                      [--mix tile=50,crop=45,full=4,upload=1] [--stalled-uploads 5] [--stalled-headers 2]
 *                      [--slow-readers 3] [--idle-readers 2] [--dist] [--server-env NAME=VALUE]... [--server-arg ARG]...
 *                      [--concurrency N]
 *
 * The server runs the current source, bundled as `npm run build` bundles it (into
 * bench/data/soak-build/; `--dist` runs bin/tessera.js instead). The store is
 * bench/data/soak-store, big.png imported with its pyramid (made if missing, ~1 minute;
 * bench/make-image.ts builds big.png if it is missing too); `--small` uses a fresh temporary
 * store with a 4096x3072 synthetic image instead, for quick runs. Uploads add small images to
 * the store. The load generator runs in this process and shares the cores with the server.
 */
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { Agent, request as httpRequest } from 'node:http'
import { connect, createServer as createNetServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { build } from 'esbuild'
import { quantile, random, wrapperEnv } from './lib.js'
import { benchImageReady, makeBenchImage } from './make-image.js'

const { values } = parseArgs({
  options: {
    data: { type: 'string', default: 'bench/data' },
    duration: { type: 'string', default: '60' },
    connections: { type: 'string', default: '64' },
    seed: { type: 'string', default: '1' },
    small: { type: 'boolean', default: false },
    dist: { type: 'boolean', default: false },
    'stalled-uploads': { type: 'string', default: '5' },
    'stalled-headers': { type: 'string', default: '2' },
    'slow-readers': { type: 'string', default: '3' },
    'idle-readers': { type: 'string', default: '2' },
    'server-env': { type: 'string', multiple: true, default: [] },
    'server-arg': { type: 'string', multiple: true, default: [] },
    concurrency: { type: 'string' },
    idle: { type: 'string', default: '10' },
    mix: { type: 'string', default: 'tile=50,crop=45,full=4,upload=1' },
  },
})
const data = resolve(values.data!)
const duration = Number(values.duration) * 1000
const connections = Number(values.connections)
const seed = Number(values.seed)
const TILE = 256

const KINDS = ['tile', 'crop', 'full', 'upload'] as const
type Kind = (typeof KINDS)[number]
/** Kinds of request and their share of the mixed load (`--mix tile=50,crop=45,full=4,upload=1`). */
const MIX: Array<[Kind, number]> = values.mix!.split(',').map((part) => {
  const [kind, weight] = part.split('=') as [Kind, string]
  if (!KINDS.includes(kind) || !(Number(weight) >= 0)) throw new Error(`--mix: expected kind=weight with kind in ${KINDS.join(', ')}`)
  return [kind, Number(weight)]
})

function run(command: string, args: string[], env?: NodeJS.ProcessEnv): string {
  const result = spawnSync(command, args, { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', env: env ?? process.env })
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

/** The CLI to run: the current source bundled like `npm run build` does (scripts/bundle.mjs), or the build. */
async function cli(): Promise<string> {
  if (values.dist) return resolve('bin/tessera.js')
  const outdir = join(data, 'soak-build')
  // The entry points of scripts/bundle.mjs (the CLI and its worker threads), read from it.
  const entryPoints: Record<string, string> = {}
  for (const [, name, path] of readFileSync('scripts/bundle.mjs', 'utf8').matchAll(/['"]?([\w-]+)['"]?:\s*'(src\/[^']+\.ts)'/g)) {
    entryPoints[name!] = path!
  }
  await rm(outdir, { recursive: true, force: true })
  await build({
    entryPoints,
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    external: ['sharp', 'level', 'zstd-napi'],
    banner: { js: "import { createRequire as __tesseraRequire } from 'node:module'; const require = __tesseraRequire(import.meta.url);" },
    logLevel: 'warning',
  })
  const entry = join(outdir, 'tessera.js')
  writeFileSync(entry, "import { main } from './main.js'\nprocess.exitCode = await main(process.argv.slice(2))\n")
  return entry
}

/** A PPM of `width` x `height` smooth gradients and noise, deterministic for `seed`. */
function syntheticPpm(width: number, height: number, seed: number): Buffer {
  const next = random(seed)
  const header = Buffer.from(`P6\n${width} ${height}\n255\n`)
  const pixels = Buffer.alloc(width * height * 3)
  const [a, b, c] = [next() * 0.05, next() * 0.05, next() * 0.05]
  for (let y = 0, at = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const n = (next() * 24) | 0
      pixels[at++] = (128 + 100 * Math.sin(x * a + y * b) + n) & 255
      pixels[at++] = (128 + 100 * Math.sin(y * c + x * b * 0.5) + n) & 255
      pixels[at++] = ((x ^ y) + n) & 255
    }
  }
  return Buffer.concat([header, pixels])
}

/** The store and the image to serve: the benchmark image (persistent store), or a small one in a temporary store. */
async function prepareStore(tessera: string): Promise<{ store: string; cid: string; cleanup: () => Promise<void> }> {
  if (values.small) {
    const dir = await mkdtemp(join(tmpdir(), 'tessera-soak-'))
    const source = join(dir, 'small.ppm')
    await writeFile(source, syntheticPpm(4096, 3072, seed))
    const store = join(dir, 'store')
    const cid = run(process.execPath, [tessera, 'import', source, '--pyramid', '--store', store]).trim()
    return { store, cid, cleanup: () => rm(dir, { recursive: true, force: true }) }
  }
  if (!benchImageReady(data)) {
    console.log(`Building the benchmark image in ${data} (5-15 minutes, ~2.7 GB)...`)
    await makeBenchImage(data)
  }
  const store = join(data, 'soak-store')
  // `ls` refuses a store that does not exist yet (ERR_STORE): the first run imports into it.
  let line = (existsSync(store) ? run(process.execPath, [tessera, 'ls', '--store', store]) : '')
    .split('\n')
    .find((l) => l.endsWith('\tbig.png'))
  if (line === undefined) {
    console.log(`Importing big.png with its pyramid into ${store} (about a minute)...`)
    await mkdir(store, { recursive: true })
    run(process.execPath, [tessera, 'import', join(data, 'big.png'), '--pyramid', '--store', store])
    line = run(process.execPath, [tessera, 'ls', '--store', store])
      .split('\n')
      .find((l) => l.endsWith('\tbig.png'))!
  }
  return { store, cid: line.split('\t')[0]!, cleanup: async () => {} }
}

/** Peak resident memory of `pid`: VmHWM after resetting it (clear_refs 5), else the largest sampled VmRSS. */
function rssWatch(pid: number) {
  const field = (name: string) =>
    Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024
  let reset = true
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5')
  } catch {
    reset = false
  }
  let sampled = field('VmRSS')
  const timeline: number[] = []
  let ticks = 0
  const timer = setInterval(() => {
    const rss = field('VmRSS')
    sampled = Math.max(sampled, rss)
    if (++ticks % 50 === 0) timeline.push(Math.round(rss))
  }, 100)
  return {
    rss: () => field('VmRSS'),
    stop: () => {
      clearInterval(timer)
      return { peak: Math.max(sampled, reset ? field('VmHWM') : 0), hwm: reset, timeline }
    },
  }
}

interface Sample {
  readonly kind: string
  readonly status: number | string
  readonly ms: number
  readonly retryAfter: boolean
}

/** One HTTP request through `agent`, its body read whole; resolves with its status and latency (to the last byte). */
function fetchOne(agent: Agent, port: number, method: string, path: string, body?: Buffer): Promise<Omit<Sample, 'kind'>> {
  const started = performance.now()
  return new Promise((done) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, method, path, agent, headers: body ? { 'content-length': body.length } : {}, timeout: 120_000 },
      (res) => {
        res.on('data', () => {})
        res.on('end', () =>
          done({ status: res.statusCode ?? 0, ms: performance.now() - started, retryAfter: res.headers['retry-after'] !== undefined }),
        )
        res.on('error', () => done({ status: 'aborted', ms: performance.now() - started, retryAfter: false }))
      },
    )
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', (error) =>
      done({ status: (error as NodeJS.ErrnoException).code ?? error.message, ms: performance.now() - started, retryAfter: false }),
    )
    req.end(body)
  })
}

/** A small PAM with pixels nobody uploaded before (`n` makes it unique). */
function uploadBody(n: number): Buffer {
  const w = 96
  const h = 64
  const header = Buffer.from(`P7\nWIDTH ${w}\nHEIGHT ${h}\nDEPTH 3\nMAXVAL 255\nTUPLTYPE RGB\nENDHDR\n`)
  const pixels = Buffer.alloc(w * h * 3)
  const next = random(seed * 1_000_003 + n)
  for (let i = 0; i < pixels.length; i++) pixels[i] = (next() * 256) | 0
  return Buffer.concat([header, pixels])
}

/** A raw socket that sends `text` and then nothing: resolves with the first status line it gets and when the server closed it. */
function stall(port: number, text: string, end: number): Promise<{ status: string; ms: number; closedByServer: boolean }> {
  const started = performance.now()
  return new Promise((done) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(text))
    let received = ''
    let closedByServer = true
    const timer = setTimeout(
      () => {
        closedByServer = false
        socket.destroy()
      },
      Math.max(0, end - Date.now()),
    )
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1')
    })
    socket.on('error', () => {})
    socket.on('close', () => {
      clearTimeout(timer)
      done({ status: /^HTTP\/1\.1 (\d+)/.exec(received)?.[1] ?? 'closed', ms: performance.now() - started, closedByServer })
    })
  })
}

/**
 * A client that asks for a large body and reads about `rate` bytes/s of it (0: never reads). At
 * `end` it reads what is left for up to 3 s: a body that ends short of its Content-Length was
 * cut by the server.
 */
function slowRead(
  port: number,
  path: string,
  rate: number,
  end: number,
): Promise<{ status: string; bytes: number; closedByServer: boolean }> {
  return new Promise((done) => {
    const socket = connect({ port, host: '127.0.0.1' }, () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`)
    })
    socket.pause()
    let bytes = 0
    let head = ''
    const take = (chunk: Buffer | null) => {
      if (chunk === null) return false
      if (head.length < 4096) head += chunk.subarray(0, 4096).toString('latin1')
      bytes += chunk.length
      return true
    }
    const tick =
      rate > 0
        ? setInterval(() => {
            for (let budget = rate / 4; budget > 0; ) {
              const chunk = socket.read() as Buffer | null
              if (!take(chunk)) break
              budget -= chunk!.length
            }
          }, 250)
        : undefined
    let ended = false
    // A connection the server closed while its data was unread may arrive as a reset.
    let reset = false
    socket.on('error', () => {
      reset = true
    })
    socket.on('end', () => {
      ended = true
    })
    const expected = () => {
      const at = head.indexOf('\r\n\r\n')
      const length = /content-length: (\d+)/i.exec(head)?.[1]
      return at < 0 || length === undefined ? Number.POSITIVE_INFINITY : at + 4 + Number(length)
    }
    setTimeout(
      () => {
        clearInterval(tick)
        socket.on('data', take)
        socket.resume()
        const finish = () => {
          socket.destroy()
          done({ status: /^HTTP\/1\.1 (\d+)/.exec(head)?.[1] ?? 'none', bytes, closedByServer: reset || (ended && bytes < expected()) })
        }
        const limit = setTimeout(finish, 3000)
        socket.once('close', () => {
          clearTimeout(limit)
          finish()
        })
      },
      Math.max(0, end - Date.now()),
    )
  })
}

function pick<T>(next: () => number, table: readonly (readonly [T, number])[]): T {
  const total = table.reduce((sum, [, w]) => sum + w, 0)
  let r = next() * total
  for (const [value, weight] of table) {
    r -= weight
    if (r < 0) return value
  }
  return table.at(-1)![0]
}

async function main() {
  const uptimeBefore = run('uptime', []).trim()
  const tessera = await cli()
  const { store, cid, cleanup } = await prepareStore(tessera)
  const port = await freePort()
  // The server as `tessera serve` runs: with the malloc settings and V8 options bin/tessera
  // (the package's bin) gives it, unless the environment or --server-env says otherwise.
  const env = wrapperEnv('serve')
  for (const pair of values['server-env']!) {
    const at = pair.indexOf('=')
    env[pair.slice(0, at)] = pair.slice(at + 1)
  }
  const args = [tessera, 'serve', '--store', store, '--port', String(port), '--log-level', 'warn']
  if (values.concurrency !== undefined) args.push('--concurrency', values.concurrency)
  args.push(...values['server-arg']!)
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'], env })
  try {
    for (let i = 0; ; i++) {
      const ok = await fetch(`http://127.0.0.1:${port}/images/${cid}/info`).then(
        (r) => r.ok,
        () => false,
      )
      if (ok) break
      if (i > 600 || child.exitCode !== null) throw new Error('tessera serve did not start')
      await sleep(100)
    }
    const info = (await (await fetch(`http://127.0.0.1:${port}/images/${cid}/info`)).json()) as { width: number; height: number }
    const { width: W, height: H } = info
    console.log(`soak: ${cid} (${W}x${H}), ${connections} connections for ${duration / 1000} s; ${uptimeBefore}`)

    const paths = (next: () => number): Record<Exclude<Kind, 'upload'>, () => string> => ({
      tile: () => {
        const s = 2 ** Math.floor(next() * 7)
        const lw = Math.ceil(W / s)
        const lh = Math.ceil(H / s)
        const c = Math.floor(next() * Math.ceil(lw / TILE))
        const r = Math.floor(next() * Math.ceil(lh / TILE))
        const x = c * TILE * s
        const y = r * TILE * s
        const region = `${x},${y},${Math.min(TILE * s, W - x)},${Math.min(TILE * s, H - y)}`
        const size = `${Math.min(TILE, lw - c * TILE)},${Math.min(TILE, lh - r * TILE)}`
        return `/iiif/3/${cid}/${region}/${size}/0/default.jpg`
      },
      crop: () => {
        const x = Math.floor(next() * (W - 512))
        const y = Math.floor(next() * (H - 512))
        return `/images/${cid}/crop?region=${x},${y},512,512&format=${next() < 0.5 ? 'raw' : 'png'}`
      },
      full: () => `/iiif/3/${cid}/full/max/0/default.${next() < 0.5 ? 'jpg' : 'webp'}`,
    })

    // Warm up: the page cache, sharp, the index blocks.
    const warmAgent = new Agent({ keepAlive: true, maxSockets: 4 })
    const warm = paths(random(seed + 1000))
    for (let i = 0; i < 40; i++) await fetchOne(warmAgent, port, 'GET', i % 2 ? warm.tile() : warm.crop())
    warmAgent.destroy()

    const warmRss = readFileSync(`/proc/${child.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)?.[1]
    const watch = rssWatch(child.pid!)
    const started = Date.now()
    const end = started + duration
    const samples: Sample[] = []
    const agent = new Agent({ keepAlive: true, maxSockets: connections })
    let uploads = 0
    const workers = Array.from({ length: connections }, async (_, w) => {
      const next = random(seed * 7919 + w)
      const p = paths(next)
      while (Date.now() < end) {
        const kind = pick(next, MIX)
        const result =
          kind === 'upload'
            ? await fetchOne(agent, port, 'POST', `/images?name=soak-${w}-${uploads}.pam&label=soak`, uploadBody(uploads++))
            : await fetchOne(agent, port, 'GET', p[kind]())
        samples.push({ kind, ...result })
      }
    })
    const stalls: Array<Promise<void>> = []
    const stallResults: Array<{ kind: string; status: string; ms: number; closedByServer: boolean }> = []
    const stallLoop = (kind: string, text: string) =>
      (async () => {
        while (Date.now() < end) stallResults.push({ kind, ...(await stall(port, text, end)) })
      })()
    for (let i = 0; i < Number(values['stalled-uploads']); i++) {
      stalls.push(
        stallLoop('stalled upload', `POST /images?name=stalled.png HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000\r\n\r\n`),
      )
    }
    for (let i = 0; i < Number(values['stalled-headers']); i++) {
      stalls.push(stallLoop('stalled headers', `GET /images/${cid}/info HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: `))
    }
    const readers: Array<Promise<{ kind: string; status: string; bytes: number; closedByServer: boolean }>> = []
    const bigCrop = `/images/${cid}/crop?region=0,0,${Math.min(W, 4096)},${Math.min(H, 4096)}&format=raw`
    for (let i = 0; i < Number(values['idle-readers']); i++) {
      readers.push(slowRead(port, bigCrop, 0, end).then((r) => ({ kind: 'idle reader', ...r })))
    }
    for (let i = 0; i < Number(values['slow-readers']); i++) {
      readers.push(slowRead(port, bigCrop, 64 << 10, end).then((r) => ({ kind: 'slow reader (64 KiB/s)', ...r })))
    }
    await Promise.all(workers)
    const elapsed = (Date.now() - started) / 1000
    await Promise.all(stalls)
    const readerResults = await Promise.all(readers)
    agent.destroy()
    const memory = watch.stop()
    // Memory given back once idle.
    await sleep(Number(values.idle) * 1000)
    const idleRss = watch.rss()
    const uptimeAfter = run('uptime', []).trim()

    const rows: string[] = []
    const summary: Record<string, unknown> = {}
    const failures: string[] = []
    for (const [kind] of MIX) {
      const of = samples.filter((s) => s.kind === kind)
      const ok = of.filter((s) => typeof s.status === 'number' && s.status < 400).map((s) => s.ms)
      const statuses: Record<string, number> = {}
      for (const s of of) statuses[s.status] = (statuses[s.status] ?? 0) + 1
      const p50 = ok.length ? quantile(ok, 0.5) : Number.NaN
      const p99 = ok.length ? quantile(ok, 0.99) : Number.NaN
      const max = ok.length ? Math.max(...ok) : Number.NaN
      summary[kind] = { count: of.length, perSecond: of.length / elapsed, p50, p99, max, statuses }
      const statusText = Object.entries(statuses)
        .map(([s, n]) => `${s}: ${n}`)
        .join(', ')
      rows.push(
        `| ${kind} | ${(of.length / elapsed).toFixed(1)} | ${p50.toFixed(0)} | ${p99.toFixed(0)} | ${max.toFixed(0)} | ${(p99 / p50).toFixed(1)} | ${statusText} |`,
      )
      for (const s of of) {
        if (typeof s.status !== 'number') failures.push(`${kind}: ${s.status}`)
        else if (s.status >= 500 && !(s.status === 503 && s.retryAfter)) failures.push(`${kind}: ${s.status}`)
      }
      if ((kind === 'tile' || kind === 'crop') && p99 > 5 * p50)
        failures.push(`${kind}: p99 ${p99.toFixed(0)} ms > 5x p50 ${p50.toFixed(0)} ms`)
      if (kind === 'upload' && of.some((s) => s.status !== 200 && s.status !== 201)) failures.push('upload: not every upload succeeded')
    }
    if (memory.peak > 300) failures.push(`peak RSS ${memory.peak.toFixed(0)} MiB > 300 MiB`)
    const total = samples.length
    console.log(`\n${total} requests in ${elapsed.toFixed(1)} s: ${(total / elapsed).toFixed(1)} req/s; ${uptimeAfter}`)
    console.log('\n| kind | req/s | p50 ms | p99 ms | max ms | p99/p50 | statuses |')
    console.log('| --- | ---: | ---: | ---: | ---: | ---: | --- |')
    for (const row of rows) console.log(row)
    const slow: Record<string, unknown> = {}
    for (const kind of new Set(stallResults.map((s) => s.kind))) {
      const of = stallResults.filter((s) => s.kind === kind)
      const cut = of.filter((s) => s.closedByServer)
      const statuses = [...new Set(cut.map((s) => s.status))].join('/')
      const ms = cut.map((s) => s.ms)
      slow[kind] = { connections: of.length, closedByServer: cut.length, statuses, medianMs: ms.length ? quantile(ms, 0.5) : null }
      console.log(
        `${kind}: ${of.length} connections, ${cut.length} closed by the server (${statuses || 'none'}) after a median ${ms.length ? (quantile(ms, 0.5) / 1000).toFixed(1) : '-'} s`,
      )
    }
    for (const r of readerResults) {
      console.log(
        `${r.kind}: status ${r.status}, ${(r.bytes / 2 ** 20).toFixed(2)} MiB read, ${r.closedByServer ? 'cut short by the server' : 'not cut'}`,
      )
    }
    console.log(
      `server RSS: ${(Number(warmRss) / 1024).toFixed(0)} MiB warm before the load, peak ${memory.peak.toFixed(0)} MiB (${memory.hwm ? 'VmHWM' : 'sampled VmRSS'}), idle ${values.idle} s later ${idleRss.toFixed(0)} MiB; every 5 s: ${memory.timeline.join(' ')}`,
    )
    console.log(failures.length === 0 ? 'targets: all met' : `targets missed:\n  ${[...new Set(failures)].slice(0, 20).join('\n  ')}`)
    writeFileSync(
      join(data, 'soak-results.json'),
      JSON.stringify(
        {
          cid,
          connections,
          seconds: elapsed,
          uptimeBefore,
          uptimeAfter,
          summary,
          slow,
          readers: readerResults,
          warmRss: Number(warmRss) / 1024,
          memory,
          idleRss,
          failures,
        },
        null,
        2,
      ),
    )
  } finally {
    child.kill('SIGTERM')
    await new Promise((done) => child.once('exit', done))
    await cleanup()
  }
}

await main()
