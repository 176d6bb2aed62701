/**
 * `tessera sample` through main(argv, io): a seeded batch as one npy array that numpy reads with
 * the right shape and pixels, raw on stdout, the regions file, determinism, and failures that
 * leave no output file.
 */
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Region } from '../../src/format/interface.js'
import { type CliRun, runCli } from '../helpers/cli.js'
import { makeImage, naiveCrop, type TestImage, writePam } from '../helpers/oracle.js'

let dir: string
let store: string

async function run(...argv: string[]): Promise<CliRun> {
  return runCli(store, dir, argv)
}

const images: Record<string, TestImage> = {
  a: makeImage(300, 200, 3, 8, 1),
  b: makeImage(150, 260, 3, 8, 2),
  gray: makeImage(120, 90, 1, 16, 3),
}
const cids: Record<string, string> = {}
const byCid = new Map<string, TestImage>()

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-cli-sample-'))
  store = join(dir, 'store')
  for (const [name, image] of Object.entries(images)) {
    await writePam(join(dir, `${name}.pam`), image)
    const result = await run('import', `${name}.pam`, '--tile-size', '64', '--pyramid')
    expect(result.code).toBe(0)
    cids[name] = result.stdout.toString().trim()
    byCid.set(cids[name]!, image)
  }
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

interface Row {
  index: number
  cid: string
  x: number
  y: number
  width: number
  height: number
  level: number
}

function parseCsv(text: string): Row[] {
  const [header, ...lines] = text.trim().split('\n')
  expect(header).toBe('index,cid,x,y,width,height,level')
  return lines.map((line) => {
    const [index, cid, x, y, width, height, level] = line.split(',')
    return {
      index: Number(index),
      cid: cid!,
      x: Number(x),
      y: Number(y),
      width: Number(width),
      height: Number(height),
      level: Number(level),
    }
  })
}

const crop = (row: Row) => naiveCrop(byCid.get(row.cid)!, row as Region)
const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex')

describe('tessera sample', () => {
  it('writes one npy array (count, size, size, channels) that numpy reads with the right pixels, and the regions as CSV', async () => {
    const result = await run(
      'sample',
      cids.a!,
      cids.b!,
      '--size',
      '48',
      '--count',
      '12',
      '--seed',
      '7',
      '-o',
      'batch.npy',
      '--regions',
      'regions.csv',
    )
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    const rows = parseCsv(await readFile(join(dir, 'regions.csv'), 'utf8'))
    expect(rows.map((r) => r.index)).toEqual([...Array(12).keys()])
    expect(new Set(rows.map((r) => r.cid))).toEqual(new Set([cids.a, cids.b]))
    const out = execFileSync('/usr/bin/python3', [
      '-c',
      'import numpy,sys,hashlib; a=numpy.load(sys.argv[1]); print(a.shape, a.dtype); [print(hashlib.sha256(s.tobytes()).hexdigest()) for s in a]',
      join(dir, 'batch.npy'),
    ])
      .toString()
      .trim()
      .split('\n')
    expect(out[0]).toBe('(12, 48, 48, 3) uint8')
    expect(out.slice(1)).toEqual(rows.map((row) => sha(crop(row))))
  })

  it('is deterministic: the same seed gives the same file, another seed another', async () => {
    const args = (seed: string, out: string) => ['sample', cids.a!, cids.b!, '--size', '32', '--count', '5', '--seed', seed, '-o', out]
    expect((await run(...args('run-1', 'one.npy'))).code).toBe(0)
    expect((await run(...args('run-1', 'two.npy'))).code).toBe(0)
    expect((await run(...args('run-2', 'three.npy'))).code).toBe(0)
    const [one, two, three] = await Promise.all(['one.npy', 'two.npy', 'three.npy'].map((f) => readFile(join(dir, f))))
    expect(Buffer.compare(one!, two!)).toBe(0)
    expect(Buffer.compare(one!, three!)).not.toBe(0)
  })

  it('writes raw samples on stdout with -o -, and the regions as JSON; --align puts origins on the tile grid', async () => {
    const result = await run(
      'sample',
      cids.a!,
      '--size',
      '64x32',
      '--count',
      '6',
      '--seed',
      '3',
      '--align',
      '-f',
      'raw',
      '-o',
      '-',
      '--regions',
      'r.json',
    )
    expect(result.code).toBe(0)
    const rows = JSON.parse(await readFile(join(dir, 'r.json'), 'utf8')) as Row[]
    expect(rows).toHaveLength(6)
    for (const row of rows) {
      expect(row).toMatchObject({ cid: cids.a, width: 64, height: 32, level: 0 })
      expect(row.x % 64).toBe(0)
      expect(row.y % 64).toBe(0)
    }
    expect(Buffer.compare(result.stdout, Buffer.concat(rows.map(crop)))).toBe(0)
  })

  it('writes a 16-bit batch as <u2 and samples a pyramid level', async () => {
    const deep = await run('sample', cids.gray!, '--size', '20', '--count', '4', '--seed', '1', '-o', 'deep.npy', '--regions', 'deep.csv')
    expect(deep.code).toBe(0)
    const rows = parseCsv(await readFile(join(dir, 'deep.csv'), 'utf8'))
    const out = execFileSync('/usr/bin/python3', [
      '-c',
      'import numpy,sys; a=numpy.load(sys.argv[1]); print(a.shape, a.dtype.str); sys.stdout.buffer.write(a.astype("<u2").tobytes())',
      join(dir, 'deep.npy'),
    ])
    const newline = out.indexOf(10)
    expect(out.subarray(0, newline).toString()).toBe('(4, 20, 20, 1) <u2')
    expect(Buffer.compare(out.subarray(newline + 1), Buffer.concat(rows.map(crop)))).toBe(0)

    const level = await run(
      'sample',
      cids.a!,
      '--size',
      '16',
      '--count',
      '3',
      '--seed',
      '1',
      '--level',
      '2',
      '-o',
      'level.raw',
      '--regions',
      'level.csv',
    )
    expect(level.code).toBe(0)
    const levelRows = parseCsv(await readFile(join(dir, 'level.csv'), 'utf8'))
    for (const row of levelRows) {
      expect(row.level).toBe(2)
      expect(row.x + 16).toBeLessThanOrEqual(75) // level 2 of 300x200 is 75x50
    }
    expect((await readFile(join(dir, 'level.raw'))).length).toBe(3 * 16 * 16 * 3)
  })

  it('prints its help', async () => {
    const result = await run('sample', '--help')
    expect(result.code).toBe(0)
    expect(result.stdout.toString()).toContain('--regions')
  })

  const failures: Array<[string, string[], string, number]> = [
    ['samples larger than an image', ['A', 'B', '--size', '201', '--count', '2', '--seed', '1', '-o', 'x.npy'], 'ERR_INVALID_ARGUMENT', 1],
    ['mixed pixel formats', ['A', 'GRAY', '--size', '8', '--count', '2', '--seed', '1', '-o', 'x.npy'], 'ERR_INVALID_ARGUMENT', 1],
    ['a count of 0', ['A', '--size', '8', '--count', '0', '--seed', '1', '-o', 'x.npy'], 'ERR_INVALID_ARGUMENT', 1],
    ['a seed of 2^32', ['A', '--size', '8', '--count', '1', '--seed', '4294967296', '-o', 'x.npy'], 'ERR_INVALID_ARGUMENT', 1],
    ['a missing level', ['A', '--size', '8', '--count', '1', '--seed', '1', '--level', '9', '-o', 'x.npy'], 'ERR_INVALID_ARGUMENT', 1],
    ['a bad CID', ['bafy-nope', '--size', '8', '--count', '1', '--seed', '1', '-o', 'x.npy'], 'ERR_INVALID_CID', 1],
    ['both outputs on stdout', ['A', '--size', '8', '--count', '1', '--seed', '1', '-o', '-', '--regions', '-'], 'ERR_INVALID_ARGUMENT', 1],
    ['a malformed size', ['A', '--size', '8x', '--count', '1', '--seed', '1', '-o', 'x.npy'], 'expected N or WxH', 2],
    ['a missing seed', ['A', '--size', '8', '--count', '1', '-o', 'x.npy'], 'required option', 2],
    ['an unknown format', ['A', '--size', '8', '--count', '1', '--seed', '1', '-f', 'png', '-o', 'x.png'], 'argument', 2],
    // It was an npy file under that name.
    ['an output named as an image', ['A', '--size', '8', '--count', '1', '--seed', '1', '-o', 'x.png'], 'names a png output', 1],
  ]
  for (const [what, argv, expected, code] of failures) {
    it(`fails on ${what} with exit ${code} and no output file`, async () => {
      const names: Record<string, string> = { A: cids.a!, B: cids.b!, GRAY: cids.gray! }
      const regions = argv.includes('--regions') ? [] : ['--regions', 'x.csv']
      const result = await run('sample', ...argv.map((a) => names[a] ?? a), ...regions)
      expect(result.code).toBe(code)
      expect(result.stderr).toContain(expected)
      if (code === 1) expect(result.stderr.trim().split('\n')).toHaveLength(1)
      expect((await readdir(dir)).filter((f) => f.startsWith('x'))).toEqual([])
    })
  }
})
