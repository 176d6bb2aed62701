import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { rawBlock } from '../../src/format/block.js'
import type { BlockStore } from '../../src/store/interface.js'
import { MemoryBlockStore } from '../../src/store/memory.js'
import { openStoreAt as openPackStore } from '../../src/store/open.js'
import { deleteS3Prefix, missingS3, s3RunUrl } from '../helpers/s3.js'

const a = rawBlock(new TextEncoder().encode('tile a'))
const b = rawBlock(new TextEncoder().encode('tile b, a little longer'))
const missing = rawBlock(new TextEncoder().encode('never stored'))

/** The contract every BlockStore backend must meet. */
function blockStoreSuite(name: string, setup: () => Promise<BlockStore>, teardown: (store: BlockStore) => Promise<void>) {
  describe(`${name} block store`, () => {
    let store: BlockStore
    beforeEach(async () => {
      store = await setup()
    })
    afterEach(async () => {
      await teardown(store)
    })

    it('stores blocks, visible only after commit', async () => {
      const writer = await store.begin()
      expect(await writer.put(a.cid, a.bytes)).toBe(true)
      expect(await store.has(a.cid)).toBe(false)
      await writer.commit()
      expect(await store.has(a.cid)).toBe(true)
      expect(await store.get(a.cid)).toEqual(a.bytes)
      expect(await store.size(a.cid)).toBe(a.bytes.length)
    })

    it('stores a block once, within and across transactions', async () => {
      const first = await store.begin()
      expect(await first.put(a.cid, a.bytes)).toBe(true)
      expect(await first.put(a.cid, a.bytes)).toBe(false)
      expect(first.newBytes).toBe(a.bytes.length)
      await first.commit()
      const before = await store.storedBytes()
      const second = await store.begin()
      expect(await second.put(a.cid, a.bytes)).toBe(false)
      expect(second.newBytes).toBe(0)
      await second.commit()
      expect(await store.storedBytes()).toBe(before)
    })

    it('leaves nothing behind on abort', async () => {
      const before = await store.storedBytes()
      const writer = await store.begin()
      await writer.put(b.cid, b.bytes)
      writer.pin(b.cid, 'b')
      await writer.abort()
      expect(await store.has(b.cid)).toBe(false)
      expect(await store.storedBytes()).toBe(before)
      const pins = []
      for await (const pin of store.pins()) pins.push(pin)
      expect(pins).toEqual([])
    })

    it('returns many blocks in order and fails with ERR_NOT_FOUND on a missing one', async () => {
      const writer = await store.begin()
      await writer.put(a.cid, a.bytes)
      await writer.put(b.cid, b.bytes)
      await writer.commit()
      expect(await store.getMany([b.cid, a.cid, b.cid])).toEqual([b.bytes, a.bytes, b.bytes])
      expect(await store.getManyUnsafe([b.cid, a.cid])).toEqual([b.bytes, a.bytes])
      await expect(store.getManyUnsafe([missing.cid])).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' })
      await expect(store.get(missing.cid)).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' })
      await expect(store.getMany([a.cid, missing.cid])).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' })
      expect(await store.size(missing.cid)).toBeUndefined()
    })

    it('records pins with the blocks', async () => {
      const writer = await store.begin()
      await writer.put(a.cid, a.bytes)
      writer.pin(a.cid, 'image a')
      await writer.commit()
      const pins = []
      for await (const pin of store.pins()) pins.push(pin)
      expect(pins.map((pin) => [pin.cid.toString(), pin.label])).toEqual([[a.cid.toString(), 'image a']])
    })

    it('honours an aborted signal', async () => {
      await expect(store.get(a.cid, { signal: AbortSignal.abort() })).rejects.toThrow()
    })

    it('unpins on commit, with the other changes', async () => {
      const writer = await store.begin()
      await writer.put(a.cid, a.bytes)
      writer.pin(a.cid, 'a')
      writer.pin(b.cid, 'b')
      await writer.commit()
      const unpin = await store.begin()
      unpin.unpin(a.cid)
      unpin.unpin(missing.cid)
      await unpin.commit()
      const pins = []
      for await (const pin of store.pins()) pins.push(pin.cid.toString())
      expect(pins).toEqual([b.cid.toString()])
    })

    it('holds named references: set, replaced and deleted atomically on commit, listed by prefix in byte order', async () => {
      expect(await store.ref!('dataset/x')).toBeUndefined()
      const writer = await store.begin()
      writer.setRef('dataset/x', a.cid)
      writer.setRef('dataset/\u00e9', b.cid)
      writer.setRef('dataset/Z', b.cid)
      writer.setRef('other', a.cid)
      expect(await store.ref!('dataset/x')).toBeUndefined()
      await writer.commit()
      expect((await store.ref!('dataset/x'))?.toString()).toBe(a.cid.toString())
      const names = async (prefix?: string) => {
        const out = []
        for await (const ref of store.refs!(prefix === undefined ? {} : { prefix })) out.push(`${ref.name}=${ref.cid}`)
        return out
      }
      expect(await names('dataset/')).toEqual([`dataset/Z=${b.cid}`, `dataset/x=${a.cid}`, `dataset/\u00e9=${b.cid}`])
      expect(await names()).toHaveLength(4)
      const change = await store.begin()
      change.setRef('dataset/x', b.cid)
      change.setRef('dataset/Z', undefined)
      await change.commit()
      expect(await names('dataset/')).toEqual([`dataset/x=${b.cid}`, `dataset/\u00e9=${b.cid}`])
      const aborted = await store.begin()
      aborted.setRef('dataset/x', a.cid)
      await aborted.abort()
      expect((await store.ref!('dataset/x'))?.toString()).toBe(b.cid.toString())
      const bad = await store.begin()
      expect(() => bad.setRef('', a.cid)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }))
      expect(() => bad.setRef('x'.repeat(1025), a.cid)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }))
      await bad.abort()
    })

    it('collects: keeps what mark keeps, deletes the rest, and gives the bytes back', async () => {
      const writer = await store.begin()
      await writer.put(a.cid, a.bytes)
      await writer.put(b.cid, b.bytes)
      await writer.commit()
      const before = await store.storedBytes()
      const keepA = async () => (mh: Uint8Array) => Buffer.from(mh).equals(a.cid.multihash.bytes)
      const dry = await store.collect!(keepA, { dryRun: true })
      expect(dry).toMatchObject({ keptBlocks: 1, deletedBlocks: 1, deletedBytes: b.bytes.length })
      expect(await store.has(b.cid)).toBe(true)
      expect(await store.storedBytes()).toBe(before)
      const phases: string[] = []
      const result = await store.collect!(keepA, { onPhase: (phase) => phases.push(phase) })
      expect(result).toMatchObject({ keptBlocks: 1, keptBytes: a.bytes.length, deletedBlocks: 1, deletedBytes: b.bytes.length })
      expect(phases[0]).toBe('marked')
      expect(phases.at(-1)).toBe('done')
      expect(await store.has(b.cid)).toBe(false)
      expect(await store.get(a.cid)).toEqual(a.bytes)
      expect(await store.storedBytes()).toBeLessThan(before)
      expect(result.bytesAfter).toBe(await store.storedBytes())
      // Deleted means gone: putting it again writes it again.
      const again = await store.begin()
      expect(await again.put(b.cid, b.bytes)).toBe(true)
      await again.commit()
      expect(await store.get(b.cid)).toEqual(b.bytes)
    })

    it('collects beside an open transaction: a block it reused from a dropped pack is copied when it commits', async () => {
      const first = await store.begin()
      await first.put(a.cid, a.bytes)
      await first.put(b.cid, b.bytes)
      await first.commit()
      // A transaction reuses a (dedup: not written again), then a collection drops a and b.
      const open = await store.begin()
      expect(await open.put(a.cid, a.bytes)).toBe(false)
      await store.collect!(async () => () => false)
      expect(await store.has(a.cid)).toBe(false)
      // The transaction commits a reference to a: a is copied from the dropped pack, not lost.
      open.setRef('keep', a.cid)
      await open.commit()
      expect(await store.get(a.cid)).toEqual(a.bytes)
      expect(await store.has(b.cid)).toBe(false)
      // A second collection keeps a (referenced) and gives b's space back.
      const keepA = async () => (mh: Uint8Array) => Buffer.from(mh).equals(a.cid.multihash.bytes)
      await store.collect!(keepA)
      expect(await store.get(a.cid)).toEqual(a.bytes)
    })

    it('compares and swaps references: a stale expectation fails with ERR_CONFLICT and leaves the transaction open', async () => {
      const one = await store.begin()
      const two = await store.begin()
      one.setRef('dataset/r', a.cid, null)
      two.setRef('dataset/r', b.cid, null)
      await one.commit()
      await expect(two.commit()).rejects.toMatchObject({ code: 'ERR_CONFLICT' })
      expect((await store.ref!('dataset/r'))?.toString()).toBe(a.cid.toString())
      // Looked again, the loser retries against what it now sees.
      two.setRef('dataset/r', b.cid, a.cid)
      await two.commit()
      expect((await store.ref!('dataset/r'))?.toString()).toBe(b.cid.toString())
    })
  })
}

blockStoreSuite(
  'memory',
  async () => new MemoryBlockStore(),
  async () => {},
)

const dirs = new Map<BlockStore, string>()
blockStoreSuite(
  'pack',
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tessera-store-'))
    const store = await openPackStore(dir)
    dirs.set(store, dir)
    return store
  },
  async (store) => {
    await store.close()
    await rm(dirs.get(store)!, { recursive: true, force: true })
  },
)

blockStoreSuite(
  'memory: location',
  async () => openPackStore('memory:'),
  async (store) => store.close(),
)

// On a real S3 server (test/helpers/s3.ts): each test's store under a prefix of its own, deleted after.
const s3Url = s3RunUrl('block-store')
if (s3Url !== undefined) {
  const prefixes = new Map<BlockStore, string>()
  blockStoreSuite(
    's3',
    async () => {
      const url = `${s3Url}/${prefixes.size}`
      const store = await openPackStore(url)
      prefixes.set(store, url)
      return store
    },
    async (store) => {
      await store.close()
      await deleteS3Prefix(prefixes.get(store)!)
    },
  )
} else {
  missingS3('block store suite')
}

describe('pack store on disk', () => {
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tessera-store-'))
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('persists across reopen and removes empty packs', async () => {
    let store = await openPackStore(dir)
    const writer = await store.begin()
    await writer.put(a.cid, a.bytes)
    await writer.commit()
    const empty = await store.begin()
    await empty.put(a.cid, a.bytes)
    await empty.commit()
    expect((await readdir(join(dir, 'packs'))).filter((name) => name.endsWith('.pack'))).toHaveLength(1)
    await store.close()
    store = await openPackStore(dir)
    expect(await store.get(a.cid)).toEqual(a.bytes)
    await store.close()
  })

  it('detects a corrupted pack byte by hash', async () => {
    const store = await openPackStore(dir)
    const writer = await store.begin()
    await writer.put(b.cid, b.bytes)
    await writer.commit()
    const [pack] = (await readdir(join(dir, 'packs'))).filter((name) => name.endsWith('.pack'))
    const path = join(dir, 'packs', pack!)
    const bytes = await readFile(path)
    bytes[bytes.length - 1]! ^= 1
    await writeFile(path, bytes)
    await expect(store.get(b.cid)).rejects.toMatchObject({ code: 'ERR_INTEGRITY' })
    await store.close()
  })

  it("reads many blocks of a pack, into a caller's buffer too, each exact and verified", async () => {
    const store = await openPackStore(dir)
    const blocks = Array.from({ length: 6 }, (_, i) => rawBlock(new Uint8Array(5000 + i * 977).map((_, j) => (j * 31 + i) & 255)))
    const writer = await store.begin()
    for (const block of blocks) await writer.put(block.cid, block.bytes)
    await writer.commit()
    const [pack] = (await readdir(join(dir, 'packs'))).filter((name) => name.endsWith('.pack'))
    const path = join(dir, 'packs', pack!)
    // In pack order, out of order, repeated, and with a gap: each block its own bytes.
    for (const order of [
      [0, 1, 2, 3, 4, 5],
      [5, 4, 3, 2, 1, 0],
      [1, 1, 2],
      [0, 2, 3, 5],
    ]) {
      const got = await store.getMany(order.map((i) => blocks[i]!.cid))
      expect(got.map((bytes) => Buffer.from(bytes).toString('hex'))).toEqual(
        order.map((i) => Buffer.from(blocks[i]!.bytes).toString('hex')),
      )
    }
    // One flipped byte in the third block of a run: that block fails, its neighbours do not.
    const bytes = await readFile(path)
    const at = bytes.indexOf(Buffer.from(blocks[2]!.bytes)) + 100
    expect(at).toBeGreaterThan(100)
    bytes[at]! ^= 1
    await writeFile(path, bytes)
    const all = blocks.map((block) => block.cid)
    await expect(store.getMany(all)).rejects.toMatchObject({
      code: 'ERR_INTEGRITY',
      message: expect.stringContaining(blocks[2]!.cid.toString()),
    })
    expect(await store.getMany([all[0]!, all[1]!, all[3]!])).toEqual([blocks[0]!.bytes, blocks[1]!.bytes, blocks[3]!.bytes])
    // Read into a caller's buffer: views of it, verified as getMany does; undefined when the
    // blocks do not fit or one is not in the store.
    const scratch = new Uint8Array(1 << 16)
    const views = store.getManyInto([all[1]!, all[3]!, all[0]!], scratch)!
    expect(views).toEqual([blocks[1]!.bytes, blocks[3]!.bytes, blocks[0]!.bytes])
    expect(views.every((view) => view.buffer === scratch.buffer)).toBe(true)
    expect(() => store.getManyInto(all, scratch)).toThrow(expect.objectContaining({ code: 'ERR_INTEGRITY' }))
    expect(store.getManyInto([all[0]!, all[1]!], new Uint8Array(blocks[0]!.bytes.length + 10))).toBeUndefined()
    expect(store.getManyInto([all[0]!, missing.cid], scratch)).toBeUndefined()
    const unsafe = await store.getManyUnsafe(all)
    expect(unsafe[2]![100]).toBe(blocks[2]!.bytes[100]! ^ 1)
    expect(unsafe.map((block) => block.length)).toEqual(blocks.map((block) => block.bytes.length))
    await store.close()
  })

  it('frames packs as CARv1 sections (varint length, CID, bytes)', async () => {
    const store = await openPackStore(dir)
    const writer = await store.begin()
    await writer.put(a.cid, a.bytes)
    await writer.commit()
    await store.close()
    const [pack] = (await readdir(join(dir, 'packs'))).filter((name) => name.endsWith('.pack'))
    const bytes = new Uint8Array(await readFile(join(dir, 'packs', pack!)))
    const cidLength = a.cid.bytes.length
    expect(bytes[0]).toBe(cidLength + a.bytes.length)
    expect(bytes.subarray(1, 1 + cidLength)).toEqual(a.cid.bytes)
    expect(bytes.subarray(1 + cidLength)).toEqual(a.bytes)
  })

  it("lets any number of handles open one store; each sees the others' commits", async () => {
    const one = await openPackStore(dir)
    const two = await openPackStore(dir, { refreshMs: 0 })
    const writer = await one.begin()
    await writer.put(b.cid, b.bytes)
    writer.pin(b.cid, 'b')
    await writer.commit()
    expect(await two.get(b.cid)).toEqual(b.bytes)
    const pins = []
    for await (const pin of two.pins()) pins.push(pin.label)
    expect(pins).toEqual(['b'])
    await one.close()
    await two.close()
  })

  it('refuses to open a missing store when asked not to create one', async () => {
    await expect(openPackStore(join(dir, 'nope'), { create: false })).rejects.toMatchObject({ code: 'ERR_STORE' })
  })
})
