/**
 * HTTP test fixtures: a store that records the blocks it serves, synthetic images imported
 * into it, a server over it, and decoding of response bodies with independent readers.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import type { CID } from 'multiformats/cid'
import { createServer, type ServerInit } from '../../src/http/server.js'
import { importImage } from '../../src/image.js'
import type { AbortOptions, BlockStore, BlockWriter, Pin } from '../../src/store/interface.js'
import { MemoryBlockStore } from '../../src/store/memory.js'
import { type TestImage, writePam } from '../helpers/oracle.js'
import { type DecodedImage, readAll } from '../helpers/readers.js'

/** A memory store that counts the blocks read through it, by CID. */
export class CountingStore implements BlockStore {
  readonly inner = new MemoryBlockStore()
  readonly reads: string[] = []
  /** Called before each read: tests use it to slow reads down or to fail them. */
  beforeRead: ((cid: CID, options?: AbortOptions) => Promise<void>) | undefined

  async get(cid: CID, options?: AbortOptions): Promise<Uint8Array> {
    await this.beforeRead?.(cid, options)
    this.reads.push(cid.toString())
    return this.inner.get(cid, options)
  }
  async getMany(cids: readonly CID[], options?: AbortOptions): Promise<Uint8Array[]> {
    const out: Uint8Array[] = []
    for (const cid of cids) out.push(await this.get(cid, options))
    return out
  }
  async getManyUnsafe(cids: readonly CID[], options?: AbortOptions): Promise<Uint8Array[]> {
    const out: Uint8Array[] = []
    for (const cid of cids) {
      await this.beforeRead?.(cid, options)
      this.reads.push(cid.toString())
      out.push((await this.inner.getManyUnsafe([cid], options))[0]!)
    }
    return out
  }
  has(cid: CID): Promise<boolean> {
    return this.inner.has(cid)
  }
  size(cid: CID): Promise<number | undefined> {
    return this.inner.size(cid)
  }
  begin(): Promise<BlockWriter> {
    return this.inner.begin()
  }
  pins(): AsyncIterable<Pin> {
    return this.inner.pins()
  }
  storedBytes(): Promise<number> {
    return this.inner.storedBytes()
  }
  close(): Promise<void> {
    return this.inner.close()
  }
  /** Forgets the reads so far. */
  reset(): void {
    this.reads.length = 0
  }
}

/** A server over a fresh CountingStore, with a temporary directory. */
export interface Fixture {
  readonly app: FastifyInstance
  readonly store: CountingStore
  readonly dir: string
  close(): Promise<void>
}

/** Starts a fixture; `init` overrides server options (the store is the fixture's). */
export async function fixture(init: Omit<Partial<ServerInit>, 'store'> = {}): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-http-'))
  const store = new CountingStore()
  const app = await createServer({ store, tmpDir: dir, importWorkers: 0, ...init })
  await app.ready()
  return {
    app,
    store,
    dir,
    close: async () => {
      await app.close()
      await rm(dir, { recursive: true, force: true })
    },
  }
}

/** Imports a synthetic image (written as PAM) and returns its CID. */
export async function importTestImage(
  fx: Fixture,
  name: string,
  image: TestImage,
  options: { tileSize?: number; pyramid?: boolean } = {},
): Promise<string> {
  const path = join(fx.dir, `${name}.pam`)
  await writePam(path, image)
  const { cid } = await importImage(fx.store, path, { tileSize: options.tileSize ?? 64, pyramid: options.pyramid ?? true, workers: 0 })
  return cid.toString()
}

/** Decodes response bodies (png, tif, jpg, webp, pam...) with libvips' command line, which keeps channels and depth. */
export async function decode(...bodies: Array<{ bytes: Uint8Array; ext: string }>): Promise<DecodedImage[]> {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-http-decode-'))
  try {
    const jobs = await Promise.all(
      bodies.map(async ({ bytes, ext }, i) => {
        const path = join(dir, `${i}.${ext}`)
        await writeFile(path, bytes)
        return { reader: 'vips' as const, path }
      }),
    )
    return await readAll(jobs)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/** The body of an inject() response as bytes. */
export function bytesOf(response: { rawPayload: Buffer }): Uint8Array {
  return new Uint8Array(response.rawPayload)
}

/** Largest absolute difference between two sample arrays of the same depth. */
export function maxDifference(a: Uint8Array, b: Uint8Array, bits: 8 | 16 = 8): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`)
  const x = bits === 8 ? a : new Uint16Array(a.buffer, a.byteOffset, a.length / 2)
  const y = bits === 8 ? b : new Uint16Array(b.buffer, b.byteOffset, b.length / 2)
  let max = 0
  for (let i = 0; i < x.length; i++) max = Math.max(max, Math.abs(x[i]! - y[i]!))
  return max
}

/** Mean absolute difference of two 8-bit sample arrays. */
export function meanDifference(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`)
  let sum = 0
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!)
  return sum / a.length
}
