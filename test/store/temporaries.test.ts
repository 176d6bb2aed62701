/**
 * A writer killed between writing a temporary and renaming it leaves `<key>.tmp-p<pid>-<hex>`
 * (issue 10): gc removes it once its process is gone and it is an hour old, and keeps a live
 * writer's, a young one, and everything the store names.
 */
import { spawnSync } from 'node:child_process'
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { collectGarbage, verifyAll } from '../../src/dataset/maintenance.js'
import { cropImage, importImage, openImage } from '../../src/image.js'
import { openStoreAt } from '../../src/store/open.js'
import { makeImage, naiveCrop, writePam } from '../helpers/oracle.js'

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-tmp-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('temporaries of killed writers', () => {
  it('are removed by gc when their process is gone and they are old', async () => {
    const location = join(dir, 'store')
    const image = makeImage(70, 50, 3, 8, 5)
    await writePam(join(dir, 'a.pam'), image)
    const store = await openStoreAt(location)
    try {
      const { cid } = await importImage(store, join(dir, 'a.pam'), { tileSize: 32, workers: 0 })
      const dead = Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout)
      const old = new Date(Date.now() - 2 * 3600_000)
      const files = {
        deadOld: join(location, 'log', `000000000099.json.tmp-p${dead}-0a1b2c3d4e5f`),
        unnamedOld: join(location, 'packs', 'x.idx.tmp-0a1b2c3d4e5f'),
        deadYoung: join(location, 'log', `000000000098.json.tmp-p${dead}-0a1b2c3d4e5f`),
        liveOld: join(location, 'txns', `y.json.tmp-p${process.pid}-0a1b2c3d4e5f`),
      }
      await mkdir(join(location, 'txns'), { recursive: true })
      for (const [name, path] of Object.entries(files)) {
        await writeFile(path, 'partial')
        if (name.endsWith('Old')) await utimes(path, old, old)
      }
      await collectGarbage(store)
      const left = async (sub: string) => (await readdir(join(location, sub))).filter((n) => n.includes('.tmp-'))
      expect([...(await left('log')), ...(await left('packs')), ...(await left('txns'))].sort()).toEqual(
        [`000000000098.json.tmp-p${dead}-0a1b2c3d4e5f`, `y.json.tmp-p${process.pid}-0a1b2c3d4e5f`].sort(),
      )
      const region = { x: 3, y: 4, width: 60, height: 40 }
      const chunks: Uint8Array[] = []
      for await (const chunk of await cropImage(await openImage(store, cid), region, { format: 'raw' })) chunks.push(chunk)
      expect(new Uint8Array(Buffer.concat(chunks))).toEqual(naiveCrop(image, region))
      expect((await verifyAll(store)).problems).toEqual([])
    } finally {
      await store.close()
    }
  })
})
