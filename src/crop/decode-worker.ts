/** Worker thread entry: runs DecodePool's jobs. */
import { serveJobs } from '../threads.js'
import { type DecodeJob, decodeJob, decodeRegion, type RegionJob, type RegionRead } from './decode-job.js'

// 32 MiB: a decode worker's heap (a store open, its readers) makes each collection cost 6-8 ms.
serveJobs<DecodeJob | RegionJob, true | RegionRead>(
  async (job: DecodeJob | RegionJob) => {
    if (!('kind' in job)) return { result: decodeJob(job) }
    const read = await decodeRegion(job)
    return { result: read, transfer: read.pixels === undefined ? [] : [read.pixels.buffer as ArrayBuffer] }
  },
  {
    garbageBytes: 32 << 20,
  },
)
