/**
 * What a specifier (names.ts: a CID, `NAME`, `NAME/path`, `VERSION-CID/path`) names, decided
 * once for every edge: a whole dataset, the root a CAR starts from, the verifier that checks
 * it, the entries under it, the references removing it drops (spec/dataset.md §5).
 */
import { InvalidArgumentError, NotFoundError } from '../errors.js'
import { type CID, DAG_CBOR, decodeCbor } from '../format/block.js'
import { type VerifyResult, verifyImage } from '../image.js'
import type { AbortOptions, BlockStore } from '../store/interface.js'
import { isVersionValue } from './codec.js'
import {
  type DirectoryItem,
  listDirectory,
  loadVersion,
  type RemoveOptions,
  type ResolvedDataset,
  removeDataset,
  removeEntries,
  resolveSpecifier,
  type VersionRef,
} from './dataset.js'
import { unpin, verifyRoots } from './maintenance.js'
import { parseSpecifier } from './names.js'
import { iterateEntries, NodeCache } from './tree.js'

/** Whether `cid` is a stored dataset version root (else it is taken for an image). */
export async function isDatasetVersion(store: BlockStore, cid: CID, options?: AbortOptions): Promise<boolean> {
  if (cid.code !== DAG_CBOR || !(await store.has(cid, options))) return false
  try {
    return isVersionValue(decodeCbor(await store.get(cid, options)))
  } catch {
    return false
  }
}

/** A whole dataset, named by NAME or version CID; InvalidArgumentError for `NAME/path`. */
export async function resolveDataset(
  store: BlockStore,
  text: string,
  options?: AbortOptions,
): Promise<VersionRef & { readonly name: string | undefined }> {
  const resolved = await resolveSpecifier(store, text, options)
  if (resolved.kind === 'cid') return { cid: resolved.cid, version: await loadVersion(store, resolved.cid, options), name: undefined }
  if (resolved.path !== undefined) throw new InvalidArgumentError(`Expected a dataset (NAME or version CID) but received ${text}`)
  return resolved
}

/**
 * The root block a specifier names (what a CAR of it holds): a CID as is, a dataset's version
 * (NAME, version CID), or an entry's image (`NAME/path`). NotFoundError if it is not stored.
 */
export async function resolveRoot(store: BlockStore, text: string, options?: AbortOptions): Promise<CID> {
  const resolved = await resolveSpecifier(store, text, options)
  const root = resolved.kind === 'cid' || resolved.path === undefined ? resolved.cid : resolved.entry?.image
  if (root === undefined) throw new NotFoundError(`No entry ${JSON.stringify((resolved as ResolvedDataset).path)}`)
  if (!(await store.has(root, options))) throw new NotFoundError(`Block ${root} not found`)
  return root
}

/**
 * Verifies what a specifier names with the verifier that fits it: an image (a CID that is not
 * a dataset version, `NAME/path`) with verifyImage, which checks its tiles against its
 * manifest; a dataset (NAME or version CID, with its history) with verifyRoots.
 */
export async function verifySpecifier(store: BlockStore, text: string, options?: AbortOptions): Promise<VerifyResult> {
  const resolved = await resolveSpecifier(store, text, options)
  if (resolved.kind === 'cid') {
    if (!(await isDatasetVersion(store, resolved.cid, options))) return verifyImage(store, resolved.cid, options)
    return verifyRoots(store, [{ cid: resolved.cid, source: `dataset version ${resolved.cid}` }], options)
  }
  const label = resolved.name ?? resolved.cid.toString()
  if (resolved.entry !== undefined) return verifyImage(store, resolved.entry.image, options)
  if (resolved.path !== undefined) throw new NotFoundError(`No entry ${JSON.stringify(resolved.path)} in dataset ${label}`)
  return verifyRoots(store, [{ cid: resolved.cid, source: `dataset ${label}` }], options)
}

/**
 * What is under (part of) a dataset: the entry its path names, else the entries and
 * subdirectories directly under the path (with `recursive`, every entry under it).
 * NotFoundError for a path that names nothing.
 */
export async function* listEntries(
  store: BlockStore,
  resolved: ResolvedDataset,
  options: AbortOptions & { readonly recursive?: boolean } = {},
): AsyncGenerator<DirectoryItem> {
  let found = false
  if (resolved.entry !== undefined) {
    found = true
    yield { kind: 'entry', entry: resolved.entry }
  } else if (options.recursive === true) {
    const prefix = resolved.path === undefined ? '' : `${resolved.path}/`
    for await (const entry of iterateEntries(new NodeCache(store), resolved.version.entries, { prefix, signal: options.signal })) {
      found = true
      yield { kind: 'entry', entry }
    }
  } else {
    for await (const item of listDirectory(store, resolved.version, resolved.path, options)) {
      found = true
      yield item
    }
  }
  if (!found && resolved.path !== undefined) {
    throw new NotFoundError(`No entry or directory ${JSON.stringify(resolved.path)} in dataset ${resolved.name ?? resolved.cid}`)
  }
}

/** One thing removeSpecifiers did. */
export type Removal =
  | { readonly kind: 'unpinned'; readonly cid: CID }
  | { readonly kind: 'entries'; readonly name: string; readonly removed: readonly string[] }
  | { readonly kind: 'dataset'; readonly name: string; readonly head: CID }

/**
 * Drops what each specifier names: a CID is unpinned (all in one transaction), `NAME/path`
 * removes entries (one new version per dataset; with `recursive` a path may be a directory),
 * NAME removes the dataset. Every specifier is parsed first; yields each removal as it is done.
 */
export async function* removeSpecifiers(store: BlockStore, specs: readonly string[], options: RemoveOptions = {}): AsyncGenerator<Removal> {
  const paths = new Map<string, string[]>()
  const datasets: string[] = []
  const cids: CID[] = []
  for (const spec of specs) {
    const parsed = parseSpecifier(spec)
    if (parsed.kind === 'cid') cids.push(parsed.cid)
    else if (parsed.name === undefined) throw new InvalidArgumentError(`${spec}: name the dataset, not a version CID, to remove entries`)
    else if (parsed.path === undefined) datasets.push(parsed.name)
    else paths.set(parsed.name, [...(paths.get(parsed.name) ?? []), parsed.path])
  }
  if (cids.length > 0) await unpin(store, cids, options)
  for (const cid of cids) yield { kind: 'unpinned', cid }
  for (const [name, list] of paths) yield { kind: 'entries', name, removed: await removeEntries(store, name, list, options) }
  for (const name of datasets) yield { kind: 'dataset', name, head: await removeDataset(store, name, options) }
}
