/** Worker thread entry: runs compressBand jobs posted by the importer's WorkerPool. */
import { serveJobs } from '../threads.js'
import { type CompressJob, compressBand } from './compress.js'

serveJobs((job: CompressJob) => {
  const result = compressBand(job)
  // Empty payloads (tiles stored as another one is) share a buffer: not transferred.
  const transfer = [...result.payloads, ...result.digests].filter((b) => b.length > 0).map((b) => b.buffer as ArrayBuffer)
  return { result, transfer }
})
