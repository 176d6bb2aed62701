/** Worker thread entry: runs DecodePool's jobs. */
import { serveJobs } from '../threads.js'
import { type DecodeJob, decodeJob } from './decode-job.js'

serveJobs((job: DecodeJob) => ({ result: decodeJob(job) }))
