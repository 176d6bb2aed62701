/** One region's decoding job for DecodePool: verify every payload, decode every band. Pure. */

import { createHash } from 'node:crypto'
import { IntegrityError } from '../errors.js'
import type { TileCodec } from '../format/interface.js'
import type { TileShape } from '../format/tile-codec.js'
import { coderFor, decodeBand } from './decode.js'
import type { BandPlan } from './plan.js'

/** One region to decode: its bands with their payloads and the sha2-256 digests they must have. */
export interface DecodeJob {
  readonly shape: TileShape
  readonly codec: TileCodec
  readonly rowBytes: number
  readonly bands: ReadonlyArray<{ readonly plan: BandPlan; readonly payloads: Uint8Array[]; readonly digests: Uint8Array[] }>
  /** Receives the region's rows, contiguous (shared memory, so nothing is copied back). */
  readonly out: Uint8Array
}

/** Verifies every payload against its digest, then decodes the bands into `job.out`. */
export function decodeJob(job: DecodeJob): true {
  const coder = coderFor(job.shape, job.codec)
  let offset = 0
  for (const { plan, payloads, digests } of job.bands) {
    for (let i = 0; i < payloads.length; i++) {
      const digest = createHash('sha256').update(payloads[i]!).digest()
      if (!digest.equals(digests[i]!)) throw new IntegrityError('A tile does not match its hash')
    }
    const bytes = plan.height * job.rowBytes
    decodeBand(coder, plan, payloads, job.out.subarray(offset, offset + bytes))
    offset += bytes
  }
  return true
}
