/**
 * Opens a store by location (spec/store.md §1): a directory, `s3://BUCKET/PREFIX`, or
 * `memory:` (a throw-away store). Backends load on demand, so a crop on disk never loads the
 * AWS SDK.
 */
import { homedir } from 'node:os'
import { isAbsolute, join, resolve } from 'node:path'
import { StoreError } from '../errors.js'
import { type ObjectBlockStore, type ObjectStoreInit, openObjectStore } from './object-store.js'
import { DiskDriver } from './objects/disk.js'
import type { ObjectDriver } from './objects/interface.js'
import { MemoryDriver } from './objects/memory.js'

/** The on-disk cache of an S3 store (spec/store.md §12; src/store/objects/cache.ts). */
export interface StoreCacheInit {
  /** Its directory, shared by every store and process that names it. */
  readonly dir: string
  /** Limit on the size of its files, in bytes (a positive integer). */
  readonly maxBytes: number
}

/** Options of openStore. */
export interface StoreInit extends ObjectStoreInit {
  /** Where S3 credentials and endpoint, and the cache's defaults, come from (default process.env). */
  readonly env?: NodeJS.ProcessEnv
  /**
   * S3 stores only: the local cache of the objects that never change (default: cacheFromEnv,
   * TESSERA_CACHE_DIR and TESSERA_CACHE_BYTES); false for none.
   */
  readonly cache?: StoreCacheInit | false
}

/** TESSERA_CACHE_BYTES when unset. */
export const DEFAULT_CACHE_BYTES = 1024 ** 3

/**
 * The cache an S3 store gets by default (spec/store.md §12): `TESSERA_CACHE_DIR`, else
 * `$XDG_CACHE_HOME/tessera` if XDG_CACHE_HOME is an absolute path, else `~/.cache/tessera`;
 * `TESSERA_CACHE_BYTES` bytes (default 1 GiB), false when it is 0. ERR_STORE_CONFIG if it is
 * not a non-negative integer.
 */
export function cacheFromEnv(env: NodeJS.ProcessEnv = process.env): StoreCacheInit | false {
  const text = env.TESSERA_CACHE_BYTES
  let maxBytes = DEFAULT_CACHE_BYTES
  if (text !== undefined && text !== '') {
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) {
      throw new StoreError(
        'ERR_STORE_CONFIG',
        `Expected a non-negative integer for TESSERA_CACHE_BYTES but received ${JSON.stringify(text)}`,
      )
    }
    maxBytes = Number(text)
  }
  if (maxBytes === 0) return false
  const xdg = env.XDG_CACHE_HOME
  const dir =
    env.TESSERA_CACHE_DIR !== undefined && env.TESSERA_CACHE_DIR !== ''
      ? resolve(env.TESSERA_CACHE_DIR)
      : xdg !== undefined && isAbsolute(xdg)
        ? join(xdg, 'tessera')
        : join(env.HOME !== undefined && env.HOME !== '' ? env.HOME : homedir(), '.cache', 'tessera')
  return { dir, maxBytes }
}

/** True for locations that name an object store rather than a directory. */
export function isStoreUrl(location: string): boolean {
  return /^[a-z][a-z0-9+.-]*:/i.test(location) && !/^[a-z]:[\\/]/i.test(location)
}

/** Opens the store at `location` (see the module comment). */
export async function openStoreAt(location: string, init: StoreInit = {}): Promise<ObjectBlockStore> {
  if (location === 'memory:') return openObjectStore(new MemoryDriver(), init)
  if (location.startsWith('s3://')) {
    const env = init.env ?? process.env
    const cache = init.cache ?? cacheFromEnv(env)
    const { openS3Driver } = await import('./objects/s3.js')
    let driver: ObjectDriver = await openS3Driver(location, env)
    try {
      if (cache !== false) {
        const { CachingDriver } = await import('./objects/cache.js')
        // One bucket name on two servers is two stores: the endpoint is part of the namespace
        // (read as S3Driver.fromUrl reads it).
        const endpoint = env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || 'aws'
        driver = new CachingDriver(driver, { ...cache, namespace: `${endpoint} ${driver.location}` })
      }
      return await openObjectStore(driver, { packBytes: 64 << 20, refreshMs: 1000, ...init })
    } catch (error) {
      await driver.close()
      throw error
    }
  }
  if (isStoreUrl(location) && !location.startsWith('file:')) {
    throw new StoreError('ERR_STORE_CONFIG', `Unsupported store location ${location}: use a directory, s3://BUCKET/PREFIX or memory:`)
  }
  const dir = location.startsWith('file:') ? new URL(location).pathname : resolve(location)
  const { mkdir } = await import('node:fs/promises')
  if (init.create !== false) await mkdir(dir, { recursive: true })
  return openObjectStore(new DiskDriver(dir), init)
}
