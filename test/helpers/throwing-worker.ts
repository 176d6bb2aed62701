/** A worker module for test/threads.test.ts: each job names what to throw (or what to measure). */
import { IntegrityError, StoreError } from '../../src/errors.js'
import { serveJobs } from '../../src/threads.js'

/** What the job throws. */
export type ThrowJob = 'integrity' | 'store-locked' | 'system' | 'type' | 'string' | 'exit' | 'none' | 'garbage' | 'buffer-bytes'

serveJobs((job: ThrowJob) => {
  switch (job) {
    case 'integrity':
      throw new IntegrityError('A tile does not match its hash')
    case 'store-locked':
      throw new StoreError('ERR_STORE_LOCKED', 'The store is locked')
    case 'system':
      throw Object.assign(new Error("ENOENT: no such file or directory, open '/nowhere'"), { code: 'ENOENT' })
    case 'type':
      throw new TypeError('x is not a function')
    case 'string':
      throw 'a string'
    case 'exit':
      return process.exit(3)
    case 'garbage': {
      // 4 MiB of buffers that die with the job, as a deflate or decode job's do.
      let sum = 0
      for (let i = 0; i < 4; i++) sum += new Uint8Array(1 << 20).fill(i)[0]!
      return { result: String(sum) }
    }
    case 'buffer-bytes':
      return { result: String(process.memoryUsage().arrayBuffers) }
    default:
      return { result: 'ok' }
  }
})
