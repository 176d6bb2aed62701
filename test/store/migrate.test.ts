/**
 * A first-release store (store version 1: packs located through LevelDB) opens and is
 * migrated in place without loss (spec/store.md §11). The version-1 store is written here
 * byte for byte as the first release wrote it: CARv1-section packs, `b`/`p`/`r` LevelDB keys.
 */
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import { varint } from 'multiformats'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { verifyAll } from '../../src/dataset/maintenance.js'
import { type CID, rawBlock } from '../../src/format/block.js'
import { cropImage, importImage, openImage } from '../../src/image.js'
import { MemoryBlockStore } from '../../src/store/memory.js'
import { openStoreAt } from '../../src/store/open.js'
import { makeImage, naiveCrop, writePam } from '../helpers/oracle.js'

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-migrate-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** Writes `blocks` as version-1 pack `id` and returns their LevelDB `b` entries. */
async function writeV1Pack(store: string, id: number, blocks: ReadonlyArray<{ cid: CID; bytes: Uint8Array }>) {
  const parts: Uint8Array[] = []
  const entries: Array<[Uint8Array, Uint8Array]> = []
  let at = 0
  for (const { cid, bytes } of blocks) {
    const header = varint.encodeTo(cid.bytes.length + bytes.length, new Uint8Array(varint.encodingLength(cid.bytes.length + bytes.length)))
    parts.push(header, cid.bytes, bytes)
    at += header.length + cid.bytes.length
    const location = Buffer.alloc(16)
    location.writeUInt32LE(id, 0)
    location.writeBigUInt64LE(BigInt(at), 4)
    location.writeUInt32LE(bytes.length, 12)
    entries.push([Buffer.concat([Uint8Array.of(0x62), cid.multihash.bytes]), location])
    at += bytes.length
  }
  await writeFile(join(store, 'packs', `${String(id).padStart(8, '0')}.pack`), Buffer.concat(parts))
  return entries
}

describe('migration from store version 1', () => {
  it('opens a first-release store: blocks, pins (labels and times) and references all kept, crops exact', async () => {
    // Blocks of a real image, taken from a memory store.
    const source = makeImage(70, 50, 3, 8, 4)
    const path = join(dir, 'a.pam')
    await writePam(path, source)
    const memory = new MemoryBlockStore()
    const { cid } = await importImage(memory, path, { tileSize: 16, workers: 0, pyramid: true })
    const blocks = [...memory.blocks.keys()].map((key) => {
      const bytes = memory.blocks.get(key)!
      return { key, bytes }
    })
    const all: Array<{ cid: CID; bytes: Uint8Array }> = []
    const { walkBlocks } = await import('../../src/dataset/walk.js')
    for await (const block of walkBlocks(memory, [cid])) all.push({ cid: block.cid, bytes: await memory.get(block.cid) })
    expect(all.length).toBe(blocks.length)
    const extra = rawBlock(new TextEncoder().encode('kept by a reference'))

    const store = join(dir, 'v1')
    await mkdir(join(store, 'packs'), { recursive: true })
    await writeFile(join(store, 'VERSION'), 'tessera-store 1\n')
    const entries = [...(await writeV1Pack(store, 1, all.slice(0, 5))), ...(await writeV1Pack(store, 2, [...all.slice(5), extra]))]
    const db = new Level<Uint8Array, Uint8Array>(join(store, 'index'), { keyEncoding: 'view', valueEncoding: 'view' })
    await db.open()
    const batch = db.batch()
    for (const [key, value] of entries) batch.put(key, value)
    batch.put(Buffer.concat([Uint8Array.of(0x70), cid.bytes]), Buffer.from(JSON.stringify({ label: 'a.pam', added: 1700000000000 })))
    batch.put(Buffer.concat([Uint8Array.of(0x72), Buffer.from('dataset/x')]), extra.cid.bytes)
    await batch.write({ sync: true })
    await db.close()

    const opened = await openStoreAt(store, { create: false })
    try {
      expect(existsSync(join(store, 'index-v1'))).toBe(true)
      expect(existsSync(join(store, 'index'))).toBe(false)
      expect((await readdir(join(store, 'packs'))).sort()).toEqual(['00000001.idx', '00000001.pack', '00000002.idx', '00000002.pack'])
      const pins = []
      for await (const pin of opened.pins()) pins.push([pin.cid.toString(), pin.label, pin.added])
      expect(pins).toEqual([[cid.toString(), 'a.pam', 1700000000000]])
      expect((await opened.ref!('dataset/x'))?.toString()).toBe(extra.cid.toString())
      expect(await opened.get(extra.cid)).toEqual(extra.bytes)
      const region = { x: 5, y: 7, width: 60, height: 40 }
      const chunks: Uint8Array[] = []
      for await (const chunk of await cropImage(await openImage(opened, cid), region, { format: 'raw' })) chunks.push(chunk)
      expect(Buffer.compare(Buffer.concat(chunks), naiveCrop(source, region))).toBe(0)
      expect((await verifyAll(opened)).problems).toEqual([])
      // New commits go on top of the migrated state.
      const writer = await opened.begin()
      writer.unpin(cid)
      await writer.commit()
    } finally {
      await opened.close()
    }
    // Opening again does not migrate again.
    const again = await openStoreAt(store, { create: false })
    const pins = []
    for await (const pin of again.pins()) pins.push(pin)
    expect(pins).toEqual([])
    await again.close()
  })
})
