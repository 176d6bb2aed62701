/**
 * Store-wide maintenance (spec/dataset.md §8, spec/store.md §10): the roots of a store, unpinning, garbage
 * collection (mark everything the roots reach, let the store sweep the rest) and verification
 * of everything the roots reach.
 */
import { IntegrityError, InvalidArgumentError, NotFoundError, TesseraError } from '../errors.js'
import type { CID } from '../format/block.js'
import type { AbortOptions, BlockStore, CollectOptions, CollectResult } from '../store/interface.js'
import { ObjectBlockStore } from '../store/object-store.js'
import { checkStore, refuseLostLog } from '../store/repair.js'
import { StructureCheck } from './structure.js'
import { seenKey, walk } from './walk.js'

/** A root of the store: a pin (an image) or a reference (a dataset head, ...). */
export interface StoreRoot {
  readonly cid: CID
  /** `pin LABEL` or `ref NAME`, for messages. */
  readonly source: string
}

/** Every root: pins, then references (spec/dataset.md §8). */
export async function storeRoots(store: BlockStore, options?: AbortOptions): Promise<StoreRoot[]> {
  const roots: StoreRoot[] = []
  for await (const pin of store.pins(options)) roots.push({ cid: pin.cid, source: `pin ${pin.label}` })
  if (typeof store.refs === 'function') {
    for await (const ref of store.refs({ signal: options?.signal })) roots.push({ cid: ref.cid, source: `ref ${ref.name}` })
  }
  return roots
}

/** Unpins the images `cids` in one transaction; NotFoundError, and nothing unpinned, if one is not pinned. */
export async function unpin(store: BlockStore, cids: readonly CID[], options?: AbortOptions): Promise<void> {
  const pinned = new Set<string>()
  for await (const pin of store.pins(options)) pinned.add(pin.cid.toString())
  for (const cid of cids) if (!pinned.has(cid.toString())) throw new NotFoundError(`${cid} is not pinned`)
  const writer = await store.begin(options)
  try {
    for (const cid of cids) writer.unpin(cid)
    await writer.commit(options)
  } catch (error) {
    await writer.abort()
    throw error
  }
}

/** What garbage collection did, with the number of roots it kept. */
export interface GcResult extends CollectResult {
  readonly roots: number
}

/**
 * Deletes every block no root reaches and reclaims its space. Marking reads every dag-cbor
 * block the roots reach; if one is missing or damaged the collection stops before deleting
 * anything (what it alone reaches cannot be known): ERR_INTEGRITY.
 */
export async function collectGarbage(store: BlockStore, options: CollectOptions = {}): Promise<GcResult> {
  if (typeof store.collect !== 'function') throw new InvalidArgumentError('This block store cannot collect garbage')
  let roots = 0
  const result = await store.collect(async ({ signal }) => {
    // A store whose log was lost has no roots: everything would look dead (spec/store.md §10.4).
    if (store instanceof ObjectBlockStore) await refuseLostLog(store, { signal })
    const list = await storeRoots(store, { signal })
    roots = list.length
    const seen = new Set<string>()
    for (const root of list) {
      try {
        await walk(store, [root.cid], { seen, signal })
      } catch (error) {
        if (!(error instanceof TesseraError) || (error.code !== 'ERR_NOT_FOUND' && error.code !== 'ERR_INTEGRITY')) throw error
        throw new IntegrityError(
          `A block reachable from ${root.source} is missing or damaged, so garbage collection stopped before deleting anything (${error.message}); run \`tessera verify --all\``,
          { cause: error },
        )
      }
    }
    return (multihash) => seen.has(Buffer.from(multihash.buffer, multihash.byteOffset, multihash.length).toString('latin1'))
  }, options)
  return { ...result, roots }
}

/** A problem found by verification. */
export interface Problem {
  readonly cid: string
  readonly code: string
  readonly message: string
}

/** Result of verifyRoots. */
export interface VerifyRootsResult {
  readonly roots: number
  readonly blocks: number
  readonly bytes: number
  readonly problems: Problem[]
}

/**
 * Reads and re-hashes every block the roots reach, once each, and checks the structure of
 * image roots and dataset blocks. Goes on past problems and reports each.
 */
export async function verifyRoots(store: BlockStore, roots: readonly StoreRoot[], options?: AbortOptions): Promise<VerifyRootsResult> {
  const problems: Problem[] = []
  let blocks = 0
  let bytes = 0
  const report = (cid: CID, error: TesseraError) => problems.push({ cid: cid.toString(), code: error.code, message: error.message })
  const seen = new Set<string>()
  const structure = new StructureCheck()
  for (const root of roots) {
    if (!(await store.has(root.cid, options))) {
      if (!seen.has(seenKey(root.cid))) report(root.cid, new NotFoundError(`Root block of ${root.source} not found`))
      seen.add(seenKey(root.cid))
      continue
    }
    await walk(store, [root.cid], {
      seen,
      signal: options?.signal,
      onError: report,
      visit: async (cid, data) => {
        try {
          const block = data ?? (await store.get(cid, options))
          blocks++
          bytes += block.length
          for (const { tile, length, row } of structure.block(cid, block)) {
            const size = await store.size(tile, options)
            // A missing tile is the walk's to report.
            if (size !== undefined && size !== length) {
              report(tile, new IntegrityError(`Tile ${tile} has ${size} bytes, but row index ${row} states ${length}`))
            }
          }
        } catch (error) {
          if (!(error instanceof TesseraError)) throw error
          report(cid, error)
        }
      },
    })
  }
  structure.finish()
  return { roots: roots.length, blocks, bytes, problems }
}

/**
 * Verifies everything the store's roots reach (`tessera verify --all`), after the store's own
 * structure: a lost root log, packs no record names, missing or damaged pack indexes are
 * problems too (storeProblems), so a damaged store never verifies as an empty one.
 */
export async function verifyAll(store: BlockStore, options?: AbortOptions): Promise<VerifyRootsResult> {
  const damage = await storeProblems(store, options)
  const result = await verifyRoots(store, await storeRoots(store, options), options)
  return damage.length === 0 ? result : { ...result, problems: [...damage, ...result.problems] }
}

/** Damage to the store's structure (spec/store.md §8), as problems whose `cid` is the object's key: each names `tessera repair`. */
export async function storeProblems(store: BlockStore, options?: AbortOptions): Promise<Problem[]> {
  if (!(store instanceof ObjectBlockStore)) return []
  return (await checkStore(store, options)).map(({ key, code, message }) => ({ cid: key, code, message }))
}
