/**
 * Request bodies as they arrive (uploads, stream crops): chunks with an idle timeout, read
 * without taking ownership of the request stream, so that a consumer that stops early leaves
 * the rest unread (and the response can still be written) instead of destroying the socket;
 * and the temporary directories uploads are spooled to.
 */
import { mkdtemp } from 'node:fs/promises'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { ownedPrefix, removeStaleTemporaries, STALE_TEMP_MS } from '../temp.js'
import { requestTimeout } from './errors.js'

/** The body's chunks, failing with 408 when none comes for `idleTimeout` ms. */
export async function* flowing(body: Readable, idleTimeout: number, signal: AbortSignal): AsyncGenerator<Buffer> {
  const iterator = (body.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>)[Symbol.asyncIterator]()
  while (true) {
    let timer: NodeJS.Timeout | undefined
    const idle = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(requestTimeout(`No bytes of the body arrived for ${idleTimeout / 1000} s: the upload is abandoned`)),
        idleTimeout,
      )
    })
    const pending = iterator.next()
    // Given up on at a timeout, it fails when the connection closes: nobody waits for it then.
    pending.catch(() => {})
    try {
      const next = await Promise.race([pending, idle])
      if (next.done) return
      signal.throwIfAborted()
      yield next.value
    } finally {
      clearTimeout(timer)
    }
  }
}

const UPLOAD_PREFIX = 'tessera-upload-'
/** When each temporary directory was last swept by this process. */
const swept = new Map<string, number>()

/**
 * A new directory in `tmpDir` for one upload's body, named after this process, so that the
 * spools a killed server left are removed: by the first upload of any server on `tmpDir`
 * (at most once per STALE_TEMP_MS per process), once untouched for that long.
 */
export async function uploadDir(tmpDir: string): Promise<string> {
  const now = Date.now()
  if (now - (swept.get(tmpDir) ?? Number.NEGATIVE_INFINITY) >= STALE_TEMP_MS) {
    swept.set(tmpDir, now)
    await removeStaleTemporaries(tmpDir, UPLOAD_PREFIX, { directories: true }).catch(() => 0)
  }
  return mkdtemp(join(tmpDir, ownedPrefix(UPLOAD_PREFIX)))
}
