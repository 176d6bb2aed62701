/** Worker thread entry: runs DecodePool's jobs. */
import { serveJobs } from '../threads.js'
import { type DecodeJob, decodeJob, decodeRegion, type RegionJob } from './decode-job.js'

// 32 MiB: a decode worker's heap (a store open, its readers) makes each collection cost 6-8 ms.
serveJobs(async (job: DecodeJob | RegionJob) => ({ result: 'kind' in job ? await decodeRegion(job) : decodeJob(job) }), {
  garbageBytes: 32 << 20,
})
