/**
 * How the CLI writes outputs (src/cli/output.ts) and ends (main()'s error handling): atomic
 * replacement of regular files only, straight writes into devices, FIFOs and through symlinks,
 * no partial file after any failure with the original error reported, coded errors for
 * outputs that cannot be written, errors from worker threads reported by their code, and a
 * closed standard output (EPIPE) that ends the command with status 0.
 */
import { execFileSync, spawn } from 'node:child_process'
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough, Writable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { main } from '../../src/cli/main.js'
import { writeFileAtomically } from '../../src/cli/output.js'
import { IntegrityError, OutputError } from '../../src/errors.js'
import { openImage, openStore } from '../../src/image.js'
import { type CliRun, runCli } from '../helpers/cli.js'
import { makeImage, writePam } from '../helpers/oracle.js'

const root = new URL('../../', import.meta.url).pathname
let dir: string
let store: string
let cid: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-cli-output-'))
  store = join(dir, 'store')
  await writePam(join(dir, 'a.pam'), makeImage(64, 64, 3, 8, 5))
  const result = await run('import', 'a.pam', '--tile-size', '32')
  expect(result.code).toBe(0)
  cid = result.stdout.toString().trim()
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

function run(...argv: string[]): Promise<CliRun> {
  return runCli(store, dir, argv)
}

/** `count` chunks of `size` bytes (chunk i filled with i + 1), then `error` if given. */
async function* chunks(count: number, size: number, error?: Error): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < count; i++) {
    await new Promise((resolve) => setImmediate(resolve))
    yield new Uint8Array(size).fill(i + 1)
  }
  if (error !== undefined) throw error
}

function expected(count: number, size: number): Buffer {
  return Buffer.concat(Array.from({ length: count }, (_, i) => Buffer.alloc(size, i + 1)))
}

/** A fresh directory under `dir`. */
async function place(name: string): Promise<string> {
  const path = join(dir, name)
  await mkdir(path)
  return path
}

async function partials(path: string): Promise<string[]> {
  return (await readdir(path)).filter((name) => name.endsWith('.partial'))
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.fail('should have failed'),
    (error: unknown) => error,
  )
}

describe('writeFileAtomically', () => {
  it('writes a new file and replaces a regular file, leaving no partial file', async () => {
    const here = await place('regular')
    const path = join(here, 'out.bin')
    await writeFileAtomically(path, chunks(3, 100_000))
    expect(await readFile(path)).toEqual(expected(3, 100_000))
    await writeFileAtomically(path, chunks(2, 10))
    expect(await readFile(path)).toEqual(expected(2, 10))
    expect(await readdir(here)).toEqual(['out.bin'])
  })

  it.each([
    ['before the first chunk', 0, 1],
    ['after a few small chunks', 3, 1000],
    ['after chunks larger than the stream buffer', 4, 1 << 20],
  ])('reports the original error and leaves no file when the bytes fail %s', async (_, count, size) => {
    const here = await place(`fail-${count}-${size}`)
    const failure = new IntegrityError('A tile does not match its hash')
    const error = await rejection(writeFileAtomically(join(here, 'out.png'), chunks(count, size, failure)))
    expect(error).toBe(failure)
    expect(await readdir(here)).toEqual([])
  })

  it('keeps the existing file when the bytes fail', async () => {
    const here = await place('keep')
    const path = join(here, 'out.png')
    await writeFile(path, 'before')
    const failure = new IntegrityError('bad')
    expect(await rejection(writeFileAtomically(path, chunks(3, 1 << 20, failure)))).toBe(failure)
    expect(await readFile(path, 'utf8')).toBe('before')
    expect(await readdir(here)).toEqual(['out.png'])
  })

  it('fails with ERR_OUTPUT when the directory is missing or the path is a directory', async () => {
    const here = await place('missing')
    const missing = await rejection(writeFileAtomically(join(here, 'no/such/dir/x.png'), chunks(2, 10)))
    expect(missing).toBeInstanceOf(OutputError)
    expect(missing).toMatchObject({ code: 'ERR_OUTPUT' })
    const isDir = await rejection(writeFileAtomically(here, chunks(2, 10)))
    expect(isDir).toMatchObject({ code: 'ERR_OUTPUT' })
    expect(await readdir(here)).toEqual([])
    expect(await readdir(dir)).not.toContainEqual(expect.stringMatching(/\.partial$/))
  })

  it('writes straight into a character device, which stays one', async (context) => {
    // As root a regression would replace the device node: never risk /dev/null itself then.
    let device = '/dev/null'
    if (process.getuid?.() === 0) {
      device = join(await place('device'), 'null')
      try {
        execFileSync('mknod', [device, 'c', '1', '3'])
      } catch {
        context.skip()
      }
    }
    await writeFileAtomically(device, chunks(3, 1 << 20))
    expect((await lstat(device)).isCharacterDevice()).toBe(true)
    const through = join(await place('device-link'), 'link')
    await symlink(device, through)
    await writeFileAtomically(through, chunks(2, 10))
    expect((await lstat(device)).isCharacterDevice()).toBe(true)
    expect((await lstat(through)).isSymbolicLink()).toBe(true)
  })

  it('writes through a symlink: the link stays, its target gets the bytes atomically', async () => {
    const here = await place('symlink')
    const targets = await place('symlink-targets')
    const target = join(targets, 'target.png')
    await writeFile(target, 'before')
    await symlink('../symlink-targets/target.png', join(here, 'link.png'))
    await writeFileAtomically(join(here, 'link.png'), chunks(3, 1000))
    expect((await lstat(join(here, 'link.png'))).isSymbolicLink()).toBe(true)
    expect(await readFile(target)).toEqual(expected(3, 1000))
    // A chain of links, the last one dangling: the file is created where it points.
    await symlink(join(targets, 'absent.png'), join(here, 'dangling.png'))
    await symlink('dangling.png', join(here, 'chain.png'))
    await writeFileAtomically(join(here, 'chain.png'), chunks(2, 10))
    expect((await lstat(join(here, 'chain.png'))).isSymbolicLink()).toBe(true)
    expect((await lstat(join(here, 'dangling.png'))).isSymbolicLink()).toBe(true)
    expect(await readFile(join(targets, 'absent.png'))).toEqual(expected(2, 10))
    // A failure leaves the target as it was and no partial file on either side.
    const failure = new IntegrityError('bad')
    expect(await rejection(writeFileAtomically(join(here, 'link.png'), chunks(2, 1 << 20, failure)))).toBe(failure)
    expect(await readFile(target)).toEqual(expected(3, 1000))
    expect(await partials(here)).toEqual([])
    expect(await partials(targets)).toEqual([])
  })

  it('writes straight into a FIFO', async () => {
    const here = await place('fifo')
    const fifo = join(here, 'fifo')
    execFileSync('mkfifo', [fifo])
    const reader = spawn('cat', [fifo], { stdio: ['ignore', 'pipe', 'inherit'] })
    const received: Buffer[] = []
    reader.stdout.on('data', (chunk: Buffer) => received.push(chunk))
    const closed = new Promise((resolve) => reader.on('close', resolve))
    try {
      await writeFileAtomically(fifo, chunks(4, 100_000))
      expect((await lstat(fifo)).isFIFO()).toBe(true)
      await closed
      expect(Buffer.concat(received)).toEqual(expected(4, 100_000))
      expect(await readdir(here)).toEqual(['fifo'])
    } finally {
      reader.kill()
    }
  })
})

/** Flips a byte in the middle of every stored copy of the image's first tile (found by its bytes, whatever the store's layout). */
async function corruptFirstTile(): Promise<void> {
  const opened = await openStore(store, { create: false })
  let payload: Uint8Array
  try {
    const image = await openImage(opened, cid)
    payload = await opened.get((await image.reader.tileRow(0, 0)).tiles[0]!)
  } finally {
    await opened.close()
  }
  let found = 0
  for (const entry of await readdir(store, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue
    const path = join(entry.parentPath, entry.name)
    const bytes = await readFile(path)
    for (let at = bytes.indexOf(payload); at >= 0; at = bytes.indexOf(payload, at + 1)) {
      bytes[at + (payload.length >> 1)]! ^= 0x55
      found++
    }
    if (found > 0) await writeFile(path, bytes)
  }
  expect(found).toBeGreaterThan(0)
}

describe('main() error handling', () => {
  it('reports ERR_OUTPUT for an output in a missing directory', async () => {
    const result = await run('crop', cid, '--region', '0,0,10,10', '-o', 'missing/dir/x.png')
    expect(result.stderr).toMatch(/^tessera: ERR_OUTPUT: [^\n]*\n$/)
    expect(result.code).toBe(1)
  })

  it('ends with status 0 when standard output is closed (EPIPE), and 1 with ERR_OUTPUT on another write error', async () => {
    const failing = (code: string) =>
      new Writable({
        write(_chunk, _encoding, callback) {
          callback(Object.assign(new Error(`write ${code}`), { code, syscall: 'write' }))
        },
      })
    for (const argv of [['ls'], ['export', cid, '-f', 'pam', '-o', '-'], ['info', cid]]) {
      const stderr = new PassThrough()
      const err: Buffer[] = []
      stderr.on('data', (chunk: Buffer) => err.push(chunk))
      expect(await main(argv, { stdout: failing('EPIPE'), stderr, env: { TESSERA_STORE: store }, cwd: dir }), argv[0]).toBe(0)
      expect(Buffer.concat(err).toString()).toBe('')
      const eio = new PassThrough()
      const eioErr: Buffer[] = []
      eio.on('data', (chunk: Buffer) => eioErr.push(chunk))
      expect(await main(argv, { stdout: failing('EIO'), stderr: eio, env: { TESSERA_STORE: store }, cwd: dir }), argv[0]).toBe(1)
      expect(Buffer.concat(eioErr).toString()).toMatch(/^tessera: ERR_OUTPUT: .*EIO/)
    }
  })

  it('the built CLI ends with status 0 when its standard output is already closed (`tessera ls | head`)', async () => {
    const status = async (argv: string[]) => {
      const child = spawn(process.execPath, [join(root, 'bin/tessera.js'), ...argv, '--store', store], {
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      child.stdout.destroy()
      let stderr = ''
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk))
      const code = await new Promise((resolve) => child.on('close', resolve))
      return { code, stderr }
    }
    expect(await status(['ls'])).toEqual({ code: 0, stderr: '' })
    expect(await status(['export', cid, '-f', 'pam', '-o', '-'])).toEqual({ code: 0, stderr: '' })
  })

  // Last: it damages the store.
  it('reports ERR_INTEGRITY (not an internal error) for a corrupt tile decoded on a worker thread, and leaves no output', async () => {
    await corruptFirstTile()
    const sample = await run('sample', cid, '--size', '16', '--count', '4', '--seed', '1', '-o', '-')
    expect(sample.stderr).toMatch(/^tessera: ERR_INTEGRITY: [^\n]*\n$/)
    expect(sample.stderr).not.toContain('internal error')
    expect(sample.code).toBe(1)
    const here = await place('corrupt')
    for (const command of [
      ['sample', cid, '--size', '16', '--count', '4', '--seed', '1', '-o', join(here, 'batch.npy')],
      ['crop', cid, '--region', '0,0,64,64', '-f', 'png', '-o', join(here, 'crop.png')],
      ['export', cid, '-f', 'pam', '-o', join(here, 'export.pam')],
    ]) {
      const result = await run(...command)
      expect(result.stderr, command[0]).toMatch(/^tessera: ERR_INTEGRITY: [^\n]*\n$/)
      expect(result.code).toBe(1)
      expect(await readdir(here)).toEqual([])
    }
  })
})
