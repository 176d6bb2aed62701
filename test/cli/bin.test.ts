/** The installed `tessera` binary (bin/tessera, a shell wrapper of bin/tessera.js over the build in dist/) as a process. */
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, symlinkSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect, it } from 'vitest'

const root = new URL('../../', import.meta.url).pathname
const bin = join(root, 'bin/tessera.js')

it('runs from the build: import, crop to stdout, and a failing command exits non-zero', async () => {
  expect(existsSync(join(root, 'dist/cli/main.js')), 'dist/ is missing: npm ci (or npm run build) builds it').toBe(true)
  const store = await mkdtemp(join(tmpdir(), 'tessera-bin-'))
  try {
    const env = { ...process.env, TESSERA_STORE: store }
    const cid = execFileSync(process.execPath, [bin, 'import', join(root, 'testdata/gray8.pgm')], { env })
      .toString()
      .trim()
    expect(cid).toMatch(/^bafyrei/)
    const pgm = execFileSync(process.execPath, [bin, 'crop', cid, '--region', '0,0,4,3', '--format', 'pgm', '-o', '-'], { env })
    expect(pgm.subarray(0, 11).toString()).toBe('P5\n4 3\n255\n')
    const bad = spawnSync(process.execPath, [bin, 'crop', cid, '--region', '0,0,400,3', '-o', '-'], { env })
    expect(bad.status).toBe(1)
    expect(bad.stderr.toString()).toMatch(/^tessera: ERR_INVALID_REGION: /)
  } finally {
    await rm(store, { recursive: true, force: true })
  }
})

it('bin/tessera (the package bin) runs bin/tessera.js under glibc malloc and V8 settings, through a symlink, keeping what is set', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-bin-'))
  try {
    // As npm links it: node_modules/.bin/tessera -> the package's bin/tessera.
    const link = join(dir, 'tessera')
    symlinkSync(join(root, 'bin/tessera'), link)
    // A program in place of node that prints what it was given.
    const fake = join(dir, 'node')
    writeFileSync(fake, '#!/bin/sh\necho "$MALLOC_ARENA_MAX $MALLOC_MMAP_THRESHOLD_ [$NODE_OPTIONS] $*"\nexit 3\n', { mode: 0o755 })
    const env: Record<string, string | undefined> = { ...process.env, PATH: `${dir}:${process.env.PATH}` }
    delete env.MALLOC_ARENA_MAX
    delete env.MALLOC_MMAP_THRESHOLD_
    delete env.NODE_OPTIONS
    const run = spawnSync(link, ['crop', 'a b', '-o', '-'], { env })
    expect(run.status).toBe(3)
    expect(run.stdout.toString()).toBe(`2 131072 [--max-semi-space-size=2] ${join(root, 'bin/tessera.js')} crop a b -o -\n`)
    // `sample` leaves glibc's mmap threshold alone, unless the user set one.
    const sample = spawnSync(link, ['sample', 'x'], { env })
    expect(sample.stdout.toString()).toBe(`2  [--max-semi-space-size=2] ${join(root, 'bin/tessera.js')} sample x\n`)
    const sampleMine = spawnSync(link, ['sample', 'x'], { env: { ...env, MALLOC_MMAP_THRESHOLD_: '65536' } })
    expect(sampleMine.stdout.toString()).toBe(`2 65536 [--max-semi-space-size=2] ${join(root, 'bin/tessera.js')} sample x\n`)
    // The user's settings win: a variable already set, an option later in NODE_OPTIONS.
    const mine = spawnSync(link, ['ls'], { env: { ...env, MALLOC_ARENA_MAX: '8', NODE_OPTIONS: '--max-semi-space-size=16' } })
    expect(mine.stdout.toString()).toBe(`8 131072 [--max-semi-space-size=2 --max-semi-space-size=16] ${join(root, 'bin/tessera.js')} ls\n`)
    // And the real thing: a command through the wrapper.
    const real = spawnSync(join(root, 'bin/tessera'), ['import', join(root, 'testdata/gray8.pgm'), '--store', join(dir, 'store')])
    expect(real.stderr.toString()).toBe('')
    expect(real.stdout.toString()).toMatch(/^bafyrei\w+\n$/)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
