/** Worker thread entry: runs compressBand jobs posted by CompressPool. */
import { parentPort } from 'node:worker_threads'
import { type CompressJob, compressBand } from './compress.js'

parentPort?.on('message', ({ id, job }: { id: number; job: CompressJob }) => {
  try {
    const result = compressBand(job)
    const transfer = [...result.payloads, ...result.digests].map((b) => b.buffer as ArrayBuffer)
    parentPort?.postMessage({ id, result }, transfer)
  } catch (error) {
    parentPort?.postMessage({ id, error: error instanceof Error ? error.message : String(error) })
  }
})
