/** Worker thread entry: compresses the PNG and TIFF writers' pieces (deflate.ts). */
import { serveJobs } from '../../threads.js'
import { type DeflateJob, runDeflateJob } from './deflate.js'

serveJobs((job: DeflateJob) => runDeflateJob(job))
