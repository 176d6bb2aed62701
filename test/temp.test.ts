/**
 * Temporaries named after their owner (src/temp.ts): what a dead process left is removed once
 * old enough; a live owner's, a young one, and unrelated names are kept.
 */
import { spawnSync } from 'node:child_process'
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ownedPrefix, removeStaleTemporaries } from '../src/temp.js'

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-temp-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** A pid that belonged to a process that has exited. */
function deadPid(): number {
  return Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout)
}

describe('removeStaleTemporaries', () => {
  it('removes a dead owner’s old files and directories, and nothing else', async () => {
    const old = new Date(Date.now() - 2 * 3600_000)
    const dead = deadPid()
    const make = async (name: string, kind: 'file' | 'dir', age: Date | undefined) => {
      const path = join(dir, name)
      if (kind === 'dir') {
        await mkdir(path)
        await writeFile(join(path, 'body'), 'x')
        if (age) await utimes(join(path, 'body'), age, age)
      } else {
        await writeFile(path, 'x')
      }
      if (age) await utimes(path, age, age)
    }
    await make(`tessera-upload-p${dead}-a`, 'dir', old) // dead, old: removed
    await make(`tessera-upload-p${dead}-b`, 'dir', undefined) // dead, young: kept
    await make(`${ownedPrefix('tessera-upload-')}c`, 'dir', old) // alive (this process): kept
    await make('tessera-upload-d', 'dir', old) // no pid, old: removed
    await make(`tessera-upload-p${dead}-e`, 'file', old) // a file: removed
    await make(`other-p${dead}-f`, 'dir', old) // another prefix: kept
    // A dead owner's directory whose spool is still being written (by a process in another pid namespace): kept.
    await make(`tessera-upload-p${dead}-g`, 'dir', old)
    await utimes(join(dir, `tessera-upload-p${dead}-g`, 'body'), new Date(), new Date())
    expect(await removeStaleTemporaries(dir, 'tessera-upload-', { directories: true })).toBe(3)
    expect((await readdir(dir)).sort()).toEqual(
      [`tessera-upload-p${dead}-b`, `${ownedPrefix('tessera-upload-')}c`, `other-p${dead}-f`, `tessera-upload-p${dead}-g`].sort(),
    )
  })

  it('leaves directories alone unless asked', async () => {
    const sub = await mkdtemp(join(tmpdir(), 'tessera-temp-'))
    try {
      const old = new Date(Date.now() - 2 * 3600_000)
      await mkdir(join(sub, 'tessera-decode-p1-x'))
      await utimes(join(sub, 'tessera-decode-p1-x'), old, old)
      expect(await removeStaleTemporaries(sub, 'tessera-decode-')).toBe(0)
    } finally {
      await rm(sub, { recursive: true, force: true })
    }
  })
})
