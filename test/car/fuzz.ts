/**
 * The fuzz target of CAR import (src/car/import.ts, `tessera car import` and the server's CAR
 * upload), for the harness of test/helpers/fuzz.ts. Seeds: the CAR of a small image with its
 * pyramid and of a dataset with two versions, in `car export` order. Half the inputs are byte
 * mutations anywhere (hot: the header and first sections), half mutate one dag-cbor block and
 * rewrite the CIDs that lead to it (test/helpers/car-mutate.ts), so that hostile manifests,
 * indexes and dataset nodes get past the hash checks.
 *
 * One input is imported into a fresh memory store. It must succeed or fail with a Tessera code;
 * a failure leaves the store empty (no block, pin or reference: the import is all or nothing);
 * a success leaves a store that `verify --all` finds whole, every root exports as a CAR again,
 * and every image root crops whole at every level.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { copyFile, mkdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { exportCar } from '../../src/car/export.js'
import { importCar } from '../../src/car/import.js'
import { datasetHead, removeEntries } from '../../src/dataset/dataset.js'
import { importDataset } from '../../src/dataset/import.js'
import { verifyAll } from '../../src/dataset/maintenance.js'
import { tesseraCode } from '../../src/errors.js'
import type { CID } from '../../src/format/block.js'
import { cropImage, importImage, openImage, openStore } from '../../src/image.js'
import type { BlockStore } from '../../src/store/interface.js'
import { mutateCarBlock } from '../helpers/car-mutate.js'
import { type FuzzInput, type FuzzTarget, mutate, type Outcome, random, type Seed } from '../helpers/fuzz.js'

const TESTDATA = fileURLToPath(new URL('../../testdata/', import.meta.url))
/** Where this target's crashers are kept, replayed by test/car/fuzz.test.ts. */
export const CAR_CRASHERS = join(TESTDATA, 'bad/car-crashers')
/** Chunk size of the input stream: small, so boundaries fall inside varints and CIDs. */
const CHUNK = 97

async function collect(bytes: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = []
  for await (const chunk of bytes) chunks.push(chunk.slice())
  return new Uint8Array(Buffer.concat(chunks))
}

async function carSeeds(): Promise<Seed[]> {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-fuzz-car-'))
  const store = await openStore('memory:')
  try {
    const image = await importImage(store, join(TESTDATA, 'gray8.png'), { tileSize: 16, pyramid: true, workers: 0 })
    const src = join(dir, 'src')
    await mkdir(src)
    for (const name of ['palette.png', 'gray1.png', 'graya8.png']) await copyFile(join(TESTDATA, name), join(src, name))
    await importDataset(store, 'fuzz', [src], { tileSize: 32, workers: 0 })
    await removeEntries(store, 'fuzz', ['graya8.png'])
    const dataset = (await datasetHead(store, 'fuzz'))!.cid
    return [
      { name: 'image.car', bytes: await collect(exportCar(store, image.cid)) },
      { name: 'dataset.car', bytes: await collect(exportCar(store, dataset)) },
    ].map((seed) => ({ ...seed, hot: [[0, Math.min(400, seed.bytes.length)] as const] }))
  } finally {
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

const SEEDS = await carSeeds()

/** The valid CARs mutated. */
export function carFuzzSeeds(): readonly Seed[] {
  return SEEDS
}

/** Share of inputs whose mutation goes into one dag-cbor block, with the hashes made to hold. */
const REHASH = 0.5

/** Input `i` of fuzz seed `seed`: a pure function of both. */
export function fuzzInput(seed: number, i: number): FuzzInput {
  const next = random(seed * 1_000_003 + i)
  if (next() < REHASH) {
    const base = SEEDS[Math.floor(next() * SEEDS.length)]!
    return mutateCarBlock(base.bytes, base.name, seed, i, next)
  }
  return mutate(SEEDS, seed, i)
}

async function* chunks(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.length; at += CHUNK) yield bytes.slice(at, at + CHUNK)
}

/** What the store holds that anyone could see: pins, references, stored bytes. */
async function contents(store: BlockStore): Promise<string[]> {
  const lines: string[] = []
  for await (const pin of store.pins()) lines.push(`pin ${pin.cid}`)
  for await (const ref of store.refs!()) lines.push(`ref ${ref.name}`)
  const bytes = await store.storedBytes()
  if (bytes > 0) lines.push(`${bytes} bytes stored`)
  return lines
}

/** Every level of image `cid`, cropped whole to raw. */
async function cropAll(store: BlockStore, cid: CID): Promise<void> {
  const image = await openImage(store, cid)
  for (const [level, { width, height }] of image.manifest.levels.entries()) {
    for await (const _ of await cropImage(image, { x: 0, y: 0, width, height }, { format: 'raw', level })) {
      // every byte produced
    }
  }
}

function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}`.slice(0, 300) : String(error)
}

/** Imports the CAR at `path` into a fresh memory store; see the module comment. */
export async function importMutatedCar(path: string): Promise<Outcome> {
  const bytes = new Uint8Array(readFileSync(path))
  const store = await openStore('memory:')
  try {
    let roots: Awaited<ReturnType<typeof importCar>>['roots']
    try {
      ;({ roots } = await importCar(store, chunks(bytes)))
    } catch (error) {
      const code = tesseraCode(error)
      if (code === undefined) return { kind: 'crash', error: describeError(error) }
      const left = await contents(store)
      if (left.length > 0) return { kind: 'crash', error: `failed with ${code} but the store holds ${left.join(', ')}` }
      return { kind: 'coded', code }
    }
    const { problems } = await verifyAll(store)
    if (problems.length > 0) return { kind: 'crash', error: `imported, then verify found ${JSON.stringify(problems).slice(0, 200)}` }
    for (const root of roots) {
      try {
        await collect(exportCar(store, root.cid))
      } catch (error) {
        return { kind: 'crash', error: `imported, then car export of ${root.cid} failed: ${describeError(error)}` }
      }
      if (root.kind !== 'image') continue
      try {
        await cropAll(store, root.cid)
      } catch (error) {
        return { kind: 'crash', error: `imported, then a crop of ${root.cid} failed: ${describeError(error)}` }
      }
    }
    return { kind: 'ok' }
  } finally {
    await store.close()
  }
}

/** The target's entry for the worker process (test/helpers/fuzz-child.ts). */
export const fuzzOne = importMutatedCar

/** This fuzz target, for runFuzz. */
export const CAR_FUZZ: FuzzTarget = { name: 'car', module: fileURLToPath(import.meta.url), crashers: CAR_CRASHERS }
