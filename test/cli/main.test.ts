/**
 * The CLI as a user drives it, through main(argv, io): import, info, crop in every format,
 * export, verify, ls; exit codes and one-line errors; the store unchanged by bad input.
 */
import { execFileSync } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type CliRun, runCli } from '../helpers/cli.js'
import { makeImage, naiveCrop, writePam } from '../helpers/oracle.js'

let dir: string
let store: string

async function run(...argv: string[]): Promise<CliRun> {
  return runCli(store, dir, argv)
}

async function storeListing(): Promise<string[]> {
  const packs = await readdir(join(store, 'packs'))
  const sizes = await Promise.all(packs.map(async (p) => `${p}:${(await stat(join(store, 'packs', p))).size}`))
  const ls = await run('ls')
  return [...sizes, ls.stdout.toString()]
}

const source = makeImage(300, 200, 3, 8)
let cid: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-cli-'))
  store = join(dir, 'store')
  await writePam(join(dir, 'source.pam'), source)
  const result = await run('import', 'source.pam', '--pyramid', '--tile-size', '64')
  expect(result.stderr).toBe('')
  expect(result.code).toBe(0)
  cid = result.stdout.toString().trim()
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('tessera CLI', () => {
  it('imports and prints the image CID; a second import prints the same CID', async () => {
    expect(cid).toMatch(/^bafyrei[a-z2-7]+$/)
    const again = await run('import', 'source.pam', '--pyramid', '--tile-size', '64')
    expect(again.stdout.toString().trim()).toBe(cid)
  })

  it('describes the image', async () => {
    const info = await run('info', cid, '--json')
    expect(info.code).toBe(0)
    const parsed = JSON.parse(info.stdout.toString())
    expect(parsed).toMatchObject({ width: 300, height: 200, channels: 3, bitsPerSample: 8, colorModel: 'rgb', tileSize: 64 })
    expect(parsed.levels).toHaveLength(4) // 300x200, 150x100, 75x50, 38x25
    const text = await run('info', cid)
    expect(text.stdout.toString()).toContain('300 x 200')
  })

  it('crops to raw on stdout, exactly, and reports what it read', async () => {
    const region = { x: 60, y: 10, width: 10, height: 60 }
    const result = await run('crop', cid, '--region', '60,10,10,60', '--format', 'raw', '-o', '-', '--stats')
    expect(result.code).toBe(0)
    expect(Buffer.compare(result.stdout, naiveCrop(source, region))).toBe(0)
    expect(result.stderr).toContain('tiles read: 4')
  })

  it('writes npy that numpy reads with the right shape and pixels', async () => {
    const result = await run('crop', cid, '--region', '0,0,300,200', '-o', 'full.npy')
    expect(result.code).toBe(0)
    const shape = execFileSync('/usr/bin/python3', [
      '-c',
      'import numpy,sys; a=numpy.load(sys.argv[1]); print(a.shape, a.dtype, int(a[199,299,2]))',
      join(dir, 'full.npy'),
    ])
      .toString()
      .trim()
    expect(shape).toBe(`(200, 300, 3) uint8 ${source.data[(199 * 300 + 299) * 3 + 2]}`)
  })

  it('copies stored payloads for a tile-aligned TIFF crop (no decompression) that libvips reads exactly', async () => {
    const result = await run('crop', cid, '--region', '64,64,200,136', '-o', 'aligned.tiff', '--stats')
    expect(result.code).toBe(0)
    expect(result.stderr).toContain('tiles read: 12')
    const raw = join(dir, 'aligned.raw')
    execFileSync('vips', ['rawsave', join(dir, 'aligned.tiff'), raw])
    expect(Buffer.compare(await readFile(raw), naiveCrop(source, { x: 64, y: 64, width: 200, height: 136 }))).toBe(0)
  })

  it('exports the whole image pixel-identical', async () => {
    const result = await run('export', cid, '-o', 'export.pam')
    expect(result.code).toBe(0)
    const pam = await readFile(join(dir, 'export.pam'))
    expect(Buffer.compare(pam.subarray(pam.length - source.data.length), source.data)).toBe(0)
  })

  it('decodes a crop or export of 1024 tiles or more on a thread per core, exactly; PNG keeps its own threads', async () => {
    const big = makeImage(600, 520, 3, 8, 21)
    await writePam(join(dir, 'big.pam'), big)
    const imported = await run('import', 'big.pam', '--tile-size', '16')
    const bigCid = imported.stdout.toString().trim()
    // 38 x 33 tiles.
    const exported = await run('export', bigCid, '-f', 'raw', '-o', '-', '--stats')
    expect(exported.code).toBe(0)
    expect(exported.stderr.toString()).toMatch(/tiles read: 1254, .*, decoded on \d+ threads\n$/)
    expect(Buffer.compare(exported.stdout, big.data)).toBe(0)
    const region = { x: 7, y: 9, width: 590, height: 500 }
    const cropped = await run('crop', bigCid, '--region', '7,9,590,500', '-o', 'big.pam', '--stats')
    expect(cropped.stderr.toString()).toMatch(/decoded on \d+ threads/)
    const pam = await readFile(join(dir, 'big.pam'))
    expect(Buffer.compare(pam.subarray(pam.length - region.width * region.height * 3), naiveCrop(big, region))).toBe(0)
    // Smaller crops, and PNG (deflated on its own threads), decode on the calling thread.
    const small = await run('crop', bigCid, '--region', '7,9,300,300', '-f', 'raw', '-o', '-', '--stats')
    expect(small.stderr.toString()).not.toContain('decoded on')
    expect(Buffer.compare(small.stdout, naiveCrop(big, { x: 7, y: 9, width: 300, height: 300 }))).toBe(0)
    const png = await run('export', bigCid, '-o', 'big.png', '--stats')
    expect(png.code).toBe(0)
    expect(png.stderr.toString()).not.toContain('decoded on')
    // Nor does a tile-aligned zstd TIFF, which is the stored payloads.
    const tiff = await run('export', bigCid, '-o', 'big.tiff', '--stats')
    expect(tiff.code).toBe(0)
    expect(tiff.stderr.toString()).not.toContain('decoded on')
    const unaligned = await run('crop', bigCid, '--region', '1,0,599,520', '-o', 'big2.tiff', '--stats')
    expect(unaligned.stderr.toString()).toMatch(/decoded on \d+ threads/)
    execFileSync('vips', ['rawsave', join(dir, 'big2.tiff'), join(dir, 'big2.raw')])
    expect(Buffer.compare(await readFile(join(dir, 'big2.raw')), naiveCrop(big, { x: 1, y: 0, width: 599, height: 520 }))).toBe(0)
  })

  it('verifies an image', async () => {
    const result = await run('verify', cid)
    expect(result.code).toBe(0)
    expect(result.stdout.toString()).toMatch(/^ok: \d+ blocks/)
  })

  it('writes the format -f names whatever the extension, and tiff for an extension the table does not know', async () => {
    const png = await run('crop', cid, '--region', '0,0,5,5', '-f', 'png', '-o', 'small.jpg')
    expect(png.code).toBe(0)
    expect((await readFile(join(dir, 'small.jpg'))).subarray(1, 4).toString()).toBe('PNG')
    const tiff = await run('crop', cid, '--region', '0,0,5,5', '-o', 'small.out')
    expect(tiff.code).toBe(0)
    expect((await readFile(join(dir, 'small.out'))).subarray(0, 2).toString()).toBe('II')
  })

  it('prints its version', async () => {
    const { version } = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
    for (const flag of ['--version', '-V']) {
      const result = await run(flag)
      expect([result.code, result.stdout.toString()]).toEqual([0, `${version}\n`])
    }
  })

  it('lists images', async () => {
    const result = await run('ls')
    expect(result.stdout.toString()).toContain(`${cid}\t`)
    expect(result.stdout.toString()).toContain('source.pam')
  })

  const failures: Array<[string, string[], string, number]> = [
    ['a region past the edge', ['crop', 'CID', '--region', '290,0,20,20', '-o', 'x.tiff'], 'ERR_INVALID_REGION', 1],
    ['an empty region', ['crop', 'CID', '--region', '0,0,0,20', '-o', 'x.tiff'], 'ERR_INVALID_REGION', 1],
    ['a malformed region', ['crop', 'CID', '--region', '1,2,3', '-o', 'x.tiff'], 'ERR_INVALID_REGION', 1],
    ['a missing level', ['crop', 'CID', '--region', '0,0,1,1', '--level', '7', '-o', 'x.tiff'], 'ERR_INVALID_ARGUMENT', 1],
    ['a bad CID', ['crop', 'bafy-nope', '--region', '0,0,1,1', '-o', 'x.tiff'], 'ERR_INVALID_CID', 1],
    ['an unknown image', ['info', 'bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'], 'ERR_NOT_FOUND', 1],
    ['a missing input file', ['import', 'nope.png'], 'ERR_NOT_FOUND', 1],
    ['a tile size not a multiple of 16', ['import', 'source.pam', '--tile-size', '17'], 'ERR_INVALID_ARGUMENT', 1],
    ['a zstd level past 22', ['import', 'source.pam', '--zstd-level', '23'], 'ERR_INVALID_ARGUMENT', 1],
    ['too many workers', ['import', 'source.pam', '--workers', '65'], 'ERR_INVALID_ARGUMENT', 1],
    ['an unknown predictor', ['import', 'source.pam', '--predictor', '3'], 'argument', 2],
    ['a zstd level that is neither a number nor auto', ['import', 'source.pam', '--zstd-level', 'fast'], 'argument', 2],
    ['a tile cache that is not a number', ['serve', '--tile-cache', 'lots'], 'argument', 2],
    ['an unknown format', ['crop', 'CID', '--region', '0,0,1,1', '--format', 'gif', '-o', 'x'], 'argument', 2],
    ['a missing option', ['crop', 'CID', '-o', 'x.tiff'], 'required option', 2],
    // Lossy formats are for browsers: not TIFF bytes under a .jpg name.
    ['an output named .jpg', ['crop', 'CID', '--region', '0,0,1,1', '-o', 'x.jpg'], 'ERR_INVALID_ARGUMENT: x.jpg names a jpg output', 1],
    ['an export named .JPEG', ['export', 'CID', '-o', 'x.JPEG'], 'names a jpg output', 1],
    [
      'a stream crop named .webp',
      ['crop', 'source.pam', '--region', '0,0,1,1', '--region', '1,1,1,1', '-o', 'x-{i}.webp'],
      'names a webp output',
      1,
    ],
  ]
  for (const [what, argv, expected, code] of failures) {
    it(`fails on ${what} with exit ${code}, one line, and the store unchanged`, async () => {
      const before = await storeListing()
      const result = await run(...argv.map((a) => (a === 'CID' ? cid : a)))
      expect(result.code).toBe(code)
      expect(result.stderr).toContain(expected)
      if (code === 1) expect(result.stderr.trim().split('\n')).toHaveLength(1)
      expect(await storeListing()).toEqual(before)
      expect((await readdir(dir)).filter((f) => f.startsWith('x'))).toEqual([])
    })
  }

  it('rejects a truncated input with ERR_CORRUPT_INPUT and leaves the store unchanged', async () => {
    const before = await storeListing()
    const { writeFile } = await import('node:fs/promises')
    const pam = await readFile(join(dir, 'source.pam'))
    await writeFile(join(dir, 'truncated.pam'), pam.subarray(0, pam.length - 1000))
    const result = await run('import', 'truncated.pam')
    expect(result.code).toBe(1)
    expect(result.stderr).toContain('ERR_CORRUPT_INPUT')
    expect(await storeListing()).toEqual(before)
  })
})
