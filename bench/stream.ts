/**
 * Stream cropping (issue 12, part 1), report only: `tessera crop - --region ...` with the
 * benchmark PNG (bench/data/big.png, 29566x14321) piped on standard input, against
 * `vips extract_area` on the same PNG file; then 16 regions in one pass against one.
 *
 *   node --import tsx bench/stream.ts [--data DIR] [--runs 3]
 *
 * Targets: near the top, read <= 15% of the file in <= 1.0x vips' time; near the bottom,
 * <= 0.8x vips' time; peak RSS <= 128 MiB wherever the region lies; 16 regions <= 1.3x one.
 * Each case runs `--runs` times, alternating the tools; reported as median [min-max]. The CLI
 * runs from a bundle built here (as `npm run build` builds dist/bundle/, without touching it).
 * vips' bytes read are counted once per case with strace (read(2) calls on the PNG), if present.
 * Then the same regions over HTTP: `POST /crop` to a `tessera serve` of the same bundle, the file
 * streamed as the body (as `curl -T` sends it), timed to the response's end, with the bytes the
 * client had sent by then and the server's peak RSS.
 */
import { spawn, spawnSync } from 'node:child_process'
import { createReadStream, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { request } from 'node:http'
import { loadavg } from 'node:os'
import { basename, join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { build } from 'esbuild'
import { median } from './lib.js'

const { values } = parseArgs({
  options: {
    data: { type: 'string', default: 'bench/data' },
    runs: { type: 'string', default: '3' },
  },
})
const png = join(resolve(values.data!), 'big.png')
const runs = Number(values.runs)
if (!existsSync(png)) {
  console.log(`${png} is missing: run \`npm run bench\` once to build the benchmark image (bench/make-image.ts).`)
  process.exit(0)
}
const size = statSync(png).size
// Inside the repository (bench/data/ is git-ignored), so the bundle's external packages
// (sharp, zstd-napi) resolve from its node_modules.
const work = mkdtempSync(join(resolve(values.data!), '.stream-bench-'))
process.on('exit', () => rmSync(work, { recursive: true, force: true }))

// The CLI bundled as scripts/bundle.mjs bundles it: main and every worker entry beside it.
const workers = readdirSync('src', { recursive: true, encoding: 'utf8' }).filter((path) => path.endsWith('-worker.ts'))
await build({
  entryPoints: Object.fromEntries([['main', 'src/cli/main.ts'], ...workers.map((path) => [basename(path, '.ts'), join('src', path)])]),
  outdir: join(work, 'bundle'),
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['sharp', 'level', 'zstd-napi'],
  banner: { js: "import { createRequire as __tesseraRequire } from 'node:module'; const require = __tesseraRequire(import.meta.url);" },
  logLevel: 'warning',
})
const cli = join(work, 'cli.mjs')
writeFileSync(cli, "import { main } from './bundle/main.js'\nprocess.exitCode = await main(process.argv.slice(2))\n")

interface Run {
  readonly seconds: number
  readonly rssMiB: number
  readonly bytesRead: number | undefined
}

/** `cat big.png | tessera crop - REGIONS -o OUT --stats`: wall time of the pipeline, and the --stats line. */
function tessera(regions: readonly string[]): Run {
  const args = regions.flatMap((region) => ['--region', region])
  const out = regions.length === 1 ? join(work, 'tessera.png') : join(work, 'tessera-{i}.png')
  const command = `cat ${png} | ${process.execPath} ${cli} crop - ${args.join(' ')} -o ${out} --stats; exit \${PIPESTATUS[1]}`
  const started = process.hrtime.bigint()
  const result = spawnSync('bash', ['-c', command], { encoding: 'utf8' })
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  if (result.status !== 0) throw new Error(`tessera crop failed: ${result.stderr}`)
  const stats = /input bytes read: (\d+).*peak RSS: (\d+) MiB/.exec(result.stderr)
  if (stats === null) throw new Error(`no --stats line in ${JSON.stringify(result.stderr)}`)
  return { seconds, rssMiB: Number(stats[2]), bytesRead: Number(stats[1]) }
}

/** `vips extract_area big.png OUT.png x y w h` under GNU time (wall, peak RSS). */
function vips(region: string): Run {
  const [x, y, w, h] = region.split(',')
  const started = process.hrtime.bigint()
  const result = spawnSync('/usr/bin/time', ['-f', '%M', 'vips', 'extract_area', png, join(work, 'vips.png'), x!, y!, w!, h!], {
    encoding: 'utf8',
  })
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  if (result.status !== 0) throw new Error(`vips failed: ${result.stderr}`)
  return { seconds, rssMiB: Number(result.stderr.trim().split('\n').at(-1)) / 1024, bytesRead: undefined }
}

/** Bytes vips reads from the PNG: the sum of read(2) results on its descriptor, from strace. */
function vipsBytesRead(region: string): number | undefined {
  if (spawnSync('which', ['strace']).status !== 0) return undefined
  const [x, y, w, h] = region.split(',')
  const trace = join(work, 'strace.txt')
  spawnSync('strace', [
    '-f',
    '-e',
    'trace=openat,read,pread64',
    '-o',
    trace,
    'vips',
    'extract_area',
    png,
    join(work, 'vips.png'),
    x!,
    y!,
    w!,
    h!,
  ])
  const lines = spawnSync('cat', [trace], { encoding: 'utf8', maxBuffer: 1 << 30 }).stdout.split('\n')
  const fds = new Set<string>()
  let bytes = 0
  for (const line of lines) {
    const opened = /openat\(.*"([^"]+)".*= (\d+)$/.exec(line)
    if (opened !== null && opened[1] === png) fds.add(opened[2]!)
    const read = /(?:read|pread64)\((\d+),.*= (\d+)$/.exec(line)
    if (read !== null && fds.has(read[1]!)) bytes += Number(read[2])
  }
  return bytes
}

const fmt = (samples: readonly number[], digits = 2) =>
  `${median(samples).toFixed(digits)} [${Math.min(...samples).toFixed(digits)}-${Math.max(...samples).toFixed(digits)}]`
const pct = (bytes: number | undefined) => (bytes === undefined ? 'n/a' : `${((100 * bytes) / size).toFixed(1)}%`)

console.log(
  `big.png: ${size} bytes; ${runs} runs per case; load average before: ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`,
)
const cases = [
  ['near the top', '17000,100,512,512'],
  ['near the bottom', '17000,13700,512,512'],
] as const
const rows: string[] = []
const vipsSeconds = new Map<string, number[]>()
for (const [name, region] of cases) {
  const ours: Run[] = []
  const theirs: Run[] = []
  for (let i = 0; i < runs; i++) {
    ours.push(tessera([region]))
    theirs.push(vips(region))
  }
  vipsSeconds.set(
    region,
    theirs.map((r) => r.seconds),
  )
  const ratio = ours.map((run, i) => run.seconds / theirs[i]!.seconds)
  rows.push(
    `| ${name} (${region}) | ${fmt(ours.map((r) => r.seconds))} | ${fmt(theirs.map((r) => r.seconds))} | ${fmt(ratio)} | ` +
      `${pct(ours[0]!.bytesRead)} | ${pct(vipsBytesRead(region))} | ${Math.max(...ours.map((r) => r.rssMiB))} | ${Math.max(...theirs.map((r) => r.rssMiB)).toFixed(0)} |`,
  )
}
console.log('\n| 512x512 region | tessera s | vips s | ratio | tessera read | vips read | tessera peak RSS MiB | vips peak RSS MiB |')
console.log('| --- | --- | --- | --- | --- | --- | --- | --- |')
for (const row of rows) console.log(row)

// 16 regions over the whole height (a 4x4 grid, the last ending at the bottom) against the
// bottom one alone: both decode every row, so the difference is the cost of the 15 others.
const grid = Array.from({ length: 16 }, (_, i) => `${1000 + (i % 4) * 7000},${200 + Math.floor(i / 4) * 4500},512,512`)
const one: Run[] = []
const sixteen: Run[] = []
for (let i = 0; i < runs; i++) {
  one.push(tessera([grid[15]!]))
  sixteen.push(tessera(grid))
}
const ratio = sixteen.map((run, i) => run.seconds / one[i]!.seconds)
console.log('\n| one pass | s | peak RSS MiB |')
console.log('| --- | --- | --- |')
console.log(`| 1 region (${grid[15]}) | ${fmt(one.map((r) => r.seconds))} | ${Math.max(...one.map((r) => r.rssMiB))} |`)
console.log(`| 16 regions (4x4 grid) | ${fmt(sixteen.map((r) => r.seconds))} | ${Math.max(...sixteen.map((r) => r.rssMiB))} |`)
console.log(`16 / 1: ${fmt(ratio)}`)
console.log(
  `load average after: ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`,
)

/** POSTs the PNG to `/crop?region=...` on `port`, streaming it from the file; stops sending when the response has ended. */
function post(port: number, region: string): Promise<{ seconds: number; sent: number; status: number }> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint()
    let sent = 0
    const file = createReadStream(png, { highWaterMark: 1 << 16 })
    file.on('data', (chunk) => {
      sent += chunk.length
    })
    const req = request({ host: '127.0.0.1', port, method: 'POST', path: `/crop?region=${region}&format=png` }, (res) => {
      res.resume()
      res.on('end', () => {
        file.destroy()
        req.destroy()
        resolve({ seconds: Number(process.hrtime.bigint() - started) / 1e9, sent, status: res.statusCode ?? 0 })
      })
    })
    // The server closes the connection once it has answered: the rest of the upload fails, as it should.
    req.on('error', () => undefined)
    file.on('error', reject)
    file.pipe(req)
  })
}

const store = join(work, 'store')
const port = 17000 + Math.floor(Math.random() * 2000)
const server = spawn(process.execPath, [cli, 'serve', '--store', store, '--port', String(port), '--log-level', 'warn'], { stdio: 'ignore' })
try {
  for (let i = 0; i < 100; i++) {
    const up = await fetch(`http://127.0.0.1:${port}/`).then(
      (r) => r.ok,
      () => false,
    )
    if (up) break
    await new Promise((done) => setTimeout(done, 100))
  }
  console.log('\n| 512x512 region, POST /crop | tessera s | vips s (above) | ratio | body sent when answered | server peak RSS MiB |')
  console.log('| --- | --- | --- | --- | --- | --- |')
  for (const [name, region] of cases) {
    const times: number[] = []
    let sent = 0
    for (let i = 0; i < runs; i++) {
      const result = await post(port, region)
      if (result.status !== 200) throw new Error(`POST /crop answered ${result.status}`)
      times.push(result.seconds)
      sent = Math.max(sent, result.sent)
    }
    const theirs = vipsSeconds.get(region)!
    const hwm = Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${server.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024
    console.log(
      `| ${name} (${region}) | ${fmt(times)} | ${fmt(theirs)} | ${(median(times) / median(theirs)).toFixed(2)} | ${pct(sent)} | ${hwm.toFixed(0)} |`,
    )
  }
} finally {
  server.kill()
}
