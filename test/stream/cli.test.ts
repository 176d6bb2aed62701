/**
 * `tessera crop FILE|-|CID --region ... [--region ...] -o OUT`: how the input is told apart,
 * outputs named by a pattern or a directory, standard input and output, --stats, and a broken
 * stream leaving no output file behind.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough, Readable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { main } from '../../src/cli/main.js'
import { runCli } from '../helpers/cli.js'
import { makeImage, naiveCrop, writePam } from '../helpers/oracle.js'
import { encodePng } from './png-encoder.js'

let dir: string
let store: string
const image = makeImage(120, 90, 3, 8, 21)
let png: Uint8Array

/** Runs `tessera argv...` with `stdin` as standard input. */
async function run(argv: readonly string[], stdin?: Uint8Array) {
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  const out: Buffer[] = []
  const err: Buffer[] = []
  stdout.on('data', (c: Buffer) => out.push(c))
  stderr.on('data', (c: Buffer) => err.push(c))
  const io = { stdout, stderr, env: { TESSERA_STORE: store }, cwd: dir, stdin: Readable.from([stdin ?? new Uint8Array(0)]) }
  const code = await main(argv, io)
  return { code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString() }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-stream-cli-'))
  store = join(dir, 'store')
  png = encodePng({ width: 120, height: 90, colorType: 2, bitDepth: 8, samples: image.data, idatBytes: 500 })
  await writeFile(join(dir, 'image.png'), png)
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('tessera crop of a file or standard input', () => {
  const a = { x: 3, y: 4, width: 50, height: 20 }
  const b = { x: 100, y: 80, width: 20, height: 10 }

  it('crops an image file to raw, exactly, and reports what it read', async () => {
    const result = await run(['crop', 'image.png', '--region', '3,4,50,20', '-o', '-', '-f', 'raw', '--stats'])
    expect(result.stderr).toMatch(/^input bytes read: \d+ of \d+ \(\d+\.\d%\), rows decoded: 24, tiles decoded: 0, peak RSS: \d+ MiB\n$/)
    expect(result.code).toBe(0)
    expect(Buffer.compare(result.stdout, naiveCrop(image, a))).toBe(0)
  })

  it('crops standard input (-) into several files named by a pattern, in one pass', async () => {
    const result = await run(
      ['crop', '-', '--region', '3,4,50,20', '--region', '100,80,20,10', '-o', 'crop-{i}-{x}x{y}.bin', '--stats'],
      png,
    )
    expect(result.code).toBe(0)
    expect(result.stderr).toContain('rows decoded: 90,')
    expect(Buffer.compare(await readFile(join(dir, 'crop-0-3x4.bin')), naiveCrop(image, a))).toBe(0)
    expect(Buffer.compare(await readFile(join(dir, 'crop-1-100x80.bin')), naiveCrop(image, b))).toBe(0)
  })

  it('writes several regions into a directory, in the format -f names', async () => {
    const out = join(dir, 'out')
    await rm(out, { recursive: true, force: true })
    await import('node:fs/promises').then((fs) => fs.mkdir(out))
    const result = await run(['crop', 'image.png', '--region', '3,4,50,20', '--region', '100,80,20,10', '-o', 'out', '-f', 'pam'])
    expect(result.stderr).toBe('')
    expect((await readdir(out)).sort()).toEqual(['crop-0.pam', 'crop-1.pam'])
    const pam = await readFile(join(out, 'crop-1.pam'))
    expect(Buffer.compare(pam.subarray(pam.length - 20 * 10 * 3), naiveCrop(image, b))).toBe(0)
  })

  it('leaves no output file when the stream is truncated', async () => {
    const out = join(dir, 'broken')
    await import('node:fs/promises').then((fs) => fs.mkdir(out))
    const cut = png.subarray(0, Math.floor(png.length * 0.5))
    const result = await run(['crop', '-', '--region', '0,80,10,10', '--region', '0,85,5,5', '-o', 'broken/c-{i}.png'], cut)
    expect(result.code).toBe(1)
    expect(result.stderr).toMatch(/^tessera: ERR_CORRUPT_INPUT: /)
    expect(await readdir(out)).toEqual([])
  })

  it.each([
    [
      'several regions to standard output',
      ['crop', 'image.png', '--region', '0,0,1,1', '--region', '1,1,1,1', '-o', '-'],
      'ERR_INVALID_ARGUMENT',
    ],
    [
      'several regions to one file',
      ['crop', 'image.png', '--region', '0,0,1,1', '--region', '1,1,1,1', '-o', 'x.png'],
      'ERR_INVALID_ARGUMENT',
    ],
    [
      'a pattern naming two regions alike',
      ['crop', 'image.png', '--region', '0,0,1,1', '--region', '0,1,1,1', '-o', 'c-{x}.png'],
      'ERR_INVALID_ARGUMENT',
    ],
    ['a region past the edge', ['crop', 'image.png', '--region', '110,0,20,20', '-o', 'x.png'], 'ERR_INVALID_REGION'],
    ['a level of a PNG', ['crop', 'image.png', '--region', '0,0,1,1', '--level', '1', '-o', 'x.png'], 'ERR_INVALID_ARGUMENT'],
  ])('refuses %s', async (_, argv, code) => {
    const before = await readdir(dir)
    const result = await run(argv)
    expect(result.code).toBe(1)
    expect(result.stderr).toMatch(new RegExp(`^tessera: ${code}: `))
    expect(await readdir(dir)).toEqual(before)
  })

  it('still crops a stored image by CID, several regions included', async () => {
    await writePam(join(dir, 'image.pam'), image)
    const imported = await runCli(store, dir, ['import', 'image.pam', '--tile-size', '32'])
    const cid = imported.stdout.toString().trim()
    const result = await run(['crop', cid, '--region', '3,4,50,20', '--region', '100,80,20,10', '-o', 'stored-{i}.bin'])
    expect(result.code).toBe(0)
    expect(Buffer.compare(await readFile(join(dir, 'stored-0.bin')), naiveCrop(image, a))).toBe(0)
    expect(Buffer.compare(await readFile(join(dir, 'stored-1.bin')), naiveCrop(image, b))).toBe(0)
    // A name that is neither a CID nor a file is looked up in the store.
    const missing = await run(['crop', 'no-such-dataset/x.png', '--region', '0,0,1,1', '-o', 'x.bin'])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toMatch(/^tessera: ERR_NOT_FOUND: /)
  })

  it('says how the input is told apart in --help', async () => {
    const result = await run(['crop', '--help'])
    expect(result.stdout.toString()).toContain('INPUT is, in this order: - (standard input')
  })
})
