/** The installed `tessera` binary (bin/tessera.js over the build in dist/) as a process. */
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
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
