/**
 * The server as a process and on a socket: the work queue, a client that disconnects in the
 * middle of a large response (the work stops and its slot is released), and `tessera serve`
 * from the built binary (listens on loopback, logs JSON, shuts down cleanly on SIGTERM and
 * releases the store).
 */
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { request as httpRequest } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { serveCommand } from '../../src/cli/serve.js'
import { WorkQueue } from '../../src/http/queue.js'
import { createServer } from '../../src/http/server.js'
import { importImage, openStore } from '../../src/image.js'
import { makeImage, writePam } from '../helpers/oracle.js'
import { type Fixture, fixture, importTestImage } from './helpers.js'

const root = new URL('../../', import.meta.url).pathname

describe('WorkQueue', () => {
  it('runs at most `concurrency` jobs, in order, and refuses past the queue', async () => {
    const queue = new WorkQueue({ concurrency: 2, maxQueued: 1 })
    const a = await queue.acquire()
    const b = await queue.acquire()
    const order: string[] = []
    const c = queue.acquire().then((release) => {
      order.push('c')
      return release
    })
    await expect(queue.acquire()).rejects.toMatchObject({ code: 'ERR_BUSY', statusCode: 503 })
    expect([queue.running, queue.queued]).toEqual([2, 1])
    a()
    a() // idempotent
    const releaseC = await c
    expect(order).toEqual(['c'])
    expect([queue.running, queue.queued]).toEqual([2, 0])
    b()
    releaseC()
    expect(queue.running).toBe(0)
  })

  it('forgets a waiter whose signal fires', async () => {
    const queue = new WorkQueue({ concurrency: 1, maxQueued: 4 })
    const held = await queue.acquire()
    const controller = new AbortController()
    const waiting = queue.acquire(controller.signal)
    controller.abort()
    await expect(waiting).rejects.toMatchObject({ code: 'ERR_ABORTED' })
    expect(queue.queued).toBe(0)
    held()
    expect(queue.running).toBe(0)
  })
})

describe('a client that disconnects', () => {
  let fx: Fixture
  let cid: string
  beforeAll(async () => {
    fx = await fixture()
    cid = await importTestImage(fx, 'large', makeImage(1024, 768, 3, 8, 3), { tileSize: 32, pyramid: false })
  })
  afterAll(async () => {
    fx.store.beforeRead = undefined
    await fx.close()
  })

  it('stops the work it started and frees its slot', async () => {
    const app = await createServer({ store: fx.store, limits: { concurrency: 1, queue: 0 } })
    const address = await app.listen({ host: '127.0.0.1', port: 0 })
    try {
      // Slow tile reads: the whole export (768 tiles) would take seconds.
      fx.store.beforeRead = async (read, options) => {
        if (read.toString().startsWith('bafkrei')) {
          await sleep(5)
          options?.signal?.throwIfAborted()
        }
      }
      fx.store.reset()
      await new Promise<void>((resolve, reject) => {
        const req = httpRequest(`${address}/images/${cid}/export?format=png`, (res) => {
          expect(res.statusCode).toBe(200)
          // Past the PNG header: the first bands have been read and encoded.
          let received = 0
          res.on('data', (chunk: Buffer) => {
            received += chunk.length
            if (received > 20_000 && !req.destroyed) {
              req.destroy()
              resolve()
            }
          })
        })
        req.on('error', (error) => {
          if ((error as NodeJS.ErrnoException).code !== 'ECONNRESET') reject(error)
        })
        req.end()
      })
      // Wait until the reads settle, then check that they stopped well short of the image.
      let last = -1
      while (fx.store.reads.length !== last) {
        last = fx.store.reads.length
        await sleep(100)
      }
      const tiles = fx.store.reads.filter((r) => r.startsWith('bafkrei')).length
      expect(tiles).toBeGreaterThan(0)
      expect(tiles).toBeLessThan(400)
      // With one slot and no queue, a leaked slot would make this a 503.
      fx.store.beforeRead = undefined
      const next = await fetch(`${address}/images/${cid}/crop?region=0,0,10,10&format=raw`)
      expect(next.status).toBe(200)
      expect((await next.arrayBuffer()).byteLength).toBe(300)
    } finally {
      await app.close()
    }
  })
})

describe('tessera serve', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tessera-serve-'))
  })
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('serves the store until told to stop, logging JSON lines (in process)', async () => {
    const store = join(dir, 'in-process')
    const stdout = new PassThrough()
    const lines: string[] = []
    stdout.on('data', (chunk: Buffer) => lines.push(...chunk.toString().split('\n').filter(Boolean)))
    const controller = new AbortController()
    let url = ''
    const command = serveCommand(
      { stdout, stderr: new PassThrough(), env: {}, cwd: dir },
      {
        shutdown: controller.signal,
        onListening: (u) => {
          url = u
        },
      },
    )
    const running = command.parseAsync(['--store', store, '--port', '0', '--tile-cache', '8'], { from: 'user' })
    while (url === '') await sleep(20)
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    const response = await fetch(`${url}/images`)
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ images: [] })
    controller.abort()
    await running
    const records = lines.map((line) => JSON.parse(line))
    expect(records.some((r) => r.msg?.startsWith('Server listening'))).toBe(true)
    expect(records.some((r) => r.res?.statusCode === 200)).toBe(true)
    expect(records.at(-1).msg).toBe('stopped')
    // The store was closed: it opens again at once.
    const reopened = await openStore(store)
    await reopened.close()
  })

  it('runs from the build: upload, serve, SIGTERM, exit 0', async () => {
    expect(existsSync(join(root, 'dist/cli/serve.js')), 'dist/ is missing: npm ci (or npm run build) builds it').toBe(true)
    const store = join(dir, 'bin')
    const source = join(dir, 'small.pam')
    await writePam(source, makeImage(40, 30, 3, 8))
    const child = spawn(process.execPath, [join(root, 'bin/tessera.js'), 'serve', '--store', store, '--port', '0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    try {
      let output = ''
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString()
      })
      let url: string | undefined
      for (let i = 0; i < 200 && url === undefined; i++) {
        await sleep(50)
        url = /"msg":"Server listening at (http:\/\/127\.0\.0\.1:\d+)"/.exec(output)?.[1]
      }
      expect(url, output).toBeDefined()
      const body = await readFile(source)
      const upload = await fetch(`${url}/images?name=small.pam`, { method: 'POST', body })
      expect(upload.status).toBe(201)
      const { cid } = (await upload.json()) as { cid: string }
      const tile = await fetch(`${url}/iiif/3/${cid}/full/max/0/default.png`)
      expect(tile.status).toBe(200)
      expect(tile.headers.get('content-type')).toBe('image/png')
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
      child.kill('SIGTERM')
      expect(await exited).toBe(0)
      // Same CID as a direct import of the same file under the same name.
      const reopened = await openStore(store)
      try {
        const { cid: direct } = await importImage(reopened, source, { workers: 0 })
        expect(direct.toString()).toBe(cid)
      } finally {
        await reopened.close()
      }
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL')
    }
  })
})
