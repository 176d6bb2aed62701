/**
 * `tessera repair` (spec/store.md §8): the store's repair, given what only this layer knows:
 * which blocks are roots. Among the blocks of the packs a repair makes live, an image root (a
 * manifest, format.md §5) is pinned again and a dataset head (a version no other version names
 * as `previous`, dataset.md §4) gets its reference back, unless a root the store already has
 * reaches it. Then every root is walked to say which images and datasets are still incomplete.
 */
import { InvalidArgumentError, TesseraError } from '../errors.js'
import { type CID, decodeCbor } from '../format/block.js'
import { decodeManifest } from '../format/manifest.js'
import type { AbortOptions, BlockStore } from '../store/interface.js'
import { ObjectBlockStore } from '../store/object-store.js'
import { type FoundRoots, type RepairPhase, type RootCandidates, repairStore, type StoreRepairResult } from '../store/repair.js'
import { decodeVersion, isVersionValue } from './codec.js'
import type { DatasetVersion } from './interface.js'
import { storeRoots } from './maintenance.js'
import { DATASET_REF_PREFIX, datasetRef, isDatasetName } from './names.js'
import { seenKey, walk, walkBlocks } from './walk.js'

/** The label of the pins a repair adds. */
export const RECOVERED_LABEL = 'recovered'

/** Options of repair. */
export interface RepairOptions extends AbortOptions {
  /** Find and report everything, change nothing (default false). */
  readonly dryRun?: boolean
  /** Called as the repair passes each step (spec/store.md §8): for progress and crash tests. */
  readonly onPhase?: (phase: RepairPhase) => void
}

/** A root that still misses blocks after the repair. */
export interface IncompleteRoot {
  readonly cid: string
  /** `pin LABEL` or `ref NAME`. */
  readonly source: string
  /** Blocks it reaches that are missing or damaged. */
  readonly missing: number
}

/** What a repair found and did: the store's report, plus which roots are incomplete. */
export interface RepairReport extends Omit<StoreRepairResult, 'view'> {
  /** Roots (after the repair) that reach a missing or damaged block. */
  readonly incomplete: readonly IncompleteRoot[]
}

/**
 * Repairs the store (see the module comment and repairStore): idempotent, safe beside readers
 * and writers, and safe to kill and run again. The report lists the blocks lost and the roots
 * they leave incomplete.
 */
export async function repair(store: BlockStore, options: RepairOptions = {}): Promise<RepairReport> {
  if (!(store instanceof ObjectBlockStore)) throw new InvalidArgumentError('This block store cannot be repaired')
  const { view, ...result } = await repairStore(store, { ...options, findRoots: recogniseRoots })
  // A dry run answers for the store as the repair would leave it.
  const target = options.dryRun === true ? view : store
  const lost = new Set(result.lost)
  const incomplete: IncompleteRoot[] = []
  for (const root of await storeRoots(target, options)) {
    const missing = await missingBlocks(target, root.cid, options)
    for (const cid of missing) lost.add(cid)
    if (missing.length > 0) incomplete.push({ cid: root.cid.toString(), source: root.source, missing: missing.length })
  }
  return { ...result, lost: [...lost], incomplete }
}

/** Blocks `root` reaches that are missing (or, for the dag-cbor blocks the walk reads, damaged). */
async function missingBlocks(store: BlockStore, root: CID, options?: AbortOptions): Promise<string[]> {
  const missing: string[] = []
  const onError = (cid: CID, error: TesseraError) => {
    if (error.code === 'ERR_NOT_FOUND' || error.code === 'ERR_INTEGRITY') missing.push(cid.toString())
    else throw error
  }
  for await (const block of walkBlocks(store, [root], { onError, signal: options?.signal })) {
    // dag-cbor blocks were read (and verified) by the walk; the others were hashed by the repair's scan.
    if (block.bytes === undefined && !(await store.has(block.cid, options))) missing.push(block.cid.toString())
  }
  return missing
}

/**
 * The roots among `blocks` (spec/store.md §8): image roots to pin, and the newest head of each
 * dataset to reference; what the store's present roots reach needs neither.
 */
async function recogniseRoots({ blocks, view }: RootCandidates, options: AbortOptions): Promise<FoundRoots> {
  const ignore = () => {}
  const reached = new Set<string>()
  const present = await storeRoots(view, options)
  await walk(
    view,
    present.map((root) => root.cid),
    { seen: reached, onError: ignore, signal: options.signal },
  )

  const images: CID[] = []
  const versions: Array<{ readonly cid: CID; readonly pack: string; readonly version: DatasetVersion }> = []
  for (const { cid, pack } of blocks) {
    if (reached.has(seenKey(cid))) continue
    let bytes: Uint8Array
    let value: unknown
    try {
      bytes = await view.get(cid, options)
      value = decodeCbor(bytes)
    } catch (error) {
      if (error instanceof TesseraError) continue
      throw error
    }
    if (value === null || typeof value !== 'object') continue
    try {
      if (isVersionValue(value)) versions.push({ cid, pack, version: decodeVersion(bytes) })
      else if ('tessera' in value) {
        decodeManifest(bytes)
        images.push(cid)
      }
    } catch (error) {
      if (!(error instanceof TesseraError)) throw error
      // Root-shaped but invalid: not a root this store can use.
    }
  }

  // Heads: versions no other version follows. Per name the newest (by time, then by the pack
  // written last) gets the reference; older heads of a name (a removed and recreated dataset,
  // a checkpoint, history before a prune) are garbage, as they were before the loss.
  const followed = new Set<string>()
  for (const { version } of versions) if (version.previous !== undefined) followed.add(seenKey(version.previous))
  const heads = new Map<string, (typeof versions)[number]>()
  for (const head of versions) {
    if (followed.has(seenKey(head.cid)) || !isDatasetName(head.version.name)) continue
    const best = heads.get(head.version.name)
    if (best === undefined || head.version.time > best.version.time || (head.version.time === best.version.time && head.pack > best.pack)) {
      heads.set(head.version.name, head)
    }
  }
  const taken = new Set<string>()
  for await (const ref of view.refs!({ prefix: DATASET_REF_PREFIX, signal: options.signal })) taken.add(ref.name)
  const refs = new Map<string, CID>()
  for (const [name, head] of [...heads].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    refs.set(freeName(name, taken), head.cid)
  }

  // Images a recovered dataset reaches (its entries, in any version of its history) need no pin.
  const inDatasets = new Set<string>()
  await walk(
    view,
    [...heads.values()].map((head) => head.cid),
    { seen: inDatasets, onError: ignore, signal: options.signal },
  )
  const pins = images.filter((cid) => !inDatasets.has(seenKey(cid))).map((cid) => ({ cid, label: RECOVERED_LABEL }))
  return { pins, refs }
}

/** `dataset/NAME`, or when a dataset of that name exists already, `dataset/NAME.recovered[-N]`. */
function freeName(name: string, taken: Set<string>): string {
  const candidates = [name, `${name.slice(0, 90)}.recovered`]
  for (let n = 2; n < 1000; n++) candidates.push(`${name.slice(0, 90)}.recovered-${n}`)
  for (const candidate of candidates) {
    const ref = datasetRef(candidate)
    if (isDatasetName(candidate) && !taken.has(ref)) {
      taken.add(ref)
      return ref
    }
  }
  throw new InvalidArgumentError(`No free name for the recovered dataset ${name}`)
}
