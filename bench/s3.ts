/**
 * `npm run bench:s3`: issue 9's S3 targets, on a real Ceph S3 on loopback (scripts/s3-up.sh),
 * Tessera against GDAL reading a COG of the same pixels from the same bucket, in one run:
 *
 *   1. import big.png into s3://BUCKET/PREFIX against a local directory (wall, MB/s of input,
 *      peak RSS of the child): S3 >= 0.5x the local throughput;
 *   2. the COG (made once with gdal_translate from big-tiled-zstd.tif, kept in the data
 *      directory) uploaded to the same bucket;
 *   3. `tessera crop` 512x512 as a whole process against `gdal_translate -srcwin` on /vsis3/,
 *      both writing a tiled zstd TIFF: p50 <= 1.0x GDAL, without the on-disk cache
 *      (TESSERA_CACHE_BYTES=0) and with it warm (the same crops run once before);
 *   4. random 512x512 crops in one long-running process (ImageReader.bands) against Debian's
 *      python3-gdal `ReadAsArray` on one open dataset: p50 <= 0.5x GDAL, with the on-disk cache
 *      as openStore makes it (empty at the start) and without;
 *   5. bytes fetched per crop (Tessera: a counting ObjectDriver around the S3 driver; GDAL and
 *      both CLIs: a counting HTTP proxy on 127.0.0.1 in front of Ceph) against the compressed
 *      bytes of the tiles the crop intersects: Tessera <= 1.5x.
 *
 *   eval "$(bash scripts/s3-up.sh /tmp/tessera-s3 17484)"    # else the bench runs this itself
 *   npm run bench:s3 [-- --data DIR] [--crops 20] [--inproc 100] [--seed 1] [--runs 1] [--skip-build] [--keep]
 *
 * Nothing leaves 127.0.0.1: the endpoint must be loopback, the AWS SDK and GDAL get
 * AWS_EC2_METADATA_DISABLED / CPL_AWS_EC2_API_ROOT_URL (a dead local port), proxies are
 * bypassed for loopback. Everything uploaded goes under one prefix, deleted at the end.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { createReadStream, existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs'
import { Agent, createServer, request as httpRequest, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { tileRange } from '../src/crop/plan.js'
import type { Region } from '../src/format/interface.js'
import { openImage } from '../src/image.js'
import type { AbortOptions } from '../src/store/interface.js'
import { openObjectStore } from '../src/store/object-store.js'
import { CachingDriver } from '../src/store/objects/cache.js'
import type { ListOptions, ObjectDriver, ObjectInfo, ObjectSink, PutOptions } from '../src/store/objects/interface.js'
import { openS3Driver } from '../src/store/objects/s3.js'
import { DEFAULT_CACHE_BYTES } from '../src/store/open.js'
import { median, quantile, random, wrapperEnv } from './lib.js'
import { benchImageReady, makeBenchImage } from './make-image.js'

const { values } = parseArgs({
  options: {
    data: { type: 'string', default: 'bench/data' },
    crops: { type: 'string', default: '20' },
    inproc: { type: 'string', default: '100' },
    seed: { type: 'string', default: '1' },
    runs: { type: 'string', default: '1' },
    bucket: { type: 'string' },
    'skip-build': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
})
const data = resolve(values.data!)
const png = join(data, 'big.png')
const zstdTiff = join(data, 'big-tiled-zstd.tif')
const cog = join(data, 'big-cog-zstd.tif')
const cli = resolve('bin/tessera.js')
const cropCount = Number(values.crops)
const inprocCount = Number(values.inproc)
const SIZE = 512

// ---------------------------------------------------------------- S3 and the network rule
// Not .ci/run's 17480 (and 17481 for its monitor): the cluster is left running, and CI's would
// then find its ports taken.
const BENCH_S3_PORT = '17484'
if (!process.env.AWS_ENDPOINT_URL && !process.env.AWS_ENDPOINT_URL_S3) {
  console.log(`No AWS_ENDPOINT_URL: starting (or reusing) the local Ceph S3 with scripts/s3-up.sh /tmp/tessera-s3 ${BENCH_S3_PORT} ...`)
  const up = spawnSync('bash', ['scripts/s3-up.sh', '/tmp/tessera-s3', BENCH_S3_PORT], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  if (up.status !== 0) throw new Error('scripts/s3-up.sh failed')
  for (const match of up.stdout.matchAll(/^export ([A-Z0-9_]+)=(.*)$/gm)) process.env[match[1]!] = match[2]!
  console.log('(left running; stop it with: bash scripts/s3-down.sh /tmp/tessera-s3)')
}
Object.assign(process.env, {
  AWS_EC2_METADATA_DISABLED: 'true',
  AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
  AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  NO_PROXY: '127.0.0.1,localhost',
  no_proxy: '127.0.0.1,localhost',
})
for (const name of ['HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY', 'http_proxy', 'https_proxy', 'all_proxy']) delete process.env[name]
const endpoint = new URL((process.env.AWS_ENDPOINT_URL_S3 || process.env.AWS_ENDPOINT_URL)!)
if (endpoint.hostname !== '127.0.0.1' || endpoint.protocol !== 'http:') {
  throw new Error(`This benchmark talks to a loopback S3 only (http://127.0.0.1:PORT), not ${endpoint}`)
}
if (!process.env.AWS_ACCESS_KEY_ID || !process.env.AWS_SECRET_ACCESS_KEY)
  throw new Error('AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set')
const cephPort = Number(endpoint.port)
const bucket = values.bucket ?? process.env.S3_BUCKET ?? 'tessera-test'
const prefix = `bench-s3-${Date.now()}-${process.pid}`
const cogKey = `${prefix}/big-cog.tif`
const cogPath = `/vsis3/${bucket}/${cogKey}`
const tmp = mkdtempSync(join(tmpdir(), 'tessera-bench-s3-'))
// The S3 store's on-disk cache (src/store/objects/cache.ts): never the user's ~/.cache here.
process.env.TESSERA_CACHE_DIR = join(tmp, 'cache-default')
const prefixDriver = await openS3Driver(`s3://${bucket}/${prefix}`)

/** The environment of a GDAL process reading /vsis3/ from `port` on loopback, and nothing else. */
function gdalEnv(port: number): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    GDAL_DISABLE_READDIR_ON_OPEN: 'EMPTY_DIR',
    AWS_S3_ENDPOINT: `127.0.0.1:${port}`,
    AWS_HTTPS: 'NO',
    AWS_VIRTUAL_HOSTING: 'FALSE',
    AWS_NO_SIGN_REQUEST: 'NO',
    CPL_AWS_EC2_API_ROOT_URL: 'http://127.0.0.1:9',
    AWS_EC2_METADATA_DISABLED: 'true',
  }
  delete env.AWS_ENDPOINT_URL
  delete env.AWS_ENDPOINT_URL_S3
  return env
}
/** The environment of a `tessera` process reading the S3 store from `port` on loopback. */
/**
 * The environment bin/tessera gives `node` for an import and for other commands (glibc and V8
 * settings): the processes timed here are started as `node bin/tessera.js`, so they get it too.
 */
const wrapped = new Map<string, NodeJS.ProcessEnv>()
function cliEnv(command: 'import' | 'crop'): NodeJS.ProcessEnv {
  let env = wrapped.get(command)
  if (env === undefined) {
    env = wrapperEnv(command)
    wrapped.set(command, env)
  }
  return env
}

function tesseraEnv(port: number, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...cliEnv('crop'), AWS_ENDPOINT_URL: `http://127.0.0.1:${port}`, ...extra }
  delete env.AWS_ENDPOINT_URL_S3
  return env
}

// ---------------------------------------------------------------- clean-up, whatever happens
let cleaned = false
async function cleanUp(): Promise<void> {
  if (cleaned) return
  cleaned = true
  if (!values.keep) {
    const keys: string[] = []
    for await (const object of prefixDriver.list('')) keys.push(object.key)
    for (let i = 0; i < keys.length; i += 16) await Promise.all(keys.slice(i, i + 16).map((key) => prefixDriver.delete(key)))
    console.log(`deleted ${keys.length} objects under s3://${bucket}/${prefix}/`)
  } else {
    console.log(`kept s3://${bucket}/${prefix}/ (--keep)`)
  }
  await prefixDriver.close()
  rmSync(tmp, { recursive: true, force: true })
}
process.on('SIGINT', () => {
  console.error('interrupted: cleaning up')
  cleanUp().finally(() => process.exit(130))
})

// ---------------------------------------------------------------- helpers
const fmt = (n: number, digits = 1) => n.toFixed(digits)
const mb = (bytes: number) => `${fmt(bytes / 1e6)} MB`
const kb = (bytes: number) => `${fmt(bytes / 1e3, 0)} kB`
const x = (a: number, b: number) => `${fmt(a / b, 2)}x`
const mean = (list: readonly number[]) => list.reduce((a, b) => a + b, 0) / list.length
const sum = (list: readonly number[]) => list.reduce((a, b) => a + b, 0)

interface Ran {
  ms: number
  started: number
  stdout: string
  rssMiB?: number
  /** user + system CPU time of the child (with `cpu`), less sensitive to the machine's load than wall time. */
  cpuMs?: number
}
let runs = 0
/**
 * Runs a command to completion (asynchronously: the proxy lives in this process), timing it;
 * `rss`: a node program's peak RSS (bench/peak-rss.mjs); `cpu`: its CPU time, by /usr/bin/time.
 */
function run(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
  measure: { rss?: boolean; cpu?: boolean } = {},
): Promise<Ran> {
  const rss = measure.rss === true
  const cpuFile = measure.cpu === true ? join(tmp, `cpu-${runs++}`) : undefined
  let argv = rss ? ['--import', resolve('bench/peak-rss.mjs'), ...args] : args
  let program = command
  if (cpuFile !== undefined) {
    argv = ['-f', '%U %S', '-o', cpuFile, command, ...argv]
    program = '/usr/bin/time'
  }
  return new Promise((done, fail) => {
    const started = performance.now()
    const child = spawn(program, argv, {
      stdio: ['ignore', 'pipe', 'pipe', ...(rss ? (['pipe'] as const) : [])],
      env: rss ? { ...env, TESSERA_BENCH_RSS_FD: '3' } : env,
    })
    let stdout = ''
    let stderr = ''
    let rssText = ''
    child.stdout!.on('data', (chunk) => {
      stdout += chunk
    })
    child.stderr!.on('data', (chunk) => {
      stderr += chunk
    })
    child.stdio[3]?.on('data', (chunk) => {
      rssText += chunk
    })
    child.on('error', fail)
    child.on('close', (code) => {
      const ms = performance.now() - started
      if (code !== 0) return fail(new Error(`${command} ${args.join(' ')} exited with ${code}: ${stderr.trim()}`))
      const out: Ran = { ms, started, stdout }
      if (rss) out.rssMiB = Number(rssText.trim()) / 1024
      if (cpuFile !== undefined) {
        const [user, system] = readFileSync(cpuFile, 'utf8').trim().split(/\s+/).slice(-2).map(Number)
        out.cpuMs = (user! + system!) * 1000
        rmSync(cpuFile, { force: true })
      }
      done(out)
    })
  })
}

const rows: Array<[string, string, string, string, string, string]> = []
const row = (what: string, tessera: string, peer: string, ratio = '', goal = '', met?: boolean) =>
  rows.push([what, tessera, peer, ratio, goal, met === undefined ? '' : met ? 'yes' : 'NO'])

// ---------------------------------------------------------------- a counting proxy for GDAL and the CLI
interface Logged {
  start: number
  end: number
  method: string
  path: string
  range: string
  status: number
  bytes: number
}
/** Forwards HTTP to Ceph verbatim (Host included: SigV4 signatures stay valid), logging every response's body bytes. */
class CountingProxy {
  readonly log: Logged[] = []
  readonly #agent = new Agent({ keepAlive: true, maxSockets: 64 })
  #server: Server | undefined
  port = 0

  async start(): Promise<void> {
    this.#server = createServer((req, res) => {
      const start = performance.now()
      const upstream = httpRequest(
        { host: '127.0.0.1', port: cephPort, method: req.method, path: req.url, headers: req.headers, agent: this.#agent },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers)
          let bytes = 0
          up.on('data', (chunk: Buffer) => {
            bytes += chunk.length
            res.write(chunk)
          })
          up.on('end', () => {
            this.log.push({
              start,
              end: performance.now(),
              method: req.method ?? '?',
              path: decodeURIComponent((req.url ?? '').split('?')[0]!),
              range: String(req.headers.range ?? ''),
              status: up.statusCode ?? 0,
              bytes,
            })
            res.end()
          })
        },
      )
      upstream.on('error', (error) => {
        res.writeHead(502)
        res.end(String(error))
      })
      req.pipe(upstream)
    })
    await new Promise<void>((done) => this.#server!.listen(0, '127.0.0.1', done))
    this.port = (this.#server.address() as AddressInfo).port
  }

  async close(): Promise<void> {
    this.#agent.destroy()
    await new Promise((done) => this.#server?.close(done))
  }
}

/** Request lines of one process (times from its spawn), and the number of sequential waves. */
function timeline(log: readonly Logged[], started: number, ended: number, strip: string): { lines: string[]; waves: number } {
  const lines = log.map((r) => {
    const range = r.range === '' ? '' : ` ${r.range.replace('bytes=', '')}`
    return `  +${fmt(r.start - started, 0).padStart(4)} ms ${fmt(r.end - r.start, 1).padStart(6)} ms  ${r.method} ${r.path.replace(strip, '')}${range}  ${r.status}  ${r.bytes} B`
  })
  lines.push(`  +${fmt(ended - started, 0).padStart(4)} ms  process exit`)
  let waves = 0
  let waveEnd = Number.NEGATIVE_INFINITY
  for (const r of [...log].sort((a, b) => a.start - b.start)) {
    if (r.start >= waveEnd) waves++
    waveEnd = r.start >= waveEnd ? r.end : Math.max(waveEnd, r.end)
  }
  return { lines, waves }
}

// ---------------------------------------------------------------- a counting driver for Tessera in process
interface DriverCall {
  start: number
  end: number
  op: string
  key: string
  bytes: number
}
/** Delegates to an ObjectDriver, counting requests and the bytes they returned. */
class CountingDriver implements ObjectDriver {
  readonly location: string
  readonly inner: ObjectDriver
  requests = 0
  bytes = 0
  readonly calls: DriverCall[] = []

  constructor(inner: ObjectDriver) {
    this.inner = inner
    this.location = inner.location
  }
  #count(op: string, key: string, start: number, bytes: number): void {
    this.requests++
    this.bytes += bytes
    this.calls.push({ start, end: performance.now(), op, key, bytes })
  }
  async get(key: string, options?: AbortOptions): Promise<Uint8Array | undefined> {
    const start = performance.now()
    const bytes = await this.inner.get(key, options)
    this.#count('GET', key, start, bytes?.length ?? 0)
    return bytes
  }
  async getRange(key: string, offset: number, length: number, options?: AbortOptions): Promise<Uint8Array> {
    const start = performance.now()
    const bytes = await this.inner.getRange(key, offset, length, options)
    this.#count(`GET ${offset}+${length}`, key, start, bytes.length)
    return bytes
  }
  put(key: string, bytes: Uint8Array, options?: PutOptions): Promise<boolean> {
    return this.inner.put(key, bytes, options)
  }
  create(key: string, options?: AbortOptions): Promise<ObjectSink> {
    return this.inner.create(key, options)
  }
  async stat(key: string, options?: AbortOptions): Promise<ObjectInfo | undefined> {
    const start = performance.now()
    const info = await this.inner.stat(key, options)
    this.#count('HEAD', key, start, 0)
    return info
  }
  async *list(prefix: string, options?: ListOptions): AsyncIterable<ObjectInfo> {
    const start = performance.now()
    let n = 0
    try {
      for await (const info of this.inner.list(prefix, options)) {
        n++
        yield info
      }
    } finally {
      // One ListObjectsV2 per 1000 keys; its XML body is not seen here (counted as 0 bytes).
      for (let page = 0; page <= Math.floor(n / 1000); page++) this.#count('LIST', prefix, start, 0)
    }
  }
  delete(key: string, options?: AbortOptions): Promise<void> {
    return this.inner.delete(key, options)
  }
  close(): Promise<void> {
    return this.inner.close()
  }
}

// ---------------------------------------------------------------- GDAL in process (python3-gdal)
const PYTHON = String.raw`
import hashlib, json, sys, time
cfg = json.loads(sys.argv[1])
from osgeo import gdal
gdal.UseExceptions()
def handshake():
    if cfg['handshake']:
        sys.stdout.write('next\n'); sys.stdout.flush(); sys.stdin.readline()
t = time.perf_counter()
ds = gdal.Open(cfg['path'])
open_ms = (time.perf_counter() - t) * 1000
times = []
cpu = []
digest = None
for i, (x, y, w, h) in enumerate(cfg['regions']):
    handshake()
    c = time.process_time()
    t = time.perf_counter()
    a = ds.ReadAsArray(x, y, w, h)
    times.append((time.perf_counter() - t) * 1000)
    cpu.append((time.process_time() - c) * 1000)
    if i == 0:
        digest = hashlib.sha256(a.transpose(1, 2, 0).tobytes()).hexdigest()
handshake()
tiles = []
if cfg['tiles']:
    band = ds.GetRasterBand(1)
    bw, bh = band.GetBlockSize()
    for (x, y, w, h) in cfg['regions']:
        total = 0
        for r in range(y // bh, (y + h - 1) // bh + 1):
            for c in range(x // bw, (x + w - 1) // bw + 1):
                total += int(band.GetMetadataItem('BLOCK_SIZE_%d_%d' % (c, r), 'TIFF'))
        tiles.append(total)
print('result ' + json.dumps({'open_ms': open_ms, 'times': times, 'cpu': cpu, 'sha256': digest, 'tiles': tiles}), flush=True)
`
interface GdalResult {
  open_ms: number
  times: number[]
  /** CPU time (all threads) of each crop. */
  cpu: number[]
  sha256: string
  tiles: number[]
}
/** Runs the Python loop; with `onNext`, the child waits for it before each crop (and once after the last). */
function gdalInProcess(regions: readonly Region[], port: number, onNext?: () => void, tiles = false): Promise<GdalResult> {
  return new Promise((done, fail) => {
    const config = { path: cogPath, regions: regions.map((r) => [r.x, r.y, r.width, r.height]), handshake: onNext !== undefined, tiles }
    const child: ChildProcess = spawn('/usr/bin/python3', ['-c', PYTHON, JSON.stringify(config)], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: gdalEnv(port),
    })
    let result: GdalResult | undefined
    let stderr = ''
    child.stderr!.on('data', (chunk) => {
      stderr += chunk
    })
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line === 'next') {
        onNext?.()
        child.stdin!.write('go\n')
      } else if (line.startsWith('result ')) result = JSON.parse(line.slice(7)) as GdalResult
    })
    child.on('error', fail)
    child.on('close', (code) => {
      if (code !== 0 || result === undefined) return fail(new Error(`python3-gdal exited with ${code}: ${stderr.trim()}`))
      done(result)
    })
  })
}

// ================================================================ the run
try {
  if (!benchImageReady(data)) {
    console.log(`Building the benchmark image in ${data} (5-15 minutes, ~2.7 GB)...`)
    await makeBenchImage(data)
  }
  if (!values['skip-build']) spawnSync('npm', ['run', 'build'], { stdio: 'inherit' })
  const pngBytes = statSync(png).size
  console.log(`S3: ${endpoint.origin}, bucket ${bucket}, prefix ${prefix}/`)
  console.log(`load: ${spawnSync('uptime', { encoding: 'utf8' }).stdout.trim()}`)

  // 1. Import, local directory vs S3, each in its own process, alternating; medians over --runs.
  const local: Ran[] = []
  const remote: Ran[] = []
  let localStore = ''
  let storeUrl = ''
  let cid = ''
  for (let r = 0; r < Number(values.runs); r++) {
    if (localStore !== '') rmSync(localStore, { recursive: true, force: true })
    localStore = join(tmp, `local-${r}`)
    console.log(`import, run ${r + 1}: local directory ...`)
    local.push(await run(process.execPath, [cli, 'import', png, '--store', localStore], cliEnv('import'), { rss: true }))
    if (storeUrl !== '') {
      // Each run imports into an empty store (a second import of the same pixels uploads nothing).
      for await (const object of prefixDriver.list('store/')) await prefixDriver.delete(object.key)
    }
    storeUrl = `s3://${bucket}/${prefix}/store`
    console.log(`import, run ${r + 1}: ${storeUrl} ...`)
    remote.push(await run(process.execPath, [cli, 'import', png, '--store', storeUrl], cliEnv('import'), { rss: true }))
    const [a, b] = [local.at(-1)!.stdout.trim(), remote.at(-1)!.stdout.trim()]
    if (a !== b) throw new Error(`The local and S3 imports gave different CIDs: ${a} and ${b}`)
    cid = a
  }
  const wall = (list: Ran[]) => median(list.map((r) => r.ms)) / 1000
  const rss = (list: Ran[]) => median(list.map((r) => r.rssMiB!))
  const mbps = (list: Ran[]) => pngBytes / 1e6 / wall(list)
  row(
    'S3-1 import big.png, wall (MB/s of input)',
    `${fmt(wall(remote))} s (${fmt(mbps(remote))} MB/s)`,
    `local dir: ${fmt(wall(local))} s (${fmt(mbps(local))} MB/s)`,
    x(mbps(remote), mbps(local)),
    '>= 0.5x local',
    mbps(remote) >= 0.5 * mbps(local),
  )
  row('S3-1 import, peak RSS', `${fmt(rss(remote), 0)} MiB`, `local dir: ${fmt(rss(local), 0)} MiB`, x(rss(remote), rss(local)))

  // 2. The COG: made once, kept in the data directory; uploaded into the same bucket.
  if (!existsSync(cog)) {
    console.log(`making ${cog} with gdal_translate -of COG (about a minute) ...`)
    const part = `${cog}.tmp-${process.pid}`
    const made = spawnSync(
      'gdal_translate',
      ['-q', '-of', 'COG', '-co', 'COMPRESS=ZSTD', '-co', 'BLOCKSIZE=256', '-co', 'PREDICTOR=2', '-co', 'OVERVIEWS=NONE'].concat([
        '-co',
        'NUM_THREADS=2',
        zstdTiff,
        part,
      ]),
      { stdio: 'inherit' },
    )
    if (made.status !== 0) throw new Error('gdal_translate -of COG failed')
    renameSync(part, cog)
  }
  console.log(`uploading the COG to s3://${bucket}/${cogKey} ...`)
  const t = performance.now()
  const sink = await prefixDriver.create('big-cog.tif')
  for await (const chunk of createReadStream(cog, { highWaterMark: 8 << 20 })) await sink.write(chunk as Buffer)
  await sink.finish()
  const uploadS = (performance.now() - t) / 1000
  let storedBytes = 0
  for await (const object of prefixDriver.list('store/packs/')) storedBytes += object.size
  const cogBytes = statSync(cog).size
  row('S3-2 bytes in the bucket', mb(storedBytes), `COG (zstd, 256 px, predictor 2): ${mb(cogBytes)}`, x(storedBytes, cogBytes))
  row('S3-2 COG upload (SDK multipart, 16 MiB parts)', '', `${fmt(uploadS)} s (${fmt(cogBytes / 1e6 / uploadS)} MB/s)`)

  // 4 and 5. In one long-running process: Tessera through a counting driver (below the on-disk
  // cache when there is one, as openStore builds it), then GDAL.
  interface InProcess {
    times: number[]
    /** CPU time (all threads of this process) of each crop. */
    cpu: number[]
    requests: number[]
    bytes: number[]
    tiles: number[]
    openMs: number
    openLines: string[]
    openBytes: number
    sha: string
    /** The requests of the crop in the middle of the run, with times from its start. */
    cropLines: string[]
  }
  const callLine = (c: DriverCall, from: number) =>
    `  +${fmt(c.start - from, 0).padStart(4)} ms ${fmt(c.end - c.start, 1).padStart(6)} ms  ${c.op} ${c.key}  ${c.bytes} B`
  const tesseraInProcess = async (cache: boolean, regions: () => Region[]): Promise<InProcess> => {
    const counting = new CountingDriver(await openS3Driver(storeUrl))
    const driver: ObjectDriver = cache
      ? new CachingDriver(counting, { dir: mkdtempSync(join(tmp, 'inproc-cache-')), maxBytes: DEFAULT_CACHE_BYTES })
      : counting
    const openStart = performance.now()
    const store = await openObjectStore(driver, { create: false, packBytes: 64 << 20, refreshMs: 1000 })
    const image = await openImage(store, cid)
    const openMs = performance.now() - openStart
    const openCalls = counting.calls.slice()
    geometry = image.manifest
    const tileBytesOf = async (region: Region) => {
      const { firstColumn, lastColumn, firstRow, lastRow } = tileRange(region, image.manifest.tileSize)
      let total = 0
      for (let r = firstRow; r <= lastRow; r++) {
        const index = await image.reader.tileRow(0, r)
        for (let c = firstColumn; c <= lastColumn; c++) total += index.lengths[c]!
      }
      return total
    }
    const out: InProcess = {
      times: [],
      cpu: [],
      requests: [],
      bytes: [],
      tiles: [],
      openMs,
      openLines: [],
      openBytes: 0,
      sha: '',
      cropLines: [],
    }
    const list = regions()
    for (const [i, region] of list.entries()) {
      const [requests, bytes, calls] = [counting.requests, counting.bytes, counting.calls.length]
      const digest = i === 0 ? createHash('sha256') : undefined
      const c0 = process.cpuUsage()
      const t0 = performance.now()
      for await (const band of image.reader.bands(region)) digest?.update(band.data)
      out.times.push(performance.now() - t0)
      const c1 = process.cpuUsage(c0)
      out.cpu.push((c1.user + c1.system) / 1000)
      if (digest !== undefined) out.sha = digest.digest('hex')
      out.requests.push(counting.requests - requests)
      out.bytes.push(counting.bytes - bytes)
      if (i === list.length >> 1) {
        out.cropLines = counting.calls.slice(calls).map((c) => callLine(c, t0))
        out.cropLines.push(`  +${fmt(out.times.at(-1)!, 0).padStart(4)} ms  crop done (${region.x},${region.y})`)
      }
      out.tiles.push(await tileBytesOf(region))
    }
    out.openLines = openCalls.map((c) => callLine(c, openStart))
    out.openBytes = sum(openCalls.map((c) => c.bytes))
    await store.close()
    return out
  }
  let geometry = { width: 0, height: 0, tileSize: 0 }
  let inproc: Region[] = []
  let cliRegions: Region[] = []
  const drawRegions = () => {
    const next = random(Number(values.seed))
    const draw = (): Region => ({
      x: Math.floor(next() * (geometry.width - SIZE)),
      y: Math.floor(next() * (geometry.height - SIZE)),
      width: SIZE,
      height: SIZE,
    })
    inproc = Array.from({ length: inprocCount }, draw)
    cliRegions = Array.from({ length: cropCount }, draw)
    return inproc
  }
  console.log(`in process: ${inprocCount} random ${SIZE}x${SIZE} crops, Tessera without cache ...`)
  const bare = await tesseraInProcess(false, drawRegions)
  console.log(`in process: the same crops, Tessera with the on-disk cache (empty at the start) ...`)
  const cached = await tesseraInProcess(true, () => inproc)
  const { width, height } = geometry
  const ours = cached.times
  const [ourSha, openMs] = [cached.sha, cached.openMs]
  // Bytes and requests of S3-5 without the cache: random crops share tiles, which a cache would serve.
  const [ourRequests, ourBytes, ourTiles] = [bare.requests, bare.bytes, bare.tiles]

  console.log(
    `in process: ${inprocCount} crops, GDAL (python3-gdal ${spawnSync('gdalinfo', ['--version'], { encoding: 'utf8' }).stdout.trim()}) ...`,
  )
  const gdal = await gdalInProcess(inproc, cephPort)
  if (gdal.sha256 !== ourSha || bare.sha !== ourSha)
    throw new Error(`The first crop differs between Tessera (${ourSha}) and GDAL (${gdal.sha256})`)
  const [ourFirst, gdalFirst] = [ours[0]!, gdal.open_ms + gdal.times[0]!]
  const [oursRest, gdalRest] = [ours.slice(1), gdal.times.slice(1)]
  row(
    'S3-4 in process, open + first crop (ms)',
    `${fmt(openMs + ourFirst)} (open ${fmt(openMs)})`,
    `${fmt(gdalFirst)} (open ${fmt(gdal.open_ms)})`,
    x(openMs + ourFirst, gdalFirst),
  )
  for (const [name, list] of [
    ['with the on-disk cache (cold)', oursRest],
    ['no cache', bare.times.slice(1)],
  ] as const) {
    row(
      `S3-4 in process, ${SIZE}x${SIZE} crop p50 (ms), ${name}`,
      fmt(median(list), 2),
      `${fmt(median(gdalRest), 2)} (ReadAsArray, header cached)`,
      x(median(list), median(gdalRest)),
      '<= 0.5x GDAL',
      median(list) <= 0.5 * median(gdalRest),
    )
    row(
      `S3-4 in process, p95 (ms), ${name}`,
      fmt(quantile(list, 0.95), 2),
      fmt(quantile(gdalRest, 0.95), 2),
      x(quantile(list, 0.95), quantile(gdalRest, 0.95)),
    )
  }
  row(
    'S3-4 in process, CPU per crop p50 (ms), no cache',
    fmt(median(bare.cpu.slice(1)), 2),
    fmt(median(gdal.cpu.slice(1)), 2),
    x(median(bare.cpu.slice(1)), median(gdal.cpu.slice(1))),
  )

  // GDAL's requests and bytes: the same loop again through the counting proxy, a snapshot before each crop.
  const proxy = new CountingProxy()
  await proxy.start()
  console.log('in process: GDAL again through the counting proxy ...')
  const marks: number[] = []
  const counted = await gdalInProcess(inproc, proxy.port, () => marks.push(proxy.log.length), true)
  const gdalOpen = proxy.log.slice(0, marks[0])
  const gdalPer = marks.slice(0, -1).map((m, i) => proxy.log.slice(m, marks[i + 1]))
  const gdalRequests = gdalPer.map((list) => list.length)
  const gdalBytes = gdalPer.map((list) => sum(list.map((r) => r.bytes)))
  const perCrop = (requests: number[], bytes: number[]) =>
    `${fmt(mean(requests.slice(1)), 1)} req, ${kb(mean(bytes.slice(1)))} (p50 ${kb(median(bytes.slice(1)))})`
  row(
    'S3-5 fetched per crop, mean (after the first)',
    perCrop(ourRequests, ourBytes),
    perCrop(gdalRequests, gdalBytes),
    x(mean(ourBytes.slice(1)), mean(gdalBytes.slice(1))),
  )
  const ourRatio = sum(ourBytes.slice(1)) / sum(ourTiles.slice(1))
  const gdalRatio = sum(gdalBytes.slice(1)) / sum(counted.tiles.slice(1))
  row(
    'S3-5 fetched / intersecting tiles compressed',
    `${fmt(ourRatio, 2)}x of ${kb(mean(ourTiles))}`,
    `${fmt(gdalRatio, 2)}x of ${kb(mean(counted.tiles))}`,
    '',
    '<= 1.5x',
    ourRatio <= 1.5,
  )
  row(
    'S3-5 the same, with the on-disk cache (cold)',
    `${fmt(sum(cached.bytes.slice(1)) / sum(cached.tiles.slice(1)), 2)}x (${fmt(mean(cached.requests.slice(1)), 1)} req)`,
    '',
  )
  row(
    'S3-5 at open (+ first crop)',
    `${bare.openLines.length} req, ${kb(bare.openBytes)} (+${ourRequests[0]} req, ${kb(ourBytes[0]!)})`,
    `${gdalOpen.length} req, ${kb(sum(gdalOpen.map((r) => r.bytes)))} (+${gdalRequests[0]} req, ${kb(gdalBytes[0]!)})`,
  )

  // 3. Whole processes: tessera crop vs gdal_translate -srcwin, both to a tiled zstd TIFF, interleaved.
  const ourOut = join(tmp, 'x.tif')
  const gdalOut = join(tmp, 'g.tif')
  const tesseraCrop = (region: Region, port: number, location = storeUrl, extra: NodeJS.ProcessEnv = {}) =>
    run(
      process.execPath,
      [cli, 'crop', cid, '--store', location, '--region', `${region.x},${region.y},${SIZE},${SIZE}`, '-o', ourOut],
      tesseraEnv(port, extra),
      { cpu: true },
    )
  const gdalCrop = (region: Region, port: number) =>
    run(
      'gdal_translate',
      ['-q', '-srcwin', String(region.x), String(region.y), String(SIZE), String(SIZE)].concat([
        '-co',
        'TILED=YES',
        '-co',
        'COMPRESS=ZSTD',
        '-co',
        'PREDICTOR=2',
        cogPath,
        gdalOut,
      ]),
      gdalEnv(port),
      { cpu: true },
    )
  const cacheDir = join(tmp, 'cache')
  const variants: Array<{ name: string; env: NodeJS.ProcessEnv; warm: boolean }> = [
    { name: 'no cache (TESSERA_CACHE_BYTES=0)', env: { TESSERA_CACHE_BYTES: '0' }, warm: false },
    { name: 'warm cache', env: { TESSERA_CACHE_DIR: cacheDir }, warm: true },
  ]
  console.log(`whole processes: ${cropCount} crops x (${variants.map((v) => v.name).join(', ')}; gdal_translate) ...`)
  await tesseraCrop(cliRegions[0]!, cephPort, storeUrl, variants[0]!.env) // page cache, both sides
  await gdalCrop(cliRegions[0]!, cephPort)
  for (const variant of variants) {
    if (variant.warm) for (const region of cliRegions) await tesseraCrop(region, cephPort, storeUrl, variant.env)
  }
  // Per region, the three processes in a rotating order (the load drifts).
  const cliOurs = variants.map(() => [] as Ran[])
  const cliGdal: Ran[] = []
  const jobs = [
    ...variants.map((variant, v) => async (region: Region) => cliOurs[v]!.push(await tesseraCrop(region, cephPort, storeUrl, variant.env))),
    async (region: Region) => cliGdal.push(await gdalCrop(region, cephPort)),
  ]
  for (const [i, region] of cliRegions.entries()) {
    for (let j = 0; j < jobs.length; j++) await jobs[(i + j) % jobs.length]!(region)
  }
  const wallOf = (list: Ran[]) => list.map((r) => r.ms)
  const cpuOf = (list: Ran[]) => list.map((r) => r.cpuMs!)
  const gdalWall = wallOf(cliGdal)
  for (const [v, variant] of variants.entries()) {
    const list = wallOf(cliOurs[v]!)
    row(
      `S3-3 \`tessera crop\` process, p50 (ms), ${variant.name}`,
      fmt(median(list), 0),
      `${fmt(median(gdalWall), 0)} (gdal_translate -srcwin)`,
      x(median(list), median(gdalWall)),
      '<= 1.0x GDAL',
      median(list) <= median(gdalWall),
    )
    row(
      `S3-3 process, p95 (ms), ${variant.name}`,
      fmt(quantile(list, 0.95), 0),
      fmt(quantile(gdalWall, 0.95), 0),
      x(quantile(list, 0.95), quantile(gdalWall, 0.95)),
    )
    row(
      `S3-3 process, CPU user+sys p50 (ms), ${variant.name}`,
      fmt(median(cpuOf(cliOurs[v]!)), 0),
      fmt(median(cpuOf(cliGdal)), 0),
      x(median(cpuOf(cliOurs[v]!)), median(cpuOf(cliGdal))),
    )
  }
  // What a crop process costs without S3: node + the CLI bundle alone, and the same crop from the local store.
  const help: Ran[] = []
  const localRuns: Ran[] = []
  for (const region of cliRegions.slice(0, 10)) {
    help.push(await run(process.execPath, [cli, '--help'], cliEnv('crop'), { cpu: true }))
    localRuns.push(await tesseraCrop(region, cephPort, localStore, variants[0]!.env))
  }
  row(
    'S3-3 reference: `tessera --help` / crop from a local dir, p50 wall (CPU) ms',
    `${fmt(median(wallOf(help)), 0)} (${fmt(median(cpuOf(help)), 0)}) / ${fmt(median(wallOf(localRuns)), 0)} (${fmt(median(cpuOf(localRuns)), 0)})`,
    '',
  )
  // The newest bundled chunk of each: the S3 driver (reads: aws4 over node:http) and the SDK
  // half it loads on the first write.
  const newest = (pattern: RegExp) =>
    readdirSync(resolve('dist/bundle'))
      .filter((name) => pattern.test(name))
      .map((name) => resolve('dist/bundle', name))
      .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0]
  for (const [what, pattern] of [
    ['the bundled S3 driver (reads)', /^s3-[A-Z0-9]+\.js$/],
    ['the AWS SDK half (writes; not loaded by a crop)', /^s3-sdk-[A-Z0-9]+\.js$/],
  ] as const) {
    const chunk = newest(pattern)
    if (chunk === undefined) continue
    const loads: number[] = []
    for (let i = 0; i < 5; i++) {
      const out = await run(process.execPath, [
        '--input-type=module',
        '-e',
        `const t = performance.now(); await import(${JSON.stringify(chunk)}); process.stdout.write(String(performance.now() - t))`,
      ])
      loads.push(Number(out.stdout))
    }
    row(`S3-3 reference: loading ${what}, p50 (ms)`, fmt(median(loads), 0), '')
  }

  // Requests and bytes of whole processes, through the proxy; the first one of each, request by request.
  const k = Math.min(5, cliRegions.length)
  const ourProc: Logged[][] = []
  const gdalProc: Logged[][] = []
  const firstLines: string[] = []
  for (const region of cliRegions.slice(0, k)) {
    let from = proxy.log.length
    const a = await tesseraCrop(region, proxy.port, storeUrl, variants[0]!.env)
    ourProc.push(proxy.log.slice(from))
    from = proxy.log.length
    const b = await gdalCrop(region, proxy.port)
    gdalProc.push(proxy.log.slice(from))
    if (firstLines.length === 0) {
      const ourLine = timeline(ourProc[0]!, a.started, a.started + a.ms, `/${bucket}/${prefix}/store/`)
      const gdalLine = timeline(gdalProc[0]!, b.started, b.started + b.ms, `/${bucket}/${prefix}/`)
      firstLines.push(
        `One \`tessera crop\` process (${variants[0]!.name}), ${ourLine.waves} sequential waves of requests:`,
        ...ourLine.lines,
        `One gdal_translate process, ${gdalLine.waves} sequential waves of requests:`,
        ...gdalLine.lines,
      )
    }
  }
  const procStats = (list: Logged[][]) =>
    `${fmt(mean(list.map((l) => l.length)), 1)} req, ${kb(mean(list.map((l) => sum(l.map((r) => r.bytes)))))}`
  row(`S3-3 requests, bytes per process (${k} crops)`, procStats(ourProc), procStats(gdalProc))
  await proxy.close()

  console.log(`\nBenchmark image ${width}x${height} RGB, CID ${cid}`)
  console.log(`load: ${spawnSync('uptime', { encoding: 'utf8' }).stdout.trim()}`)
  console.log('\nTessera in process, requests at open (ms from the start of openObjectStore):')
  for (const line of bare.openLines) console.log(line)
  console.log(`Tessera in process, requests of crop ${inprocCount >> 1} (no cache; ms from its start):`)
  for (const line of bare.cropLines) console.log(line)
  console.log('')
  for (const line of firstLines) console.log(line)
  const headings = ['target', 'Tessera', 'GDAL (or peer)', 'ratio', 'goal', 'met']
  const widths = headings.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`
  console.log(`\n${cropCount} seeded whole-process crops, ${inprocCount} in-process crops (seed ${values.seed})\n`)
  console.log(line(headings))
  console.log(line(widths.map((w) => '-'.repeat(w))))
  for (const r of rows) console.log(line(r))
} finally {
  await cleanUp()
}
