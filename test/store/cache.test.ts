/**
 * The on-disk cache of an S3 store (src/store/objects/cache.ts, spec/store.md §12): over a
 * MemoryDriver that counts the reads it serves, then end to end over memory and over the real
 * S3 server (TESSERA_TEST_S3; see test/helpers/s3.ts: skipped without it, except on CI).
 */
import { mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cropImage, importImage, openImage } from '../../src/image.js'
import { type ObjectBlockStore, openObjectStore } from '../../src/store/object-store.js'
import { CachingDriver, type CachingDriverInit } from '../../src/store/objects/cache.js'
import type { ListOptions, ObjectDriver, ObjectInfo, ObjectSink, PutOptions } from '../../src/store/objects/interface.js'
import { MemoryDriver } from '../../src/store/objects/memory.js'
import { cacheFromEnv, DEFAULT_CACHE_BYTES, openStoreAt } from '../../src/store/open.js'
import { makeImage, naiveCrop, writePam } from '../helpers/oracle.js'
import { deleteS3Prefix, missingS3, s3RunUrl } from '../helpers/s3.js'

/** Passes everything to `inner`, counting reads (`get KEY`, `range KEY`, `stat KEY`, `list PREFIX`). */
class CountingDriver implements ObjectDriver {
  readonly location: string
  readonly calls: string[] = []
  constructor(readonly inner: ObjectDriver) {
    this.location = inner.location
  }
  count(what: string): number {
    return this.calls.filter((call) => call === what || call.startsWith(`${what} `)).length
  }
  get(key: string) {
    this.calls.push(`get ${key}`)
    return this.inner.get(key)
  }
  getRange(key: string, offset: number, length: number) {
    this.calls.push(`range ${key}`)
    return this.inner.getRange(key, offset, length)
  }
  put(key: string, bytes: Uint8Array, options?: PutOptions): Promise<boolean> {
    return this.inner.put(key, bytes, options)
  }
  create(key: string): Promise<ObjectSink> {
    return this.inner.create(key)
  }
  stat(key: string) {
    this.calls.push(`stat ${key}`)
    return this.inner.stat(key)
  }
  list(prefix: string, options?: ListOptions): AsyncIterable<ObjectInfo> {
    this.calls.push(`list ${prefix}`)
    return this.inner.list(prefix, options)
  }
  delete(key: string) {
    return this.inner.delete(key)
  }
  async close() {}
}

const bytesOf = (length: number, seed: number) => Uint8Array.from({ length }, (_, i) => (i * 31 + seed * 7) & 0xff)
const text = (value: string) => new TextEncoder().encode(value)

let root: string
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'tessera-cache-'))
})
afterAll(async () => {
  await rm(root, { recursive: true, force: true })
})

let dirs = 0
/** A fresh cache directory. */
const newDir = () => join(root, `cache-${++dirs}`)

/** Every regular file under `dir`, with its size. */
async function filesUnder(dir: string): Promise<Array<{ path: string; size: number }>> {
  const out: Array<{ path: string; size: number }> = []
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => [])) {
    if (!entry.isFile()) continue
    const path = join(entry.parentPath, entry.name)
    out.push({ path, size: (await stat(path)).size })
  }
  return out
}

/** A memory store's objects, a counter over them and a cache over that. */
async function setup(init: Partial<CachingDriverInit> = {}) {
  const memory = new MemoryDriver()
  await memory.put('VERSION', text('tessera-store 2\n'))
  await memory.put('packs/P-1.pack', bytesOf(4096, 1))
  await memory.put('packs/P-1.idx', bytesOf(1168, 2))
  await memory.put('log/000000000001.json', text('{"gen":1}\n'))
  await memory.put('checkpoints/000000000064.json', text('{"gen":64}\n'))
  await memory.put('txns/T.json', text('{"txn":"T"}'))
  await memory.put('gc.lock', text('{}'))
  const counting = new CountingDriver(memory)
  const dir = init.dir ?? newDir()
  const cache = new CachingDriver(counting, { maxBytes: 1 << 20, ...init, dir })
  return { memory, counting, cache, dir }
}

describe('CachingDriver over memory', () => {
  it('answers second reads of indexes, records, checkpoints and pack ranges from disk', async () => {
    const { memory, counting, cache } = await setup()
    for (const key of ['packs/P-1.idx', 'log/000000000001.json', 'checkpoints/000000000064.json']) {
      expect(await cache.get(key)).toEqual(memory.objects.get(key)!.bytes)
      await cache.flush()
      expect(await cache.get(key)).toEqual(memory.objects.get(key)!.bytes)
      expect(counting.count(`get ${key}`), key).toBe(1)
    }
    expect(await cache.getRange('packs/P-1.pack', 100, 200)).toEqual(bytesOf(4096, 1).subarray(100, 300))
    await cache.flush()
    expect(await cache.getRange('packs/P-1.pack', 100, 200)).toEqual(bytesOf(4096, 1).subarray(100, 300))
    expect(counting.count('range packs/P-1.pack')).toBe(1)
    // Another range of the same pack is another entry.
    expect(await cache.getRange('packs/P-1.pack', 100, 201)).toEqual(bytesOf(4096, 1).subarray(100, 301))
    expect(counting.count('range packs/P-1.pack')).toBe(2)
    expect(cache.stats).toMatchObject({ hits: 4, misses: 5, damaged: 0, errors: 0 })
  })

  it('sends mutable objects, listings, stats, whole packs and temporaries to the inner driver every time', async () => {
    const { memory, counting, cache, dir } = await setup()
    await memory.put('packs/P-1.idx.tmp-1-abc', text('partial'))
    for (let round = 0; round < 2; round++) {
      for (const key of ['VERSION', 'txns/T.json', 'gc.lock', 'packs/P-1.pack', 'packs/P-1.idx.tmp-1-abc']) await cache.get(key)
      await cache.stat('packs/P-1.idx')
      for await (const _ of cache.list('log/')) {
      }
      await cache.flush()
    }
    for (const key of ['VERSION', 'txns/T.json', 'gc.lock', 'packs/P-1.pack', 'packs/P-1.idx.tmp-1-abc']) {
      expect(counting.count(`get ${key}`), key).toBe(2)
    }
    expect(counting.count('stat')).toBe(2)
    expect(counting.count('list')).toBe(2)
    // A mutable object changes, and the cache shows the change.
    await memory.put('txns/T.json', text('{"txn":"T","time":2}'))
    expect(await cache.get('txns/T.json')).toEqual(text('{"txn":"T","time":2}'))
    expect(cache.stats).toMatchObject({ hits: 0, misses: 0 })
    expect(await filesUnder(dir)).toEqual([])
  })

  it('keeps the files within the size limit, evicting the least recently used', async () => {
    const maxBytes = 64 * 1024
    const { counting, cache, dir } = await setup({ maxBytes })
    const pack = bytesOf(4096, 1)
    // 400 distinct ranges of 300-1000 bytes: about 260 KB to cache, four times the limit.
    for (let i = 0; i < 400; i++) {
      const offset = (i * 37) % 3000
      const length = 300 + ((i * 53) % 700)
      expect(await cache.getRange('packs/P-1.pack', offset, length)).toEqual(pack.subarray(offset, offset + length))
      // A hot entry, read again and again, stays.
      expect(await cache.getRange('packs/P-1.pack', 0, 64)).toEqual(pack.subarray(0, 64))
      if (i % 50 === 0) await cache.flush()
    }
    await cache.flush()
    const files = await filesUnder(dir)
    expect(files.reduce((sum, file) => sum + file.size, 0)).toBeLessThanOrEqual(maxBytes)
    expect(files.length).toBeGreaterThan(20)
    expect(cache.stats.evicted).toBeGreaterThan(0)
    expect(counting.count('range')).toBeLessThan(410)
    const before = counting.count('range')
    await cache.getRange('packs/P-1.pack', 0, 64)
    expect(counting.count('range')).toBe(before)
  })

  it('does not cache an entry larger than maxEntryBytes', async () => {
    const { counting, cache } = await setup({ maxEntryBytes: 1024 })
    await cache.getRange('packs/P-1.pack', 0, 2000)
    await cache.get('packs/P-1.idx')
    await cache.flush()
    await cache.getRange('packs/P-1.pack', 0, 2000)
    await cache.get('packs/P-1.idx')
    expect([counting.count('range'), counting.count('get packs/P-1.idx')]).toEqual([2, 2])
  })

  it('evicts on delete, put and create', async () => {
    const { memory, cache } = await setup()
    await cache.getRange('packs/P-1.pack', 0, 100)
    await cache.get('packs/P-1.idx')
    await cache.get('log/000000000001.json')
    await cache.flush()
    await cache.delete('packs/P-1.pack')
    await cache.delete('packs/P-1.idx')
    await expect(cache.getRange('packs/P-1.pack', 0, 100)).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' })
    expect(await cache.get('packs/P-1.idx')).toBeUndefined()
    await cache.put('log/000000000001.json', text('{"gen":1,"other":true}\n'))
    expect(await cache.get('log/000000000001.json')).toEqual(text('{"gen":1,"other":true}\n'))
    await cache.flush()
    const sink = await cache.create('log/000000000001.json')
    await sink.write(text('{"gen":1,"third":true}\n'))
    await sink.finish()
    expect(await cache.get('log/000000000001.json')).toEqual(text('{"gen":1,"third":true}\n'))
    expect(memory.objects.has('packs/P-1.pack')).toBe(false)
  })

  it('serves a record or checkpoint only if the last listing agrees (a store wiped and recreated)', async () => {
    const { memory, counting, cache } = await setup()
    const key = 'log/000000000001.json'
    for await (const _ of cache.list('log/')) {
    }
    await cache.get(key)
    await cache.flush()
    // Another process replaces the store: same record number, other bytes.
    memory.objects.set(key, { bytes: text('{"gen":1,"new":1}\n'), modified: Date.now() + 5000 })
    // Before a listing shows the change, the copy is what this process last saw.
    expect(await cache.get(key)).toEqual(text('{"gen":1}\n'))
    for await (const _ of cache.list('log/')) {
    }
    expect(await cache.get(key)).toEqual(text('{"gen":1,"new":1}\n'))
    await cache.flush()
    expect(await cache.get(key)).toEqual(text('{"gen":1,"new":1}\n'))
    expect(counting.count(`get ${key}`)).toBe(2)
  })

  it('shares one directory between two drivers (two processes), and keeps stores apart', async () => {
    const dir = newDir()
    const memory = new MemoryDriver()
    await memory.put('packs/P-1.pack', bytesOf(4096, 1))
    await memory.put('packs/P-1.idx', bytesOf(1168, 2))
    const a = new CountingDriver(memory)
    const b = new CountingDriver(memory)
    const first = new CachingDriver(a, { dir, maxBytes: 1 << 20 })
    const second = new CachingDriver(b, { dir, maxBytes: 1 << 20 })
    // Both miss at once: both write the same entry, and both answers are whole.
    const [x, y] = await Promise.all([first.getRange('packs/P-1.pack', 10, 500), second.getRange('packs/P-1.pack', 10, 500)])
    expect([x, y]).toEqual([bytesOf(4096, 1).subarray(10, 510), bytesOf(4096, 1).subarray(10, 510)])
    await first.get('packs/P-1.idx')
    await Promise.all([first.flush(), second.flush()])
    expect(await second.get('packs/P-1.idx')).toEqual(bytesOf(1168, 2))
    expect(await second.getRange('packs/P-1.pack', 10, 500)).toEqual(bytesOf(4096, 1).subarray(10, 510))
    expect(b.count('get')).toBe(0)
    // Another store (its own namespace) with the same keys never sees these copies.
    const other = new MemoryDriver()
    await other.put('packs/P-1.idx', bytesOf(1168, 9))
    const third = new CachingDriver(other, { dir, maxBytes: 1 << 20, namespace: 'elsewhere' })
    expect(await third.get('packs/P-1.idx')).toEqual(bytesOf(1168, 9))
    await third.flush()
    // A file vanishing under a reader (another process's eviction) is a miss.
    await rm(join(dir, 'objects-1'), { recursive: true })
    expect(await second.get('packs/P-1.idx')).toEqual(bytesOf(1168, 2))
    expect(b.count('get')).toBe(1)
    expect(second.stats.errors).toBe(0)
  })

  it('detects a truncated, altered or misplaced file, deletes it and reads again', async () => {
    const { counting, cache, dir } = await setup()
    const pack = bytesOf(4096, 1)
    await cache.getRange('packs/P-1.pack', 0, 1000)
    await cache.get('packs/P-1.idx')
    await cache.flush()
    const [range, index] = await Promise.all(
      ['0-1000', 'all'].map(async (name) => (await filesUnder(dir)).find((f) => f.path.endsWith(`/${name}`))!.path),
    )
    const damages: Array<[string, () => Promise<void>]> = [
      ['truncated', () => truncate(range!, 56 + 999)],
      ['empty', () => truncate(range!, 0)],
      ['a payload byte flipped', async () => flip(range!, 56 + 500)],
      ['a header byte flipped', async () => flip(range!, 20)],
      ['the file of another entry', async () => writeFile(range!, await readFile(index!))],
    ]
    let reads = counting.count('range')
    for (const [what, damage] of damages) {
      await damage()
      expect(await cache.getRange('packs/P-1.pack', 0, 1000), what).toEqual(pack.subarray(0, 1000))
      expect(counting.count('range'), what).toBe(++reads)
      await cache.flush()
      // Written again, whole: the next read hits.
      expect(await cache.getRange('packs/P-1.pack', 0, 1000), what).toEqual(pack.subarray(0, 1000))
      expect(counting.count('range'), what).toBe(reads)
    }
    expect(cache.stats.damaged).toBe(damages.length)
  })

  it('reads through when the cache directory cannot be written', async () => {
    const blocker = join(root, 'not-a-directory')
    await writeFile(blocker, 'x')
    const { counting, cache } = await setup({ dir: blocker })
    expect(await cache.get('packs/P-1.idx')).toEqual(bytesOf(1168, 2))
    await cache.flush()
    expect(await cache.get('packs/P-1.idx')).toEqual(bytesOf(1168, 2))
    expect(counting.count('get packs/P-1.idx')).toBe(2)
    expect(cache.stats.errors).toBeGreaterThan(0)
  })

  it('rejects a bad size limit with ERR_STORE_CONFIG', () => {
    for (const maxBytes of [0, -1, 1.5, Number.NaN]) {
      expect(() => new CachingDriver(new MemoryDriver(), { dir: newDir(), maxBytes })).toThrow(
        expect.objectContaining({ code: 'ERR_STORE_CONFIG' }),
      )
    }
  })
})

async function flip(path: string, at: number): Promise<void> {
  const bytes = await readFile(path)
  bytes[at]! ^= 0x01
  await writeFile(path, bytes)
}

describe('cacheFromEnv', () => {
  it('reads TESSERA_CACHE_DIR and TESSERA_CACHE_BYTES, with their defaults', () => {
    expect(cacheFromEnv({ HOME: '/home/u' })).toEqual({ dir: '/home/u/.cache/tessera', maxBytes: DEFAULT_CACHE_BYTES })
    expect(cacheFromEnv({ HOME: '/home/u', XDG_CACHE_HOME: '/x' })).toEqual({ dir: '/x/tessera', maxBytes: 1024 ** 3 })
    expect(cacheFromEnv({ HOME: '/home/u', XDG_CACHE_HOME: 'relative' })).toMatchObject({ dir: '/home/u/.cache/tessera' })
    expect(cacheFromEnv({ TESSERA_CACHE_DIR: '/c', TESSERA_CACHE_BYTES: '1000' })).toEqual({ dir: '/c', maxBytes: 1000 })
    expect(cacheFromEnv({ TESSERA_CACHE_DIR: '/c', TESSERA_CACHE_BYTES: '0' })).toBe(false)
    for (const bad of ['-1', '1e9', '1GiB', ' 5', '99999999999999999999']) {
      expect(() => cacheFromEnv({ TESSERA_CACHE_BYTES: bad }), bad).toThrow(expect.objectContaining({ code: 'ERR_STORE_CONFIG' }))
    }
  })
})

/**
 * Imports a small image through `open()`, then crops it from two fresh handles; answers both
 * crops, the source, and each handle's cache counters.
 */
async function cropTwice(open: () => Promise<ObjectBlockStore>, name: string) {
  const source = makeImage(150, 110, 3, 8, 5)
  const path = join(root, `${name}.pam`)
  await writePam(path, source)
  const writer = await open()
  const { cid } = await importImage(writer, path, { tileSize: 32, workers: 0 })
  await writer.close()
  const region = { x: 20, y: 30, width: 100, height: 70 }
  const crops: Uint8Array[] = []
  const stats: CachingDriver['stats'][] = []
  for (let round = 0; round < 2; round++) {
    const store = await open()
    const image = await openImage(store, cid)
    const parts: Uint8Array[] = []
    for await (const part of await cropImage(image, region, { format: 'raw' })) parts.push(part)
    crops.push(new Uint8Array(Buffer.concat(parts)))
    await store.close()
    stats.push((store.driver as CachingDriver).stats)
  }
  return { crops, stats, expected: naiveCrop(source, region) }
}

describe('a store over the cache', () => {
  it('crops from fresh handles, the second from the cache (memory)', async () => {
    const memory = new MemoryDriver()
    const dir = newDir()
    const { crops, stats, expected } = await cropTwice(
      async () => openObjectStore(new CachingDriver(memory, { dir, maxBytes: 1 << 24 })),
      'memory',
    )
    expect(crops).toEqual([expected, expected])
    expect(stats[0]!.misses).toBeGreaterThan(0)
    expect(stats[1]).toMatchObject({ misses: 0, damaged: 0, errors: 0 })
    expect(stats[1]!.hits).toBe(stats[0]!.hits + stats[0]!.misses)
  })
})

const s3Url = s3RunUrl('cache')
if (s3Url === undefined) {
  missingS3('on-disk cache test')
} else {
  describe('a store over the cache on S3', () => {
    afterAll(async () => {
      await deleteS3Prefix(s3Url)
    })

    it('crops from fresh handles, the second with no cacheable request to S3', async () => {
      const dir = newDir()
      const { crops, stats, expected } = await cropTwice(() => openStoreAt(s3Url, { cache: { dir, maxBytes: 1 << 24 } }), 's3')
      expect(crops).toEqual([expected, expected])
      expect(stats[0]!.misses).toBeGreaterThan(0)
      expect(stats[1]).toMatchObject({ misses: 0, damaged: 0, errors: 0 })
      expect(stats[1]!.hits).toBeGreaterThan(0)
    })
  })
}
