/**
 * The links of a block, for the store's own safety checks (spec/store.md §10.2): every CID
 * inside a dag-cbor block; none in a raw block. The store still knows nothing of images: this
 * is IPLD's generic notion of a link.
 */
import { CID } from 'multiformats/cid'
import { DAG_CBOR, decodeCbor } from '../format/block.js'

/** The CIDs `bytes` (the block named `cid`) links to, in the order they appear. */
export function blockLinks(cid: CID, bytes: Uint8Array): CID[] {
  if (cid.code !== DAG_CBOR) return []
  const out: CID[] = []
  const visit = (value: unknown): void => {
    if (value === null || typeof value !== 'object') return
    const link = CID.asCID(value)
    if (link !== null) {
      out.push(link)
      return
    }
    if (value instanceof Uint8Array) return
    if (Array.isArray(value)) for (const item of value) visit(item)
    else for (const item of Object.values(value)) visit(item)
  }
  visit(decodeCbor(bytes))
  return out
}
