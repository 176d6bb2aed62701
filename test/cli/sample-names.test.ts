/**
 * `tessera sample` with dataset names (spec/sample.md §1.1): `NAME` samples every entry of the
 * dataset's newest version, `NAME/dir` every entry under a directory, `NAME/path` one entry, a
 * version CID every entry of that version; the regions file names each sample's image CID, so
 * the batch is what the same list of CIDs gives.
 */
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type CliRun, runCli } from '../helpers/cli.js'
import { makeImage, writePam } from '../helpers/oracle.js'

let dir: string
let store: string

async function run(...argv: string[]): Promise<CliRun> {
  return runCli(store, dir, argv)
}

/** The image CID column of a regions CSV, one per sample. */
async function cidsOf(file: string): Promise<string[]> {
  const lines = (await readFile(join(dir, file), 'utf8')).trim().split('\n').slice(1)
  return lines.map((line) => line.split(',')[1]!)
}

/** Entry name -> image CID: each file is also imported on its own, which gives the same CID. */
const cids: Record<string, string> = {}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-cli-sample-names-'))
  store = join(dir, 'store')
  const files = { 'a.pam': 1, 'day1/b.pam': 2, 'day1/c.pam': 3, 'day2/d.pam': 4 }
  for (const [name, seed] of Object.entries(files)) {
    const path = join(dir, 'shots', name)
    await mkdir(join(path, '..'), { recursive: true })
    await writePam(path, makeImage(64, 48, 3, 8, seed))
    // The same file imported alone has the same CID as its entry (same tiling).
    const alone = await run('import', path, '--tile-size', '16')
    expect(alone.code, alone.stderr).toBe(0)
    cids[name] = alone.stdout.toString().trim()
  }
  const result = await run('import', 'shots', '--dataset', 'shots', '--tile-size', '16')
  expect(result.code, result.stderr).toBe(0)
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('tessera sample with names', () => {
  it.each([
    ['a whole dataset', ['shots'], ['a.pam', 'day1/b.pam', 'day1/c.pam', 'day2/d.pam']],
    ['a directory', ['shots/day1'], ['day1/b.pam', 'day1/c.pam']],
    ['an entry and a directory', ['shots/a.pam', 'shots/day2/'], ['a.pam', 'day2/d.pam']],
  ])('samples %s', async (_what, specs, names) => {
    const argv = (list: string[], out: string) => [
      'sample',
      ...list,
      '--size',
      '16',
      '--count',
      '40',
      '--seed',
      '3',
      '-o',
      `${out}.npy`,
      '--regions',
      `${out}.csv`,
    ]
    const byName = await run(...argv(specs, 'named'))
    expect(byName.code, byName.stderr).toBe(0)
    const drawn = new Set(await cidsOf('named.csv'))
    expect([...drawn].sort()).toEqual(names.map((n) => cids[n]!).sort())
    // The same batch as the CIDs listed in name order.
    const byCid = await run(
      ...argv(
        names.map((n) => cids[n]!),
        'bycid',
      ),
    )
    expect(byCid.code, byCid.stderr).toBe(0)
    expect(await readFile(join(dir, 'named.npy'))).toEqual(await readFile(join(dir, 'bycid.npy')))
  })

  it.each([
    ['a missing dataset', 'nosuch', 'ERR_INVALID_CID'],
    ['a missing entry', 'shots/nope.pam', 'ERR_NOT_FOUND'],
    ['a malformed path', 'shots//a.pam', 'ERR_INVALID_ARGUMENT'],
  ])('fails on %s', async (_what, spec, code) => {
    const result = await run('sample', spec, '--size', '16', '--count', '1', '--seed', '1', '-o', 'x.npy')
    expect(result.code).toBe(1)
    expect(result.stderr).toContain(code)
  })
})
