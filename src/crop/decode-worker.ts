/** Worker thread entry: runs DecodePool's jobs. */
import { serveJobs } from '../threads.js'
import { type DecodeJob, decodeJob, decodeRegion, type RegionJob } from './decode-job.js'

serveJobs(async (job: DecodeJob | RegionJob) => ({ result: 'kind' in job ? await decodeRegion(job) : decodeJob(job) }))
