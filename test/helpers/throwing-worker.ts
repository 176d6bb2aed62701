/** A worker module for test/threads.test.ts: each job names what to throw. */
import { IntegrityError, StoreError } from '../../src/errors.js'
import { serveJobs } from '../../src/threads.js'

/** What the job throws. */
export type ThrowJob = 'integrity' | 'store-locked' | 'system' | 'type' | 'string' | 'exit' | 'none'

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
    default:
      return { result: 'ok' }
  }
})
