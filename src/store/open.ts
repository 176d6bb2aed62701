/**
 * Opens a store by location (spec/store.md §1): a directory, `s3://BUCKET/PREFIX`, or
 * `memory:` (a throw-away store). Backends load on demand, so a crop on disk never loads the
 * AWS SDK.
 */
import { resolve } from 'node:path'
import { type ObjectBlockStore, type ObjectStoreInit, openObjectStore } from './object-store.js'
import { DiskDriver } from './objects/disk.js'
import { MemoryDriver } from './objects/memory.js'

/** Options of openStore. */
export interface StoreInit extends ObjectStoreInit {
  /** Where S3 credentials and endpoint come from (default process.env). */
  readonly env?: NodeJS.ProcessEnv
}

/** True for locations that name an object store rather than a directory. */
export function isStoreUrl(location: string): boolean {
  return /^[a-z][a-z0-9+.-]*:/i.test(location) && !/^[a-z]:[\\/]/i.test(location)
}

/** Opens the store at `location` (see the module comment). */
export async function openStoreAt(location: string, init: StoreInit = {}): Promise<ObjectBlockStore> {
  if (location === 'memory:') return openObjectStore(new MemoryDriver(), init)
  if (location.startsWith('s3://')) {
    const { openS3Driver } = await import('./objects/s3.js')
    const driver = await openS3Driver(location, init.env ?? process.env)
    try {
      return await openObjectStore(driver, { packBytes: 64 << 20, refreshMs: 1000, ...init })
    } catch (error) {
      await driver.close()
      throw error
    }
  }
  if (isStoreUrl(location) && !location.startsWith('file:')) {
    const { StoreError } = await import('../errors.js')
    throw new StoreError('ERR_STORE_CONFIG', `Unsupported store location ${location}: use a directory, s3://BUCKET/PREFIX or memory:`)
  }
  const dir = location.startsWith('file:') ? new URL(location).pathname : resolve(location)
  const { mkdir } = await import('node:fs/promises')
  if (init.create !== false) await mkdir(dir, { recursive: true })
  return openObjectStore(new DiskDriver(dir), init)
}
