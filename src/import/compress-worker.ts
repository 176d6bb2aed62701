/** Worker thread entry: runs compressBand jobs posted by the importer's WorkerPool. */
import { serveJobs } from '../threads.js'
import { type CompressJob, compressBand } from './compress.js'

serveJobs((job: CompressJob) => {
  const result = compressBand(job)
  return { result, transfer: [...result.payloads, ...result.digests].map((b) => b.buffer as ArrayBuffer) }
})
