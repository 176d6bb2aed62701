/**
 * Opens a store of the first release (spec/store.md §11: pack files located through a
 * LevelDB index) and migrates it in place: each pack gets its sorted index, the pins and
 * references become checkpoint 1 of the root log, and `VERSION` says 2. Pack files are kept
 * as they are; the LevelDB database is moved to `index-v1/`, which can be deleted afterwards.
 * This file is the one importer of `level`, used only here.
 */
import { rename } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Level } from 'level'
import { CID } from 'multiformats/cid'
import { StoreError } from '../errors.js'
import type { ObjectDriver } from './objects/interface.js'
import { encodePackIndex, type IndexEntry } from './pack-index.js'
import { emptyState, encodeCheckpoint } from './root-log.js'

const BLOCK = 0x62
const PIN = 0x70
const REF = 0x72

/** Migrates the version-1 store held by `driver` (a disk driver); waits for another process holding it, up to `lockTimeout` ms. */
export async function migrateV1(driver: ObjectDriver, lockTimeout = 30_000): Promise<void> {
  const dir = driver.location
  const db = new Level<Uint8Array, Uint8Array>(join(dir, 'index'), { keyEncoding: 'view', valueEncoding: 'view', createIfMissing: false })
  const deadline = Date.now() + lockTimeout
  for (;;) {
    try {
      await db.open()
      break
    } catch (error) {
      const version = new TextDecoder().decode((await driver.get('VERSION')) ?? new Uint8Array())
      if (version !== 'tessera-store 1\n') return // migrated by another process meanwhile
      const locked = (error as { cause?: { code?: string } }).cause?.code === 'LEVEL_LOCKED'
      if (!locked)
        throw new StoreError('ERR_STORE', `Cannot open the version-1 index of the store at ${dir} to migrate it`, { cause: error })
      if (Date.now() >= deadline) {
        throw new StoreError(
          'ERR_STORE_LOCKED',
          `The version-1 store at ${dir} is in use by another process: stop it, then run again to migrate`,
          { cause: error },
        )
      }
      await sleep(100)
    }
  }
  try {
    const packs = new Map<number, IndexEntry[]>()
    const state = emptyState()
    for await (const [key, value] of db.iterator()) {
      if (key[0] === BLOCK) {
        const view = Buffer.from(value.buffer, value.byteOffset, value.length)
        const pack = view.readUInt32LE(0)
        const offset = Number(view.readBigUInt64LE(4))
        const length = view.readUInt32LE(12)
        // The CID precedes the block in its section (36 bytes: 0x01, codec, 0x12, 0x20, digest).
        const head = driver.getRangeSync!(packName(pack), offset - 36, 36)
        const cid = CID.decode(head)
        const entries = packs.get(pack) ?? []
        packs.set(pack, entries)
        entries.push({ digest: key.subarray(3).slice(), offset, length, codec: cid.code })
      } else if (key[0] === PIN) {
        const record = JSON.parse(Buffer.from(value).toString('utf8')) as { label: string; added: number }
        state.pins.set(CID.decode(key.subarray(1)).toString(), { label: record.label, added: record.added })
      } else if (key[0] === REF) {
        state.refs.set(Buffer.from(key.subarray(1)).toString('utf8'), CID.decode(value).toString())
      }
    }
    for (const [pack, entries] of packs) {
      const name = String(pack).padStart(8, '0')
      await driver.put(`packs/${name}.idx`, encodePackIndex(entries))
      state.packs.set(name, 1)
    }
    state.gen = 1
    await driver.put('checkpoints/000000000001.json', encodeCheckpoint(state))
    await driver.put('VERSION', new TextEncoder().encode('tessera-store 2\n'))
  } finally {
    await db.close()
  }
  await rename(join(dir, 'index'), join(dir, 'index-v1'))
}

function packName(id: number): string {
  return `packs/${String(id).padStart(8, '0')}.pack`
}
