/**
 * Interop with a real IPFS implementation: js-ipfs's `jsipfs` (npm `ipfs` 0.66, installed in
 * test/car/ipfs by `npm install --prefix test/car/ipfs`; it needs a Promise.withResolvers polyfill
 * on Node 20) imports Tessera's CARs (`dag import`, which pins each root and so walks the
 * whole DAG) and exports them again byte for byte (`dag export`); what comes back imports into
 * an empty Tessera store with identical crops.
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { exportCar } from '../../src/car/export.js'
import { importCar } from '../../src/car/import.js'
import { datasetHead, removeEntries } from '../../src/dataset/dataset.js'
import { importDataset } from '../../src/dataset/import.js'
import { iterateEntries, NodeCache } from '../../src/dataset/tree.js'
import { cropImage, importImage, openImage, openStore } from '../../src/image.js'
import type { BlockStore } from '../../src/store/interface.js'

const here = new URL('./ipfs/', import.meta.url).pathname
const jsipfs = join(here, 'node_modules/ipfs/src/cli.js')
const installed = existsSync(jsipfs)
const run = promisify(execFile)
const testdata = new URL('../../testdata/', import.meta.url).pathname

// js-ipfs is a real IPFS implementation in its own package (too large for the project's
// dependencies): the README's test command installs it. Without it this test fails, not skips.
it('has js-ipfs installed (npm install --prefix test/car/ipfs)', () => {
  expect(installed, 'run `npm install --prefix test/car/ipfs` (about 3 minutes), as the README test command does').toBe(true)
})

let dir: string

async function collect(bytes: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Uint8Array[] = []
  for await (const chunk of bytes) chunks.push(chunk)
  return Buffer.concat(chunks)
}

async function ipfs(...args: string[]): Promise<Buffer> {
  const { stdout } = await run(process.execPath, [jsipfs, ...args], {
    encoding: 'buffer',
    maxBuffer: 1 << 28,
    env: { ...process.env, IPFS_PATH: join(dir, 'repo'), NODE_OPTIONS: `--require ${join(here, 'polyfill.cjs')}` },
  })
  return stdout
}

async function crops(store: BlockStore, name: string): Promise<string[]> {
  const head = (await datasetHead(store, name))!
  const out: string[] = []
  for await (const entry of iterateEntries(new NodeCache(store), head.version.entries)) {
    const image = await openImage(store, entry.image)
    const { width, height } = image.manifest
    const bytes = await collect(await cropImage(image, { x: 0, y: 0, width, height }, { format: 'raw' }))
    out.push(`${entry.name} ${bytes.toString('base64')}`)
  }
  return out
}

describe.runIf(installed)('IPFS interop (js-ipfs)', () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tessera-ipfs-'))
  })
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('jsipfs dag import accepts the CARs, dag export gives them back byte-identical, and they import back', async () => {
    const src = join(dir, 'src')
    await mkdir(src)
    for (const name of ['rgb8-icc.png', 'rgb16.png', 'gray8.pgm']) await copyFile(join(testdata, name), join(src, name))
    const store = await openStore(join(dir, 'store'))
    let datasetRoot: string
    let imageRoot: string
    let derivedRoot: string
    try {
      await importDataset(store, 'fixtures', [src], { tileSize: 32, pyramid: true })
      await removeEntries(store, 'fixtures', ['gray8.pgm'])
      const head = (await datasetHead(store, 'fixtures'))!
      datasetRoot = head.cid.toString()
      await writeFile(join(dir, 'dataset.car'), await collect(exportCar(store, head.cid)))
      const image = (await iterateEntries(new NodeCache(store), head.version.entries).next()).value!.image
      imageRoot = image.toString()
      await writeFile(join(dir, 'image.car'), await collect(exportCar(store, image)))
      // An image whose provenance (a weak link, spec/dataset.md §8) is stored: its CAR holds it.
      const derived = await importImage(store, join(testdata, 'rgb16.png'), { tileSize: 64, workers: 0, derivedFrom: image })
      derivedRoot = derived.cid.toString()
      await writeFile(join(dir, 'derived.car'), await collect(exportCar(store, derived.cid)))
    } finally {
      await store.close()
    }

    await ipfs('init', '--profile', 'test')
    const imported = (await ipfs('dag', 'import', ...['dataset', 'image', 'derived'].map((n) => join(dir, `${n}.car`)))).toString()
    // One "pinned root ... success" line per root: the pin walked each whole DAG.
    expect(imported.match(/pinned root\t\S+\tsuccess/g)).toHaveLength(3)
    const datasetBack = await ipfs('dag', 'export', datasetRoot)
    expect(Buffer.compare(datasetBack, await readFile(join(dir, 'dataset.car')))).toBe(0)
    const imageBack = await ipfs('dag', 'export', imageRoot)
    expect(Buffer.compare(imageBack, await readFile(join(dir, 'image.car')))).toBe(0)
    expect(Buffer.compare(await ipfs('dag', 'export', derivedRoot), await readFile(join(dir, 'derived.car')))).toBe(0)

    const source = await openStore(join(dir, 'store'))
    const target = await openStore(join(dir, 'target'))
    try {
      await importCar(
        target,
        (async function* () {
          yield datasetBack
        })(),
      )
      expect(await crops(target, 'fixtures')).toEqual(await crops(source, 'fixtures'))
    } finally {
      await source.close()
      await target.close()
    }
  }, 60_000)
})
