/**
 * Datasets over a block store (spec/dataset.md): heads held by store references
 * `dataset/NAME`, versions linked by `previous`, commits, removal, history pruning, and
 * name resolution (`NAME/path` -> image CID).
 */
import { ConflictError, InvalidArgumentError, InvalidCidError, NotFoundError } from '../errors.js'
import { type Block, type CID, DAG_CBOR } from '../format/block.js'
import type { AbortOptions, BlockStore, BlockWriter, Ref, RefsOptions } from '../store/interface.js'
import { DATASET_FORMAT, decodeVersion, encodeVersion } from './codec.js'
import type { DatasetEntry, DatasetVersion } from './interface.js'
import { assertDatasetName, assertEntryName, compareNames, DATASET_REF_PREFIX, datasetRef, parseSpecifier } from './names.js'
import { getEntry, iterateEntries, NodeCache, type TreeChange, updateTree } from './tree.js'

/** A store with named references, which datasets need (both Tessera backends have them). */
export type RefStore = BlockStore & {
  ref(name: string, options?: AbortOptions): Promise<CID | undefined>
  refs(options?: RefsOptions): AsyncIterable<Ref>
}

/** `store` as a RefStore; InvalidArgumentError if it has no references. */
export function refStore(store: BlockStore): RefStore {
  if (typeof store.ref !== 'function' || typeof store.refs !== 'function') {
    throw new InvalidArgumentError('This block store has no named references, which datasets need')
  }
  return store as RefStore
}

/** A dataset version with its root CID. */
export interface VersionRef {
  readonly cid: CID
  readonly version: DatasetVersion
}

/** A dataset's current version. */
export interface DatasetHead extends VersionRef {
  readonly name: string
}

/** Reads and validates the version root `cid`. */
export async function loadVersion(store: BlockStore, cid: CID, options?: AbortOptions): Promise<DatasetVersion> {
  if (cid.code !== DAG_CBOR) throw new InvalidCidError(`${cid} is not a dataset version (expected a dag-cbor CID)`)
  return decodeVersion(await store.get(cid, options))
}

/** The head of dataset `name`, or undefined if there is no such dataset. */
export async function datasetHead(store: BlockStore, name: string, options?: AbortOptions): Promise<DatasetHead | undefined> {
  assertDatasetName(name)
  const cid = await refStore(store).ref(datasetRef(name), options)
  if (cid === undefined) return undefined
  return { name, cid, version: await loadVersion(store, cid, options) }
}

/** Every dataset, by name. */
export async function* listDatasets(store: BlockStore, options?: AbortOptions): AsyncGenerator<DatasetHead> {
  for await (const ref of refStore(store).refs({ prefix: DATASET_REF_PREFIX, signal: options?.signal })) {
    const name = ref.name.slice(DATASET_REF_PREFIX.length)
    yield { name, cid: ref.cid, version: await loadVersion(store, ref.cid, options) }
  }
}

/** The versions from `head` back through `previous`, newest first. */
export async function* history(store: BlockStore, head: CID, options?: AbortOptions): AsyncGenerator<VersionRef> {
  let cid: CID | undefined = head
  while (cid !== undefined) {
    options?.signal?.throwIfAborted()
    const version = await loadVersion(store, cid, options)
    yield { cid, version }
    cid = version.previous
  }
}

// Updates of one dataset within one process are serialized; across processes, each commit
// compares and swaps the dataset's reference, and a loser looks again (retrying).
const locks = new WeakMap<object, Map<string, Promise<unknown>>>()

/** Runs `fn` with no other update of dataset `name` in `store` running in this process. */
export async function withDatasetLock<T>(store: BlockStore, name: string, fn: () => Promise<T>): Promise<T> {
  let held = locks.get(store)
  if (held === undefined) {
    held = new Map()
    locks.set(store, held)
  }
  const before = held.get(name) ?? Promise.resolve()
  const run = before.catch(() => {}).then(fn)
  held.set(name, run)
  try {
    return await run
  } finally {
    if (held.get(name) === run) held.delete(name)
  }
}

/** Options of stageVersion. */
export interface StageOptions extends AbortOptions {
  /** What made the version (log). */
  readonly note: string
  /** An import's intermediate version, which the next version replaces (default false). */
  readonly checkpoint?: boolean
  /** Commit time (default now). */
  readonly time?: number
}

/**
 * Writes, through `writer`, the version of dataset `name` that applies `changes` (sorted by
 * name, one per name) to `current`, and points the dataset's reference at it: visible when
 * the writer commits. A version that follows a checkpoint replaces it: its `previous` is the
 * checkpoint's (spec/dataset.md §4.2).
 */
export async function stageVersion(
  store: BlockStore,
  writer: BlockWriter,
  name: string,
  current: VersionRef | undefined,
  changes: readonly TreeChange[],
  options: StageOptions,
): Promise<VersionRef> {
  assertDatasetName(name)
  const put = async (block: Block) => {
    await writer.put(block.cid, block.bytes, options)
  }
  const tree = await updateTree(new NodeCache(store), current?.version.entries, changes, put, options)
  const previous = current === undefined ? undefined : current.version.checkpoint === true ? current.version.previous : current.cid
  const version: DatasetVersion = {
    tesseraDataset: DATASET_FORMAT,
    name,
    count: tree.count,
    ...(tree.root === undefined ? {} : { entries: tree.root }),
    ...(previous === undefined ? {} : { previous }),
    time: options.time ?? Date.now(),
    note: options.note,
    ...(options.checkpoint === true ? { checkpoint: true as const } : {}),
  }
  const root = encodeVersion(version)
  await writer.put(root.cid, root.bytes, options)
  // Compare-and-swap: committed only if the head is still the one these changes apply to.
  writer.setRef(datasetRef(name), root.cid, current?.cid ?? null)
  return { cid: root.cid, version }
}

/** How long a writer keeps looking again at a dataset other processes keep moving before giving up. */
const RETRY_MS = 120_000

/**
 * Runs `attempt` until it commits without a conflict: when another process moved the
 * dataset's head meanwhile (ERR_CONFLICT), it runs again on a fresh view, after a random pause
 * that grows with each attempt (exponential backoff with full jitter: writers that collided
 * spread out), for up to RETRY_MS. Every conflict means another writer's commit succeeded, so
 * writers as a whole always progress.
 */
export async function retryOnConflict<T>(attempt: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + RETRY_MS
  for (let i = 0; ; i++) {
    try {
      return await attempt()
    } catch (error) {
      if (!(error instanceof ConflictError) || error.reason !== 'reference' || Date.now() >= deadline) throw error
      await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(2000, 10 * 2 ** i)))
    }
  }
}

/**
 * Stages `changes` onto `current` through `writer` and commits; when another writer moved
 * the head meanwhile, stages them again onto the new head (the transaction stays open).
 */
export async function commitVersion(
  store: BlockStore,
  writer: BlockWriter,
  name: string,
  current: VersionRef | undefined,
  changes: readonly TreeChange[],
  options: StageOptions,
): Promise<VersionRef> {
  let base = current
  return retryOnConflict(async () => {
    try {
      const staged = await stageVersion(store, writer, name, base, changes, options)
      await writer.commit(options)
      return staged
    } catch (error) {
      if (error instanceof ConflictError) base = await datasetHead(store, name, options)
      throw error
    }
  })
}

/** Commits one new version of `name` applying `changes`; returns it (and the head it replaced). */
export async function commitChanges(
  store: BlockStore,
  name: string,
  changes: (current: DatasetHead | undefined) => Promise<readonly TreeChange[]>,
  options: StageOptions,
): Promise<{ before: DatasetHead | undefined; after: VersionRef | undefined }> {
  return withDatasetLock(store, name, () =>
    retryOnConflict(async () => {
      const before = await datasetHead(store, name, options)
      const list = await changes(before)
      if (list.length === 0) return { before, after: undefined }
      const writer = await store.begin(options)
      try {
        const after = await stageVersion(store, writer, name, before, list, options)
        await writer.commit(options)
        return { before, after }
      } finally {
        await writer.abort()
      }
    }),
  )
}

/** Options of removeEntries. */
export interface RemoveOptions extends AbortOptions {
  /** Also remove every entry under a directory name (default false: exact entries only). */
  readonly recursive?: boolean
}

/**
 * Removes entries from dataset `name` in one new version. Each path names an entry, or with
 * `recursive` a directory (every entry under `path/`). NotFoundError if a path matches
 * nothing; nothing is removed then. Returns the names removed.
 */
export async function removeEntries(
  store: BlockStore,
  name: string,
  paths: readonly string[],
  options: RemoveOptions = {},
): Promise<string[]> {
  for (const path of paths) assertEntryName(path)
  let removed: string[] = []
  await commitChanges(
    store,
    name,
    async (head) => {
      if (head === undefined) throw new NotFoundError(`No dataset named ${name}`)
      const cache = new NodeCache(store)
      const names = new Set<string>()
      for (const path of paths) {
        const before = names.size
        if ((await getEntry(cache, head.version.entries, path, options)) !== undefined) names.add(path)
        else if (options.recursive === true) {
          for await (const entry of iterateEntries(cache, head.version.entries, { prefix: `${path}/`, signal: options.signal })) {
            names.add(entry.name)
          }
        }
        if (names.size === before) {
          const hint = options.recursive === true ? '' : ' (a directory needs --recursive)'
          throw new NotFoundError(`No entry ${JSON.stringify(path)} in dataset ${name}${hint}`)
        }
      }
      removed = [...names].sort(compareNames)
      return removed.map((entry) => ({ name: entry, entry: undefined }))
    },
    { ...options, note: `rm ${paths.join(' ')}`.slice(0, 1000) },
  )
  return removed
}

/** Drops dataset `name` (its reference; its blocks become garbage unless reachable otherwise). */
export async function removeDataset(store: BlockStore, name: string, options?: AbortOptions): Promise<CID> {
  return withDatasetLock(store, name, () =>
    retryOnConflict(async () => {
      const head = await datasetHead(store, name, options)
      if (head === undefined) throw new NotFoundError(`No dataset named ${name}`)
      const writer = await store.begin(options)
      try {
        writer.setRef(datasetRef(name), undefined, head.cid)
        await writer.commit(options)
      } finally {
        await writer.abort()
      }
      return head.cid
    }),
  )
}

/**
 * Keeps only the newest `keep` versions of dataset `name`: they are rewritten (new CIDs) with
 * the oldest kept one having no `previous`, so older versions become garbage. Returns the new
 * head and how many versions were dropped (0: nothing to do, the head is unchanged).
 */
export async function pruneHistory(
  store: BlockStore,
  name: string,
  keep: number,
  options?: AbortOptions,
): Promise<{ head: CID; dropped: number }> {
  if (!Number.isInteger(keep) || keep < 1) throw new InvalidArgumentError(`Expected to keep at least 1 version but received ${keep}`)
  return withDatasetLock(store, name, () =>
    retryOnConflict(async () => {
      const head = await datasetHead(store, name, options)
      if (head === undefined) throw new NotFoundError(`No dataset named ${name}`)
      const kept: DatasetVersion[] = []
      let dropped = 0
      for await (const { version } of history(store, head.cid, options)) {
        if (kept.length < keep) kept.push(version)
        else dropped++
      }
      if (dropped === 0) return { head: head.cid, dropped: 0 }
      const writer = await store.begin(options)
      try {
        let previous: CID | undefined
        for (const version of kept.reverse()) {
          const { previous: _, ...rest } = version
          const block = encodeVersion(previous === undefined ? rest : { ...rest, previous })
          await writer.put(block.cid, block.bytes, options)
          previous = block.cid
        }
        writer.setRef(datasetRef(name), previous, head.cid)
        await writer.commit(options)
        return { head: previous!, dropped }
      } finally {
        await writer.abort()
      }
    }),
  )
}

/** A dataset (or one of its entries or directories) a specifier names. */
export interface ResolvedDataset extends VersionRef {
  /** The dataset's name, undefined when the version was named by its CID. */
  readonly name: string | undefined
  /** The entry name or directory given after the slash. */
  readonly path: string | undefined
  /** The entry `path` names, if it names one. */
  readonly entry: DatasetEntry | undefined
}

/** What a specifier resolves to: an image or other block by CID, or (part of) a dataset. */
export type Resolved = { readonly kind: 'cid'; readonly cid: CID } | ({ readonly kind: 'dataset' } & ResolvedDataset)

/**
 * Resolves a specifier (names.ts): a CID, `NAME`, `NAME/path` or `VERSION-CID/path`.
 * NotFoundError for an unknown dataset; a bare word that is neither a CID nor an existing
 * dataset fails as a CID does (ERR_INVALID_CID).
 */
export async function resolveSpecifier(store: BlockStore, text: string, options?: AbortOptions): Promise<Resolved> {
  const spec = parseSpecifier(text)
  if (spec.kind === 'cid') return spec
  let ref: VersionRef
  if (spec.version !== undefined) {
    ref = { cid: spec.version, version: await loadVersion(store, spec.version, options) }
  } else {
    const head = typeof store.ref === 'function' ? await datasetHead(store, spec.name!, options) : undefined
    if (head === undefined) {
      if (spec.path === undefined) throw new InvalidCidError(`${JSON.stringify(text)} is neither a CID nor the name of a dataset`)
      throw new NotFoundError(`No dataset named ${spec.name}`)
    }
    ref = head
  }
  const entry = spec.path === undefined ? undefined : await getEntry(new NodeCache(store), ref.version.entries, spec.path, options)
  return { kind: 'dataset', ...ref, name: spec.name, path: spec.path, entry }
}

/**
 * The image CID a specifier names: a CID as is, or the image of entry `NAME/path`.
 * InvalidArgumentError for a whole dataset or a directory; NotFoundError for a missing entry.
 */
export async function resolveImage(store: BlockStore, text: string, options?: AbortOptions): Promise<CID> {
  const resolved = await resolveSpecifier(store, text, options)
  if (resolved.kind === 'cid') return resolved.cid
  if (resolved.entry !== undefined) return resolved.entry.image
  const label = resolved.name ?? resolved.cid.toString()
  if (resolved.path === undefined) throw new InvalidArgumentError(`${label} is a dataset: name one of its images, ${label}/path`)
  for await (const _ of iterateEntries(new NodeCache(store), resolved.version.entries, { prefix: `${resolved.path}/` })) {
    throw new InvalidArgumentError(`${label}/${resolved.path} is a directory: name one of its images`)
  }
  throw new NotFoundError(`No entry ${JSON.stringify(resolved.path)} in dataset ${label}`)
}

/** One line of a directory listing: an entry, or a subdirectory with its number of entries. */
export type DirectoryItem =
  | { readonly kind: 'entry'; readonly entry: DatasetEntry }
  | { readonly kind: 'directory'; readonly name: string; readonly count: number }

/** The entries and subdirectories directly under `path` ('' or undefined: the top). */
export async function* listDirectory(
  store: BlockStore,
  version: DatasetVersion,
  path: string | undefined,
  options?: AbortOptions,
): AsyncGenerator<DirectoryItem> {
  const prefix = path === undefined || path === '' ? '' : `${path}/`
  let directory: { name: string; count: number } | undefined
  for await (const entry of iterateEntries(new NodeCache(store), version.entries, { prefix, signal: options?.signal })) {
    const rest = entry.name.slice(prefix.length)
    const slash = rest.indexOf('/')
    if (slash < 0) {
      if (directory !== undefined) yield { kind: 'directory', ...directory }
      directory = undefined
      yield { kind: 'entry', entry }
      continue
    }
    const name = prefix + rest.slice(0, slash)
    if (directory?.name === name) directory.count++
    else {
      if (directory !== undefined) yield { kind: 'directory', ...directory }
      directory = { name, count: 1 }
    }
  }
  if (directory !== undefined) yield { kind: 'directory', ...directory }
}
