/** One region's decoding job for DecodePool: verify every payload, decode every band. Pure. */

import { createHash } from 'node:crypto'
import { openSync, readSync } from 'node:fs'
import { IntegrityError } from '../errors.js'
import type { TileCodec } from '../format/interface.js'
import type { TileShape } from '../format/tile-codec.js'
import type { BlockLocation } from '../store/interface.js'
import { coderFor, decodeBand } from './decode.js'
import type { BandPlan } from './plan.js'

/** One region to decode: its bands with their payloads and the sha2-256 digests they must have. */
export interface DecodeJob {
  readonly shape: TileShape
  readonly codec: TileCodec
  readonly rowBytes: number
  /** Each band's payloads, given as bytes or as places in files to read them from. */
  readonly bands: ReadonlyArray<{
    readonly plan: BandPlan
    readonly payloads: ReadonlyArray<Uint8Array | BlockLocation>
    readonly digests: Uint8Array[]
  }>
  /** Receives the region's rows, contiguous (shared memory, so nothing is copied back). */
  readonly out: Uint8Array
}

// Pack files stay open for the thread's life: they are append-only and few.
const files = new Map<string, number>()

function readSource(source: Uint8Array | BlockLocation): Uint8Array {
  if (source instanceof Uint8Array) return source
  let fd = files.get(source.path)
  if (fd === undefined) {
    try {
      fd = openSync(source.path, 'r')
    } catch (cause) {
      throw new IntegrityError(`Cannot read ${source.path}`, { cause })
    }
    files.set(source.path, fd)
  }
  const bytes = new Uint8Array(source.length)
  if (readSync(fd, bytes, 0, source.length, source.offset) !== source.length) throw new IntegrityError(`${source.path} is truncated`)
  return bytes
}

/** Verifies every payload against its digest, then decodes the bands into `job.out`. */
export function decodeJob(job: DecodeJob): true {
  const coder = coderFor(job.shape, job.codec)
  let offset = 0
  for (const { plan, payloads: sources, digests } of job.bands) {
    const payloads = sources.map(readSource)
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
