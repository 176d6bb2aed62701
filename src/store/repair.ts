/**
 * Repair (spec/store.md §8): what the packs themselves say, made live again. Packs are
 * self-describing (CARv1 sections, §3), so a lost root log, a lost or damaged pack index and a
 * damaged pack are recoverable from them: every pack is read section by section, resynchronising
 * past damage on the next offset where a section whose block hashes right starts; every pack
 * whose index is missing, damaged or wrong gets a new one listing exactly its intact blocks;
 * packs no record names (and no transaction in progress owns) become live through one record
 * (`repair: true`), with the roots a caller-supplied recogniser finds among their blocks. It
 * only adds (indexes by atomic replace, one create-only record), so readers and writers of other
 * processes go on beside it, and it is safe to kill at any moment and run again. The store
 * still knows nothing of images: which blocks are roots is the caller's question.
 */
import { createHash, randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { IntegrityError, NotFoundError, StoreError, TesseraError } from '../errors.js'
import { DAG_CBOR, SHA2_256, verifyBlock } from '../format/block.js'
import type { AbortOptions, BlockStore, Pin, Ref, RefsOptions } from './interface.js'
import { indexKey, isLive, type Lease, newTxnId, type ObjectBlockStore, packKey, txnOfPack } from './object-store.js'
import type { ObjectDriver } from './objects/interface.js'
import { encodePackIndex, entryCid, type IndexEntry, PackIndex } from './pack-index.js'
import { appendRecord, type LogRecord, writeCheckpoint } from './root-log.js'

const LOCK = 'gc.lock'
/** Bytes of a pack read at once while scanning (a section longer than this is read whole). */
const WINDOW = 8 << 20
/** Longest varint a section length may take (2^56 is far past any pack). */
const MAX_VARINT = 8
/** Bytes of packs a store reads to stand in for their missing indexes (scanIndex). */
const SCAN_BUDGET = 256 << 20
/** A damaged range is searched for intact blocks up to this many bytes. */
const SALVAGE_BYTES = 64 << 20
/** `0x12 0x20`: a sha2-256 multihash of 32 bytes, the part every stored CID has (§3). */
const MULTIHASH_PREFIX = Uint8Array.of(SHA2_256, 32)
const DAG_PB = 0x70

/** A byte range of a pack where no intact section could be read. */
export interface PackDamage {
  readonly offset: number
  readonly length: number
}

/** What reading a pack section by section found. */
export interface PackScan {
  /** The pack's size in bytes. */
  readonly size: number
  /** Every intact block (its hash matches its CID), with where it is. */
  readonly entries: IndexEntry[]
  /** Ranges holding no intact section (a damaged length, CID or block, or a section cut off). */
  readonly damage: PackDamage[]
  /** CIDs read at the start of damaged sections whose blocks could not be recovered. */
  readonly damagedCids: CID[]
}

/**
 * Reads pack `name` section by section (spec/store.md §3). A section that does not parse, runs
 * past the end or whose block does not hash to its CID is damage: the scan resynchronises on the
 * next offset where a valid section starts (a minimal varint, a sha2-256 CID, a block that hashes
 * right), then salvages what it can of the damaged range (salvage).
 */
export async function scanPack(driver: ObjectDriver, name: string, options?: AbortOptions): Promise<PackScan> {
  const key = packKey(name)
  const info = await driver.stat(key, options)
  if (info === undefined) throw new NotFoundError(`Pack ${name} is missing from ${driver.location}`)
  const reader = new PackReader(driver, key, info.size)
  const entries: IndexEntry[] = []
  const damage: PackDamage[] = []
  const damagedCids: CID[] = []
  let at = 0
  while (at < reader.size) {
    options?.signal?.throwIfAborted()
    const section = await trySection(reader, at, options)
    if (section !== undefined) {
      entries.push(section.entry)
      at = section.end
      continue
    }
    const end = (await findSection(reader, at + 1, options)) ?? reader.size
    const salvaged = await salvage(reader, at, end, options)
    entries.push(...salvaged.entries)
    damagedCids.push(...salvaged.lost)
    damage.push({ offset: at, length: end - at })
    at = end
  }
  return { size: reader.size, entries, damage, damagedCids }
}

/**
 * The blocks of the damaged range [at, end) whose CID and bytes are intact: a CID right after
 * the range's first (damaged) length, or after a length that parses inside the range, whose
 * bytes up to the next such length or the end of the range hash right. A damaged length (or
 * two damaged sections in a row) loses nothing but what was itself damaged. `lost`: the CIDs
 * read there whose blocks could not be recovered. Ranges past SALVAGE_BYTES are not searched.
 */
async function salvage(
  reader: PackReader,
  at: number,
  end: number,
  options?: AbortOptions,
): Promise<{ readonly entries: IndexEntry[]; readonly lost: CID[] }> {
  const region = await reader.at(at, Math.min(end - at, SALVAGE_BYTES), options)
  const size = end - at <= SALVAGE_BYTES ? region.length : Math.min(region.length, MAX_VARINT + 40)
  // Where sections seem to start (a length that parses, then a CID), and the CIDs found.
  const starts = new Set<number>([size])
  const cids = new Map<number, { readonly codec: number; readonly digestAt: number; readonly length: number }>()
  for (let i = 1; i <= MAX_VARINT; i++) {
    const cid = readCid(region.subarray(0, size), i)
    if (cid !== undefined) cids.set(i, cid)
  }
  for (let k = region.indexOf(MULTIHASH_PREFIX); k >= 0 && k < size; k = region.indexOf(MULTIHASH_PREFIX, k + 1)) {
    for (const back of [3, 2, 0]) {
      const cidAt = k - back
      const cid = cidAt > 0 ? readCid(region.subarray(0, size), cidAt) : undefined
      if (cid === undefined) continue
      for (let bytes = 1; bytes <= MAX_VARINT && cidAt - bytes > 0; bytes++) {
        const length = readVarint(region, cidAt - bytes)
        if (length?.bytes === bytes && length.value >= cid.length) {
          starts.add(cidAt - bytes)
          cids.set(cidAt, cid)
        }
      }
    }
  }
  const boundaries = [...starts].sort((a, b) => a - b)
  const entries: IndexEntry[] = []
  const lost: CID[] = []
  const seen = new Set<string>()
  for (const [cidAt, cid] of [...cids].sort((a, b) => a[0] - b[0])) {
    const digest = region.subarray(cidAt + cid.digestAt, cidAt + cid.digestAt + 32)
    const key = hex(digest)
    if (seen.has(key)) continue
    const from = cidAt + cid.length
    const ends = boundaries.filter((b) => b >= from).slice(0, 4)
    const found = ends.find((b) => sha256(region.subarray(from, b)).equals(digest))
    if (found !== undefined) {
      seen.add(key)
      entries.push({ digest: Uint8Array.from(digest), offset: at + from, length: found - from, codec: cid.codec })
    } else {
      seen.add(key)
      lost.push(CID.createV1(cid.codec, Digest.create(SHA2_256, Uint8Array.from(digest))))
    }
  }
  return { entries, lost }
}

/**
 * An index for pack `name` made by reading the pack (scanPack), for a reader whose index of it is
 * missing or damaged: its intact blocks stay readable until `tessera repair` writes the index
 * again. Each driver reads at most SCAN_BUDGET bytes of packs so (a store that lost every index
 * must not cost every command a read of the whole store); past it, and for a pack that cannot
 * be read, the index is empty: the pack's blocks are not found.
 */
export async function scanIndex(driver: ObjectDriver, name: string, options?: AbortOptions): Promise<PackIndex> {
  try {
    const size = (await driver.stat(packKey(name), options))?.size ?? 0
    const used = scanBytes.get(driver) ?? 0
    if (used + size > SCAN_BUDGET) return new PackIndex(encodePackIndex([]))
    scanBytes.set(driver, used + size)
    return new PackIndex(encodePackIndex((await scanPack(driver, name, options)).entries))
  } catch (error) {
    if (!(error instanceof TesseraError) || (error.code !== 'ERR_NOT_FOUND' && error.code !== 'ERR_INTEGRITY')) throw error
    return new PackIndex(encodePackIndex([]))
  }
}

/** Bytes of packs scanIndex read, per driver. */
const scanBytes = new WeakMap<ObjectDriver, number>()

/** How the store's packs stand against its root log (spec/store.md §10.4). */
export interface PackCensus {
  /** Every pack file, by name, with its size. */
  readonly files: ReadonlyMap<string, number>
  /**
   * Pack files holding blocks that no record names (live or dropped) and no transaction explains
   * (no lease at all; with a lost log, no live lease): repair makes them live.
   */
  readonly unexplained: readonly string[]
  /** Pack files no record or transaction explains that hold no intact block (and have no index naming one): nothing to recover. */
  readonly junk: readonly string[]
  /**
   * The root log names no pack at all, while packs no transaction ever owned hold blocks: its
   * records and checkpoints were lost. (A new store whose first import was killed has only a
   * lapsed lease's pack: an orphan, not a lost log.)
   */
  readonly logLost: boolean
}

/** Lists the pack files and sorts out which the root log and the leases explain. */
export async function packCensus(store: ObjectBlockStore, options?: AbortOptions): Promise<PackCensus> {
  const driver = store.driver
  const state = store.state
  const files = new Map<string, number>()
  for await (const object of driver.list('packs/', options)) {
    const name = /^packs\/(.+)\.pack$/.exec(object.key)?.[1]
    if (name !== undefined && !name.includes('.tmp-')) files.set(name, object.size)
  }
  const now = Date.now()
  const leases = new Map((await store.leases(options)).map((lease) => [lease.txn, lease]))
  const unleased: string[] = []
  const lapsed: string[] = []
  for (const name of [...files.keys()].sort()) {
    if (state.packs.has(name) || state.dropped.has(name)) continue
    const owner = txnOfPack(name)
    const lease = owner === undefined ? undefined : leases.get(owner)
    // In progress: its writer will name it. A lapsed lease's pack is an orphan the next
    // collection deletes (§10.4), unless the log itself is gone (its commit may be what was lost).
    if (lease === undefined) unleased.push(name)
    else if (!isLive(lease, store.init.leaseMs, now)) lapsed.push(name)
  }
  const unexplained: string[] = []
  const junk: string[] = []
  for (const name of unleased) ((await holdsBlocks(driver, name, options)) ? unexplained : junk).push(name)
  const logLost = state.packs.size === 0 && state.dropped.size === 0 && unexplained.length > 0
  if (logLost) for (const name of lapsed) ((await holdsBlocks(driver, name, options)) ? unexplained : junk).push(name)
  unexplained.sort()
  junk.sort()
  return { files, unexplained, junk, logLost }
}

/** Whether pack `name` holds a block: its index names one, or (without a valid index) reading it finds one intact. */
async function holdsBlocks(driver: ObjectDriver, name: string, options?: AbortOptions): Promise<boolean> {
  const bytes = await driver.get(indexKey(name), options)
  if (bytes !== undefined) {
    try {
      return new PackIndex(bytes).count > 0
    } catch {
      // Damaged: read the pack.
    }
  }
  try {
    return (await scanPack(driver, name, options)).entries.length > 0
  } catch (error) {
    if (error instanceof TesseraError && error.code === 'ERR_NOT_FOUND') return false
    throw error
  }
}

/** A problem with the store's objects, for `verify --all`: the object's key, a code, a message. */
export interface StoreProblem {
  readonly key: string
  readonly code: string
  readonly message: string
}

/**
 * The damage to the store's own structure (not to blocks): a lost root log, packs no record
 * names, live packs whose file or index is missing or damaged. Each names `tessera repair`.
 */
export async function checkStore(store: ObjectBlockStore, options?: AbortOptions): Promise<StoreProblem[]> {
  await store.refresh(options)
  const census = await packCensus(store, options)
  const problems: StoreProblem[] = []
  if (census.logLost) {
    const bytes = [...census.files.values()].reduce((a, b) => a + b, 0)
    problems.push({
      key: 'log/',
      code: 'ERR_INTEGRITY',
      message: `The root log names no pack, but ${census.files.size} pack file(s) (${bytes} bytes) are in the store: its records and checkpoints were lost. Run \`tessera repair\``,
    })
  } else {
    for (const name of census.unexplained) {
      problems.push({
        key: packKey(name),
        code: 'ERR_INTEGRITY',
        message: `No record of the root log names pack ${name} and no transaction in progress owns it: run \`tessera repair\` to make its blocks live again`,
      })
    }
  }
  for (const name of [...store.state.packs.keys()].sort()) {
    if (!census.files.has(name)) {
      problems.push({ key: packKey(name), code: 'ERR_INTEGRITY', message: `Pack ${name}, which the root log names, is missing` })
      continue
    }
    try {
      await store.readIndex(name, options)
    } catch (error) {
      if (!(error instanceof TesseraError)) throw error
      problems.push({ key: indexKey(name), code: error.code, message: error.message })
    }
  }
  return problems
}

/**
 * IntegrityError when pack files exist but the root log names none (a lost log): garbage
 * collection must not run on such a store (spec/store.md §10.4).
 */
export async function refuseLostLog(store: ObjectBlockStore, options?: AbortOptions): Promise<void> {
  if (store.state.packs.size > 0 || store.state.dropped.size > 0) return
  const census = await packCensus(store, options)
  if (census.logLost) {
    throw new IntegrityError(
      `The root log of ${store.location} names no pack, but ${census.files.size} pack file(s) are there: its records and checkpoints were lost. Nothing was deleted; run \`tessera repair\``,
    )
  }
}

/** A dag-cbor block of a repaired pack that may be a root, and the newest pack holding it. */
export interface RootCandidate {
  readonly cid: CID
  readonly pack: string
}

/** What a root recogniser is given: candidate blocks, and the store as the repair leaves it. */
export interface RootCandidates {
  readonly blocks: readonly RootCandidate[]
  /** A read-only view of the store with every repaired pack live, and its current pins and references. */
  readonly view: BlockStore
}

/** Roots a recogniser found: pins to add and references to create (never replaced). */
export interface FoundRoots {
  readonly pins: ReadonlyArray<{ readonly cid: CID; readonly label: string }>
  readonly refs: ReadonlyMap<string, CID>
}

/** Recognises roots among the dag-cbor blocks of the packs a repair makes live. */
export type RootFinder = (candidates: RootCandidates, options: AbortOptions) => Promise<FoundRoots>

/** The steps of a repair, in order; `index-written` repeats once per index written. */
export type RepairPhase = 'scanned' | 'index-written' | 'committed' | 'done'

/** Options of repairStore. */
export interface StoreRepairOptions extends AbortOptions {
  /** Find and report everything, change nothing (default false). */
  readonly dryRun?: boolean
  /**
   * Recognises the roots among the blocks of the packs made live (or of every pack, when the
   * log has no pin and no reference); without it no pin or reference is added, and the blocks
   * of recovered packs stay only until the next garbage collection.
   */
  readonly findRoots?: RootFinder
  /** Called as the repair passes each step: for progress and crash tests. */
  readonly onPhase?: (phase: RepairPhase) => void
}

/** How one pack stood, and what the repair did with it. */
export interface PackRepair {
  readonly name: string
  /** `live`: named by the root log; `recovered`: made live by this repair; `empty`: unexplained, but no block in it is intact. */
  readonly status: 'live' | 'recovered' | 'empty'
  /** The index as found: ok, missing, damaged (unreadable), or wrong (names blocks not where it says, or misses intact ones). */
  readonly index: 'ok' | 'missing' | 'damaged' | 'wrong'
  /** Whether this repair wrote (or, in a dry run, would write) its index. */
  readonly indexWritten: boolean
  /** Intact blocks in the pack. */
  readonly blocks: number
  readonly damage: readonly PackDamage[]
  /** Blocks the pack's index named (or, without one, the damaged sections began with) that are intact nowhere. */
  readonly lost: readonly string[]
}

/** What repairStore found and did. */
export interface StoreRepairResult {
  readonly dryRun: boolean
  /** The root log named no pack while pack files existed. */
  readonly logLost: boolean
  /** Every pack read (live and unexplained), in name order. */
  readonly packs: readonly PackRepair[]
  /** Intact blocks in them (a block in several packs counts once). */
  readonly blocks: number
  /** Packs made live. */
  readonly recovered: readonly string[]
  /** Packs whose index was written. */
  readonly indexesWritten: readonly string[]
  /** Live packs the root log names whose file is missing. */
  readonly missingPacks: readonly string[]
  /** Blocks named by an index (or a damaged section) that are intact in no pack: lost. */
  readonly lost: readonly string[]
  /** Pins and references added. */
  readonly pins: ReadonlyArray<{ readonly cid: string; readonly label: string }>
  readonly refs: Readonly<Record<string, string>>
  /** The generation of the record this repair wrote, if it wrote one. */
  readonly generation: number | undefined
  /** The store as the repair left it (or, in a dry run, would leave it), read-only. */
  readonly view: BlockStore
}

/**
 * Repairs `store` (spec/store.md §8): reads every live and unexplained pack, writes an index for
 * each whose index is missing, damaged or wrong, and makes the unexplained ones live with the
 * roots `findRoots` recognises in one record. Takes the collection lock (`gc.lock`).
 */
export async function repairStore(store: ObjectBlockStore, options: StoreRepairOptions = {}): Promise<StoreRepairResult> {
  const { signal } = options
  signal?.throwIfAborted()
  const dryRun = options.dryRun === true
  const txn = newTxnId()
  if (!dryRun) await takeLock(store, txn)
  const renewal = dryRun
    ? undefined
    : setInterval(
        () => {
          writeLock(store, txn).catch(() => {})
        },
        Math.max(1000, store.init.leaseMs / 4),
      )
  renewal?.unref()
  try {
    return await repairLocked(store, txn, options)
  } finally {
    if (renewal !== undefined) {
      clearInterval(renewal)
      await store.driver.delete(LOCK).catch(() => {})
    }
  }
}

interface PackPlan {
  readonly name: string
  readonly status: 'live' | 'recovered' | 'empty'
  readonly index: 'ok' | 'missing' | 'damaged' | 'wrong'
  readonly entries: readonly IndexEntry[]
  readonly damage: readonly PackDamage[]
  /** Blocks this pack was said to hold that were not found intact in it. */
  readonly missing: readonly IndexEntry[]
  readonly damagedCids: readonly CID[]
  indexWritten: boolean
}

async function repairLocked(store: ObjectBlockStore, txn: string, options: StoreRepairOptions): Promise<StoreRepairResult> {
  const dryRun = options.dryRun === true
  const driver = store.driver
  await store.refresh(options)
  const census = await packCensus(store, options)
  const G = store.state.gen
  const unexplained = new Set(census.unexplained)
  const missingPacks = [...store.state.packs.keys()].filter((name) => !census.files.has(name)).sort()
  const junk = new Set(census.junk)
  const names = [...census.files.keys()].filter((name) => store.state.packs.has(name) || unexplained.has(name) || junk.has(name)).sort()

  // 1. Read every pack; compare with its index.
  const plans: PackPlan[] = []
  for (const name of names) plans.push(await planPack(store, name, !store.state.packs.has(name), options))
  // A live pack whose file is gone: everything its index named is missing.
  const goneEntries: IndexEntry[] = []
  for (const name of missingPacks) {
    try {
      goneEntries.push(...(await store.readIndex(name, options)).entries())
    } catch {
      // No index either: nothing to name.
    }
  }
  options.onPhase?.('scanned')

  // 2. Write the indexes that need it (atomically replaced: readers see the old or the new one).
  for (const plan of plans) {
    if (plan.index === 'ok' || plan.status === 'empty') continue
    plan.indexWritten = true
    if (dryRun) continue
    await driver.put(indexKey(plan.name), encodePackIndex(plan.entries), options)
    options.onPhase?.('index-written')
  }

  // 3. The store as it will be: every repaired pack live.
  const intact = new Set<string>()
  const indexes: Array<[string, PackIndex]> = []
  for (const plan of plans) {
    if (plan.status === 'empty') continue
    for (const entry of plan.entries) intact.add(hex(entry.digest))
    indexes.push([plan.name, new PackIndex(encodePackIndex(plan.entries))])
  }
  const recovered = plans.filter((plan) => plan.status === 'recovered').map((plan) => plan.name)
  const state = store.state
  const pins: Pin[] = [...state.pins].map(([cid, pin]) => ({ cid: CID.parse(cid), label: pin.label, added: pin.added }))
  const refs: Ref[] = [...state.refs].map(([name, cid]) => ({ name, cid: CID.parse(cid) }))
  let view = new RepairView(driver, indexes, pins, refs)

  // 4. Roots among the blocks of the packs made live (of every pack when the log has no root at all).
  let found: FoundRoots = { pins: [], refs: new Map() }
  const rootAll = state.pins.size === 0 && state.refs.size === 0
  if (options.findRoots !== undefined) {
    const newest = new Map<string, RootCandidate>()
    for (const plan of plans) {
      if (plan.status === 'empty' || !(rootAll || plan.status === 'recovered')) continue
      for (const entry of plan.entries) {
        if (entry.codec !== DAG_CBOR) continue
        // Plans are in name order, and a pack's name starts with its writer's time: the last wins.
        newest.set(hex(entry.digest), { cid: entryCid(entry), pack: plan.name })
      }
    }
    if (newest.size > 0) found = await options.findRoots({ blocks: [...newest.values()], view }, { signal: options.signal })
  }

  // 5. One record: the recovered packs live, the roots found pinned and referenced.
  let generation: number | undefined
  let newPins: Array<{ cid: string; label: string }> = []
  let newRefs: Record<string, string> = {}
  const choose = () => {
    const current = store.state
    newPins = found.pins
      .filter((pin) => !current.pins.has(pin.cid.toString()))
      .map((pin) => ({ cid: pin.cid.toString(), label: pin.label }))
    newPins = [...new Map(newPins.map((pin) => [pin.cid, pin])).values()]
    newRefs = Object.fromEntries([...found.refs].filter(([name]) => !current.refs.has(name)).map(([name, cid]) => [name, cid.toString()]))
  }
  choose()
  if (!dryRun && (recovered.length > 0 || newPins.length > 0 || Object.keys(newRefs).length > 0)) {
    for (;;) {
      const record: LogRecord & { readonly repair: true } = {
        gen: store.state.gen + 1,
        time: Date.now(),
        base: G,
        txn,
        ...(recovered.length > 0 ? { add: recovered } : {}),
        ...(newPins.length > 0 ? { pins: newPins } : {}),
        ...(Object.keys(newRefs).length > 0 ? { refs: newRefs } : {}),
        repair: true,
      }
      if (await appendRecord(driver, record, options)) {
        generation = record.gen
        break
      }
      // Another commit took the number: look again (pins and references may have appeared).
      await store.refresh(options)
      choose()
    }
    options.onPhase?.('committed')
    await store.refresh(options)
    await store.reloadIndexes(options)
    const live = (await store.leases(options)).filter((lease) => isLive(lease, store.init.leaseMs))
    await writeCheckpoint(driver, store.state, Math.min(store.state.gen, ...live.map((lease) => lease.base)), options)
  } else if (!dryRun && plans.some((plan) => plan.indexWritten)) {
    await store.reloadIndexes(options)
  }
  view = new RepairView(
    driver,
    indexes,
    [...pins, ...newPins.map((pin) => ({ cid: CID.parse(pin.cid), label: pin.label, added: Date.now() }))],
    [...refs, ...Object.entries(newRefs).map(([name, cid]) => ({ name, cid: CID.parse(cid) }))],
  )

  // 6. What is lost: blocks an index (or, without one, a damaged section) named that are intact nowhere.
  const lost = new Map<string, string>()
  const lose = (digest: Uint8Array, cid: CID) => {
    const key = hex(digest)
    if (!intact.has(key) && !lost.has(key)) lost.set(key, cid.toString())
  }
  const reports: PackRepair[] = plans.map((plan) => {
    const mine = new Map<string, string>()
    for (const entry of plan.missing) {
      lose(entry.digest, entryCid(entry))
      if (!intact.has(hex(entry.digest)) && !mine.has(hex(entry.digest))) mine.set(hex(entry.digest), entryCid(entry).toString())
    }
    for (const cid of plan.damagedCids) {
      lose(cid.multihash.digest, cid)
      if (!intact.has(hex(cid.multihash.digest)) && !mine.has(hex(cid.multihash.digest)))
        mine.set(hex(cid.multihash.digest), cid.toString())
    }
    return {
      name: plan.name,
      status: plan.status,
      index: plan.index,
      indexWritten: plan.indexWritten,
      blocks: plan.entries.length,
      damage: plan.damage,
      lost: [...mine.values()],
    }
  })
  for (const entry of goneEntries) lose(entry.digest, entryCid(entry))
  options.onPhase?.('done')
  return {
    dryRun,
    logLost: census.logLost,
    packs: reports,
    blocks: intact.size,
    recovered,
    indexesWritten: plans.filter((plan) => plan.indexWritten).map((plan) => plan.name),
    missingPacks,
    lost: [...lost.values()],
    pins: newPins,
    refs: newRefs,
    generation,
    view,
  }
}

/** Reads pack `name` and its index: the entries its new index would hold, and what its old one got wrong. */
async function planPack(store: ObjectBlockStore, name: string, unexplained: boolean, options?: AbortOptions): Promise<PackPlan> {
  const driver = store.driver
  const scan = await scanPack(driver, name, options)
  let old: PackIndex | undefined
  let index: PackPlan['index'] = 'ok'
  const bytes = await driver.get(indexKey(name), options)
  if (bytes === undefined) index = 'missing'
  else {
    try {
      old = new PackIndex(bytes, `The index of pack ${name}`)
    } catch {
      index = 'damaged'
    }
  }
  const entries = new Map<string, IndexEntry>()
  for (const entry of scan.entries) if (!entries.has(hex(entry.digest))) entries.set(hex(entry.digest), entry)
  const missing: IndexEntry[] = []
  if (old !== undefined) {
    for (const entry of old.entries()) {
      const key = hex(entry.digest)
      const scanned = entries.get(key)
      if (scanned !== undefined && scanned.offset === entry.offset && scanned.length === entry.length) continue
      // Not where the framing put it: the index may still be right (a damaged CID in the section header).
      if (await intactAt(driver, name, entry, scan.size, options)) {
        entries.set(key, { ...entry, digest: Uint8Array.from(entry.digest) })
      } else {
        missing.push({ ...entry, digest: Uint8Array.from(entry.digest) })
        index = 'wrong'
      }
    }
    if (index === 'ok' && entries.size !== old.count) index = 'wrong'
  }
  const list = [...entries.values()]
  return {
    name,
    status: !unexplained ? 'live' : list.length > 0 ? 'recovered' : 'empty',
    index,
    entries: list,
    damage: scan.damage,
    missing,
    // Without an index, the CIDs of damaged sections are all that names what was lost.
    damagedCids: old === undefined ? scan.damagedCids : [],
    indexWritten: false,
  }
}

/** Whether `entry`'s bytes in pack `name` hash to its digest. */
async function intactAt(driver: ObjectDriver, name: string, entry: IndexEntry, size: number, options?: AbortOptions): Promise<boolean> {
  if (entry.offset + entry.length > size) return false
  const bytes = await driver.getRange(packKey(name), entry.offset, entry.length, options)
  return sha256(bytes).equals(entry.digest)
}

/** A read-only BlockStore over a set of pack indexes: the store as a repair leaves it. */
class RepairView implements BlockStore {
  readonly #driver: ObjectDriver
  readonly #indexes: ReadonlyArray<[string, PackIndex]>
  readonly #pins: readonly Pin[]
  readonly #refs: readonly Ref[]

  constructor(driver: ObjectDriver, indexes: ReadonlyArray<[string, PackIndex]>, pins: readonly Pin[], refs: readonly Ref[]) {
    this.#driver = driver
    // Newest first, as the store searches.
    this.#indexes = [...indexes].sort((a, b) => (a[0] < b[0] ? 1 : -1))
    this.#pins = pins
    this.#refs = [...refs].sort((a, b) => Buffer.compare(Buffer.from(a.name, 'utf8'), Buffer.from(b.name, 'utf8')))
  }

  #find(cid: CID): { pack: string; offset: number; length: number } | undefined {
    if (cid.multihash.code !== SHA2_256) return undefined
    for (const [pack, index] of this.#indexes) {
      const i = index.find(cid.multihash.digest)
      if (i >= 0) return { pack, offset: index.offset(i), length: index.length(i) }
    }
    return undefined
  }

  async #read(cid: CID, options?: AbortOptions): Promise<Uint8Array> {
    options?.signal?.throwIfAborted()
    const found = this.#find(cid)
    if (found === undefined) throw new NotFoundError(`Block ${cid} not found`)
    return this.#driver.getRange(packKey(found.pack), found.offset, found.length, options)
  }

  async get(cid: CID, options?: AbortOptions): Promise<Uint8Array> {
    const bytes = await this.#read(cid, options)
    verifyBlock(cid, bytes)
    return bytes
  }

  getMany(cids: readonly CID[], options?: AbortOptions): Promise<Uint8Array[]> {
    return Promise.all(cids.map((cid) => this.get(cid, options)))
  }

  getManyUnsafe(cids: readonly CID[], options?: AbortOptions): Promise<Uint8Array[]> {
    return Promise.all(cids.map((cid) => this.#read(cid, options)))
  }

  async has(cid: CID): Promise<boolean> {
    return this.#find(cid) !== undefined
  }

  async size(cid: CID): Promise<number | undefined> {
    return this.#find(cid)?.length
  }

  begin(): Promise<never> {
    return Promise.reject(new StoreError('ERR_STORE', 'A repair view of the store is read-only'))
  }

  async *pins(): AsyncIterable<Pin> {
    yield* [...this.#pins].sort((a, b) => a.added - b.added)
  }

  async ref(name: string): Promise<CID | undefined> {
    return this.#refs.find((ref) => ref.name === name)?.cid
  }

  async *refs(options: RefsOptions = {}): AsyncIterable<Ref> {
    yield* this.#refs.filter((ref) => ref.name.startsWith(options.prefix ?? ''))
  }

  async storedBytes(): Promise<number> {
    return 0
  }

  async close(): Promise<void> {}
}

/** Reads a pack forward through a window of WINDOW bytes. */
class PackReader {
  readonly size: number
  readonly #driver: ObjectDriver
  readonly #key: string
  #start = 0
  #bytes: Buffer = Buffer.alloc(0)

  constructor(driver: ObjectDriver, key: string, size: number) {
    this.#driver = driver
    this.#key = key
    this.size = size
  }

  /** Up to `length` bytes at `offset` (fewer at the end of the pack). The view stays valid. */
  async at(offset: number, length: number, options?: AbortOptions): Promise<Buffer> {
    const end = Math.min(this.size, offset + length)
    if (offset >= end) return Buffer.alloc(0)
    if (offset >= this.#start && end <= this.#start + this.#bytes.length) {
      return this.#bytes.subarray(offset - this.#start, end - this.#start)
    }
    const readEnd = Math.min(this.size, Math.max(end, offset + WINDOW))
    const bytes = await this.#driver.getRange(this.#key, offset, readEnd - offset, options)
    this.#start = offset
    this.#bytes = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)
    return this.#bytes.subarray(0, end - offset)
  }
}

/** A section that starts at `at` and whose block hashes right, or undefined. */
async function trySection(
  reader: PackReader,
  at: number,
  options?: AbortOptions,
): Promise<{ readonly entry: IndexEntry; readonly cidAt: number; readonly end: number } | undefined> {
  const head = await reader.at(at, MAX_VARINT + 40, options)
  const length = readVarint(head, 0)
  if (length === undefined) return undefined
  const cid = readCid(head, length.bytes)
  if (cid === undefined || length.value < cid.length || at + length.bytes + length.value > reader.size) return undefined
  const digest = Uint8Array.from(head.subarray(length.bytes + cid.digestAt, length.bytes + cid.digestAt + 32))
  const offset = at + length.bytes + cid.length
  const block = await reader.at(offset, length.value - cid.length, options)
  if (!sha256(block).equals(digest)) return undefined
  return { entry: { digest, offset, length: block.length, codec: cid.codec }, cidAt: at + length.bytes, end: offset + block.length }
}

/** The first offset at or after `from` where a valid section starts, or undefined. */
async function findSection(reader: PackReader, from: number, options?: AbortOptions): Promise<number | undefined> {
  let at = from
  while (at < reader.size) {
    options?.signal?.throwIfAborted()
    const chunk = await reader.at(at, WINDOW, options)
    if (chunk.length < MULTIHASH_PREFIX.length) return undefined
    for (let i = chunk.indexOf(MULTIHASH_PREFIX); i >= 0; i = chunk.indexOf(MULTIHASH_PREFIX, i + 1)) {
      // The multihash at `at + i` ends a CID that starts 0 (CIDv0), 2 or 3 (CIDv1) bytes before it.
      for (const back of [3, 2, 0]) {
        const cidAt = at + i - back
        for (let bytes = 1; bytes <= MAX_VARINT && cidAt - bytes >= from; bytes++) {
          const section = await trySection(reader, cidAt - bytes, options)
          if (section !== undefined && section.cidAt === cidAt) return cidAt - bytes
        }
      }
    }
    at += chunk.length - (MULTIHASH_PREFIX.length - 1)
  }
  return undefined
}

/** A minimal unsigned LEB128 varint at `at` (spec/store.md §3), or undefined. */
function readVarint(bytes: Uint8Array, at: number): { readonly value: number; readonly bytes: number } | undefined {
  let value = 0
  let scale = 1
  for (let i = 0; i < MAX_VARINT && at + i < bytes.length; i++) {
    const byte = bytes[at + i]!
    value += (byte & 0x7f) * scale
    if (byte < 0x80) return i > 0 && byte === 0 ? undefined : { value, bytes: i + 1 }
    scale *= 128
  }
  return undefined
}

/** A sha2-256 CID at `at`: CIDv1 (0x01, a codec varint, 0x12 0x20, 32 bytes) or CIDv0 (0x12 0x20, 32 bytes). */
function readCid(
  bytes: Uint8Array,
  at: number,
): { readonly codec: number; readonly digestAt: number; readonly length: number } | undefined {
  if (bytes[at] === SHA2_256 && bytes[at + 1] === 32) {
    return at + 34 <= bytes.length ? { codec: DAG_PB, digestAt: 2, length: 34 } : undefined
  }
  if (bytes[at] !== 0x01) return undefined
  const codec = readVarint(bytes, at + 1)
  if (codec === undefined || codec.bytes > 2) return undefined
  const mh = at + 1 + codec.bytes
  if (bytes[mh] !== SHA2_256 || bytes[mh + 1] !== 32 || mh + 34 > bytes.length) return undefined
  return { codec: codec.value, digestAt: mh + 2 - at, length: mh + 34 - at }
}

function sha256(bytes: Uint8Array): Buffer {
  return createHash('sha256').update(bytes).digest()
}

function hex(digest: Uint8Array): string {
  return Buffer.from(digest.buffer, digest.byteOffset, digest.length).toString('hex')
}

async function takeLock(store: ObjectBlockStore, txn: string): Promise<void> {
  const driver = store.driver
  for (let attempt = 0; attempt < 2; attempt++) {
    if (await driver.put(LOCK, lockBytes(txn), { ifAbsent: true })) return
    const bytes = await driver.get(LOCK)
    let holder: Lease | undefined
    try {
      holder = bytes === undefined ? undefined : (JSON.parse(new TextDecoder().decode(bytes)) as Lease)
    } catch {
      holder = undefined
    }
    if (holder !== undefined && isLive(holder, store.init.leaseMs)) {
      throw new StoreError(
        'ERR_STORE_LOCKED',
        `A garbage collection or repair of ${driver.location} is running (${holder.host ?? '?'} pid ${holder.pid ?? '?'})`,
      )
    }
    // Its holder died: the next attempt takes the lock over.
    await driver.delete(LOCK)
  }
  throw new StoreError('ERR_STORE_LOCKED', `A garbage collection or repair of ${driver.location} is starting`)
}

async function writeLock(store: ObjectBlockStore, txn: string): Promise<void> {
  await store.driver.put(LOCK, lockBytes(txn))
}

function lockBytes(txn: string): Uint8Array {
  const lease = { txn, base: 0, time: Date.now(), host: hostname(), pid: process.pid, nonce: randomBytes(4).toString('hex') }
  return new TextEncoder().encode(`${JSON.stringify(lease)}\n`)
}
