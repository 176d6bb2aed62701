/**
 * The store's root log (spec/store.md §5): the one mutable part of a store, kept as numbered,
 * create-only records. Record `n` is written only if no record `n` exists (link(2) on disk,
 * `If-None-Match: *` on S3), so writers on any number of processes and machines agree on one
 * order of commits without a lock, as Delta Lake's transaction log does on object stores.
 * Folding the records gives the store's state: which packs are live, the pins and the
 * references. Checkpoints hold the folded state every CHECKPOINT_EVERY records so a reader
 * reads one checkpoint and a short tail.
 */
import { IntegrityError } from '../errors.js'
import type { AbortOptions } from './interface.js'
import type { ObjectDriver } from './objects/interface.js'

/** A checkpoint is written after every this many records. */
export const CHECKPOINT_EVERY = 64
const LOG = 'log/'
const CHECKPOINTS = 'checkpoints/'
const GEN_DIGITS = 12

/** A pin's record. */
export interface PinRecord {
  readonly label: string
  /** Milliseconds since the epoch, when it was committed. */
  readonly added: number
}

/** One commit: what changed at generation `gen`. Every member but gen/time/base is optional. */
export interface LogRecord {
  readonly gen: number
  readonly time: number
  /** The generation the writer had read when it began (its snapshot). */
  readonly base: number
  /** The writing transaction's id. */
  readonly txn?: string
  /** Packs (names without extension) that become live. */
  readonly add?: readonly string[]
  /** Packs that stop being live (garbage collection); their bytes stay until purged. */
  readonly drop?: readonly string[]
  /** For a collection's record: the generation its mark read. */
  readonly mark?: number
  /** Dropped packs whose files have been deleted. */
  readonly purge?: readonly string[]
  /** Transactions declared dead: a later commit by one of them is refused. */
  readonly expire?: readonly string[]
  readonly pins?: ReadonlyArray<{ readonly cid: string; readonly label: string }>
  readonly unpins?: readonly string[]
  /** Reference changes: name -> CID string, or null to delete. */
  readonly refs?: Readonly<Record<string, string | null>>
}

/** The folded state at generation `gen`. */
export interface StoreState {
  gen: number
  /** Live packs -> the generation that added them. */
  readonly packs: Map<string, number>
  /** Dropped but not yet purged packs -> the generation that dropped them. */
  readonly dropped: Map<string, number>
  readonly pins: Map<string, PinRecord>
  readonly refs: Map<string, string>
}

/** An empty store's state. */
export function emptyState(): StoreState {
  return { gen: 0, packs: new Map(), dropped: new Map(), pins: new Map(), refs: new Map() }
}

/** A deep copy. */
export function cloneState(state: StoreState): StoreState {
  return {
    gen: state.gen,
    packs: new Map(state.packs),
    dropped: new Map(state.dropped),
    pins: new Map(state.pins),
    refs: new Map(state.refs),
  }
}

/** Applies `record` (generation state.gen + 1) to `state` in place. */
export function applyRecord(state: StoreState, record: LogRecord): void {
  if (record.gen !== state.gen + 1) throw new IntegrityError(`Root log record ${record.gen} does not follow ${state.gen}`)
  for (const pack of record.add ?? []) state.packs.set(pack, record.gen)
  for (const pack of record.drop ?? []) {
    state.packs.delete(pack)
    state.dropped.set(pack, record.gen)
  }
  for (const pack of record.purge ?? []) state.dropped.delete(pack)
  for (const cid of record.unpins ?? []) state.pins.delete(cid)
  for (const pin of record.pins ?? []) state.pins.set(pin.cid, { label: pin.label, added: record.time })
  for (const [name, cid] of Object.entries(record.refs ?? {})) {
    if (cid === null) state.refs.delete(name)
    else state.refs.set(name, cid)
  }
  state.gen = record.gen
}

/** The key of record `gen`. */
export function recordKey(gen: number): string {
  return `${LOG}${String(gen).padStart(GEN_DIGITS, '0')}.json`
}

function checkpointKey(gen: number): string {
  return `${CHECKPOINTS}${String(gen).padStart(GEN_DIGITS, '0')}.json`
}

function genOf(key: string, prefix: string): number | undefined {
  const match = new RegExp(`^${prefix}(\\d{${GEN_DIGITS},})\\.json$`).exec(key)
  return match === null ? undefined : Number(match[1])
}

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

function parseJson(bytes: Uint8Array, what: string): Record<string, unknown> {
  try {
    const value = JSON.parse(decoder.decode(bytes)) as unknown
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not an object')
    return value as Record<string, unknown>
  } catch (cause) {
    throw new IntegrityError(`${what} is not valid JSON`, { cause })
  }
}

/** Encodes a record as the UTF-8 JSON object stored under its key. */
export function encodeRecord(record: LogRecord): Uint8Array {
  return encoder.encode(`${JSON.stringify(record)}\n`)
}

function decodeRecord(bytes: Uint8Array, gen: number): LogRecord {
  const value = parseJson(bytes, `Root log record ${gen}`)
  if (value.gen !== gen || typeof value.time !== 'number' || typeof value.base !== 'number') {
    throw new IntegrityError(`Root log record ${gen} is malformed`)
  }
  return value as unknown as LogRecord
}

/** Encodes a checkpoint of `state`. */
export function encodeCheckpoint(state: StoreState): Uint8Array {
  return encoder.encode(
    `${JSON.stringify({
      gen: state.gen,
      packs: [...state.packs],
      dropped: [...state.dropped],
      pins: [...state.pins].map(([cid, pin]) => [cid, pin.label, pin.added]),
      refs: [...state.refs],
    })}\n`,
  )
}

function decodeCheckpoint(bytes: Uint8Array, gen: number): StoreState {
  const value = parseJson(bytes, `Checkpoint ${gen}`)
  const pairs = (member: unknown): Array<[string, unknown]> => {
    if (!Array.isArray(member)) throw new IntegrityError(`Checkpoint ${gen} is malformed`)
    return member as Array<[string, unknown]>
  }
  if (value.gen !== gen) throw new IntegrityError(`Checkpoint ${gen} is malformed`)
  return {
    gen,
    packs: new Map(pairs(value.packs) as Array<[string, number]>),
    dropped: new Map(pairs(value.dropped) as Array<[string, number]>),
    pins: new Map((pairs(value.pins) as unknown as Array<[string, string, number]>).map(([cid, label, added]) => [cid, { label, added }])),
    refs: new Map(pairs(value.refs) as Array<[string, string]>),
  }
}

/**
 * The newest state: the newest checkpoint, then every record after it. Both folders are
 * listed at once, then the checkpoint and the records read at once: three round trips on S3.
 */
export async function readState(driver: ObjectDriver, options?: AbortOptions): Promise<StoreState> {
  for (let attempt = 0; ; attempt++) {
    const [checkpoints, records] = await Promise.all([gens(driver, CHECKPOINTS, undefined, options), gens(driver, LOG, undefined, options)])
    const newest = checkpoints.length === 0 ? undefined : Math.max(...checkpoints)
    const tail = records.filter((gen) => gen > (newest ?? 0))
    const [checkpoint, ...bodies] = await Promise.all([
      newest === undefined ? undefined : driver.get(checkpointKey(newest), options),
      ...tail.map((gen) => driver.get(recordKey(gen), options)),
    ])
    // Pruned while we looked (a checkpoint or records gone): look again.
    if ((newest !== undefined && checkpoint === undefined) || bodies.includes(undefined)) {
      if (attempt < 3) continue
      throw new IntegrityError(`The root log of ${driver.location} keeps changing under this reader`)
    }
    const state = newest === undefined ? emptyState() : decodeCheckpoint(checkpoint!, newest)
    if (applyAll(state, tail, bodies as Uint8Array[])) return state
    if (attempt >= 3) throw new IntegrityError(`The root log of ${driver.location} has a gap after generation ${state.gen}`)
  }
}

/**
 * Applies, in place, every record after `state.gen`. False if the log has a gap (records
 * pruned under a reader that fell far behind): the caller starts again from a checkpoint.
 */
export async function advanceState(driver: ObjectDriver, state: StoreState, options?: AbortOptions): Promise<boolean> {
  const tail = await gens(driver, LOG, recordKey(state.gen), options)
  const bodies = await Promise.all(tail.map((gen) => driver.get(recordKey(gen), options)))
  if (bodies.includes(undefined)) return false
  return applyAll(state, tail, bodies as Uint8Array[])
}

// Applies records `gens` (ascending, with their bytes) after state.gen: false at a gap.
function applyAll(state: StoreState, tail: readonly number[], bodies: readonly Uint8Array[]): boolean {
  for (let i = 0; i < tail.length; i++) {
    const gen = tail[i]!
    if (gen <= state.gen) continue
    if (gen !== state.gen + 1) return false
    applyRecord(state, decodeRecord(bodies[i]!, gen))
  }
  return true
}

// The generations under `prefix` (after `startAfter`), ascending.
async function gens(driver: ObjectDriver, prefix: string, startAfter: string | undefined, options?: AbortOptions): Promise<number[]> {
  const out: number[] = []
  for await (const { key } of driver.list(prefix, { ...options, ...(startAfter === undefined ? {} : { startAfter }) })) {
    const gen = genOf(key, prefix)
    if (gen !== undefined) out.push(gen)
  }
  return out.sort((a, b) => a - b)
}

/** The records after `from` up to the newest, in order (for a committer's checks). */
export async function readRecords(driver: ObjectDriver, from: number, options?: AbortOptions): Promise<LogRecord[] | undefined> {
  const records: LogRecord[] = []
  let expected = from + 1
  for await (const { key } of driver.list(LOG, { ...options, startAfter: recordKey(from) })) {
    const gen = genOf(key, LOG)
    if (gen === undefined) continue
    if (gen !== expected) return undefined
    const bytes = await driver.get(key, options)
    if (bytes === undefined) return undefined
    records.push(decodeRecord(bytes, gen))
    expected++
  }
  return records
}

/** Writes record `record.gen` unless one exists: true if this call wrote it. */
export async function appendRecord(driver: ObjectDriver, record: LogRecord, options?: AbortOptions): Promise<boolean> {
  return driver.put(recordKey(record.gen), encodeRecord(record), { ...options, ifAbsent: true })
}

/**
 * Writes a checkpoint of `state` and prunes what it makes unnecessary: checkpoints but the
 * two newest, and records older than both `keepFrom` and the older kept checkpoint.
 */
export async function writeCheckpoint(driver: ObjectDriver, state: StoreState, keepFrom: number, options?: AbortOptions): Promise<void> {
  await driver.put(checkpointKey(state.gen), encodeCheckpoint(state), { ...options, ifAbsent: true })
  const checkpoints: number[] = []
  for await (const { key } of driver.list(CHECKPOINTS, options)) {
    const gen = genOf(key, CHECKPOINTS)
    if (gen !== undefined) checkpoints.push(gen)
  }
  checkpoints.sort((a, b) => a - b)
  for (const gen of checkpoints.slice(0, -2)) await driver.delete(checkpointKey(gen), options)
  const oldestKept = checkpoints.length >= 2 ? checkpoints.at(-2)! : 0
  const below = Math.min(oldestKept, keepFrom)
  for await (const { key } of driver.list(LOG, options)) {
    const gen = genOf(key, LOG)
    if (gen === undefined || gen > below) break
    await driver.delete(key, options)
  }
}
