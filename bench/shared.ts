/**
 * `npm run bench:shared`: one store, many processes (the store issue's targets).
 *
 * 1. 8 `tessera crop` processes started at once on one store: all succeed, every crop exact
 *    (compared with the same crop read in this process).
 * 2. `tessera serve` under 16 connections of random 512x512 raw crops while another process
 *    imports a dataset of screenshots and a third runs `tessera gc` again and again: failed
 *    requests, wrong pixels (every answer hashed against the expected crop), req/s and p50/p99,
 *    then `tessera verify --all`.
 * 3. Sampling processes: one `tessera sample` process against two running shards 0/2 and 1/2
 *    of the same batch at once (bin/tessera, as users run it): samples/s and the ratio, with
 *    `--threads 0` in every process (the scaling target), then with the default threads (one
 *    process decodes on every core, a shard on its share). 16000 samples by default: a process
 *    takes 0.15-0.27 s to start, which two processes cannot share. At 400 samples (~0.6 s of
 *    sampling) that was most of the run and at 4000 (~4.5 s) it still bounded the ratio to
 *    ~1.9x before anything else; a data loader's processes run for far longer.
 *
 *   npm run bench:shared [-- --data DIR] [--seconds 20] [--samples 16000]
 */
import { spawn, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { cropImage, openImage, openStore } from '../src/image.js'
import { median, quantile, random } from './lib.js'
import { benchImageReady, HEIGHT, makeBenchImage, WIDTH } from './make-image.js'
import { makeScreens } from './make-screens.js'

const { values } = parseArgs({
  options: {
    data: { type: 'string', default: 'bench/data' },
    seconds: { type: 'string', default: '20' },
    samples: { type: 'string', default: '16000' },
  },
})
const data = resolve(values.data!)
const cli = resolve('bin/tessera.js')
if (!benchImageReady(data)) await makeBenchImage(data)
spawnSync('npm', ['run', 'build'], { stdio: 'inherit' })
const work = mkdtempSync(join(tmpdir(), 'tessera-bench-shared-'))
const store = join(work, 'store')
const results: string[][] = [['target', 'result', 'goal', 'met']]

function run(args: string[], input?: string): { status: number | null; stdout: Buffer; stderr: string } {
  const child = spawnSync(process.execPath, [cli, ...args], { maxBuffer: 1 << 30, ...(input ? { input } : {}) })
  return { status: child.status, stdout: child.stdout, stderr: child.stderr.toString() }
}

const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex')

console.log('importing the benchmark image...')
const imported = run(['import', join(data, 'big.png'), '--store', store])
if (imported.status !== 0) throw new Error(imported.stderr)
const cid = imported.stdout.toString().trim()

// The expected bytes of every region used below, read once in this process.
const next = random(7)
const regions = Array.from({ length: 64 }, () => ({
  x: Math.floor(next() * (WIDTH - 512)),
  y: Math.floor(next() * (HEIGHT - 512)),
  width: 512,
  height: 512,
}))
const expected = new Map<string, string>()
{
  const reader = await openStore(store, { create: false })
  const image = await openImage(reader, cid)
  for (const region of regions) {
    const chunks: Uint8Array[] = []
    for await (const chunk of await cropImage(image, region, { format: 'raw' })) chunks.push(chunk)
    expected.set(`${region.x},${region.y}`, sha(Buffer.concat(chunks)))
  }
  await reader.close()
}

// 1. Eight crop processes at once.
{
  const started = performance.now()
  const outcomes = await Promise.all(
    regions.slice(0, 8).map(
      (region, i) =>
        new Promise<boolean>((done) => {
          const out = join(work, `crop-${i}.raw`)
          const child = spawn(process.execPath, [
            cli,
            'crop',
            cid,
            '--store',
            store,
            '--region',
            `${region.x},${region.y},512,512`,
            '-f',
            'raw',
            '-o',
            out,
          ])
          child.on('exit', (code) => done(code === 0 && sha(readFileSync(out)) === expected.get(`${region.x},${region.y}`)))
        }),
    ),
  )
  const ok = outcomes.filter(Boolean).length
  results.push([
    '8 crop processes at once: exact',
    `${ok}/8 in ${(performance.now() - started).toFixed(0)} ms`,
    '8/8',
    ok === 8 ? 'yes' : 'no',
  ])
}

// 2. serve under load beside a dataset import and repeated gc.
{
  const screens = await makeScreens(join(data, 'screens-shared'), { frames: 60, seed: 11 })
  const server = spawn(process.execPath, [cli, 'serve', '--store', store, '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] })
  const url = await new Promise<string>((done, fail) => {
    let output = ''
    server.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      const match = /"msg":"Server listening at (http:\/\/127\.0\.0\.1:\d+)"/.exec(output)
      if (match) done(match[1]!)
    })
    server.once('exit', () => fail(new Error(`serve exited: ${output}`)))
  })
  const importer = spawn(process.execPath, [cli, 'import', screens, '--dataset', 'screens', '--store', store, '--checkpoint-files', '10'], {
    stdio: 'ignore',
  })
  let collections = 0
  let collectionFailures = 0
  let stop = false
  const collector = (async () => {
    while (!stop) {
      // Garbage to collect: the checkpoint versions each later version of the import replaces.
      const status = await new Promise<number | null>((done) => {
        const child = spawn(process.execPath, [cli, 'gc', '--store', store], { stdio: 'ignore' })
        child.once('exit', done)
      })
      if (status === 0) collections++
      else collectionFailures++
      await new Promise((done) => setTimeout(done, 500))
    }
  })()
  const deadline = Date.now() + Number(values.seconds) * 1000
  const latencies: number[] = []
  let failed = 0
  let wrong = 0
  await Promise.all(
    Array.from({ length: 16 }, async (_, worker) => {
      let i = worker
      while (Date.now() < deadline) {
        const region = regions[i++ % regions.length]!
        const t0 = performance.now()
        try {
          const response = await fetch(`${url}/images/${cid}/crop?region=${region.x},${region.y},512,512&format=raw`)
          const body = new Uint8Array(await response.arrayBuffer())
          latencies.push(performance.now() - t0)
          if (response.status !== 200) failed++
          else if (sha(body) !== expected.get(`${region.x},${region.y}`)) wrong++
        } catch {
          failed++
        }
      }
    }),
  )
  stop = true
  await collector
  const importStatus = await new Promise<number | null>((done) => {
    if (importer.exitCode !== null) done(importer.exitCode)
    else importer.once('exit', done)
  })
  server.kill('SIGTERM')
  await new Promise((done) => server.once('exit', done))
  const verify = run(['verify', '--all', '--store', store])
  const seconds = Number(values.seconds)
  results.push([
    `serve, 16 conn. raw crops for ${seconds} s beside a dataset import and gc`,
    `${latencies.length} requests (${(latencies.length / seconds).toFixed(0)}/s, p50 ${median(latencies).toFixed(0)} ms, p99 ${quantile(latencies, 0.99).toFixed(0)} ms), ${failed} failed, ${wrong} wrong; ${collections} gc runs (${collectionFailures} failed); import exit ${importStatus}; verify --all exit ${verify.status}`,
    '0 failed, 0 wrong, verify clean',
    failed === 0 && wrong === 0 && verify.status === 0 && importStatus === 0 && collectionFailures === 0 ? 'yes' : 'no',
  ])
}

// 3. Sampling: one process against two shards at once, through bin/tessera as users run it.
{
  const count = Number(values.samples)
  const sample = (extra: string[]) =>
    new Promise<number>((done, fail) => {
      const child = spawn(resolve('bin/tessera'), [
        'sample',
        cid,
        '--store',
        store,
        '--size',
        '224',
        '--count',
        String(count),
        '--seed',
        '3',
        '-f',
        'raw',
        '-o',
        '/dev/null',
        ...extra,
      ])
      child.on('exit', (code) => (code === 0 ? done(0) : fail(new Error(`sample exited ${code}`))))
    })
  const timed = async (fn: () => Promise<unknown>) => {
    const t0 = performance.now()
    await fn()
    return (performance.now() - t0) / 1000
  }
  // The same decode threads per process (none: each decodes on its own thread), then the
  // defaults (one process decodes on every core; a shard gets its share, here none).
  const configurations = [
    { name: '--threads 0 in each', threads: ['--threads', '0'], goal: '>= 1.9x' },
    { name: 'default threads', threads: [], goal: '' },
  ]
  const rates = configurations.map(() => ({ one: [] as number[], two: [] as number[] }))
  for (let pass = 0; pass < 3; pass++) {
    for (const [c, { threads }] of configurations.entries()) {
      rates[c]!.one.push(count / (await timed(() => sample(threads))))
      rates[c]!.two.push(
        count / (await timed(() => Promise.all([sample([...threads, '--shard', '0/2']), sample([...threads, '--shard', '1/2'])]))),
      )
    }
  }
  for (const [c, { name, goal }] of configurations.entries()) {
    const { one, two } = rates[c]!
    const ratio = median(two) / median(one)
    results.push([
      `sampling: 2 processes (shards) / 1 process, 224x224, ${name}`,
      `${median(two).toFixed(0)} vs ${median(one).toFixed(0)} samples/s = ${ratio.toFixed(2)}x (medians of 3)`,
      goal,
      goal === '' ? '' : ratio >= 1.9 ? 'yes' : 'no',
    ])
  }
}

rmSync(work, { recursive: true, force: true })
if (existsSync(join(data, 'screens-shared'))) rmSync(join(data, 'screens-shared'), { recursive: true, force: true })
const widths = results[0]!.map((_, c) => Math.max(...results.map((row) => row[c]!.length)))
for (const row of results) console.log(row.map((cell, c) => cell.padEnd(widths[c]!)).join(' | '))
