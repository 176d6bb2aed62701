/**
 * CAR import (spec/dataset.md §10): every block is verified against its CID as it is read,
 * every dag-cbor block against the format (dataset/structure.ts), and the DAG under each root
 * must be complete (in the CAR or already in the store); only then do the blocks and the roots'
 * names (a pin for an image, the dataset's reference for a dataset version) become visible, in
 * one transaction. Any problem rejects the whole file and leaves the store as it was.
 */
import { CarBlockIterator } from '@ipld/car/iterator'
import { decodeVersion, isVersionValue } from '../dataset/codec.js'
import { withDatasetLock } from '../dataset/dataset.js'
import { assertDatasetName, datasetRef } from '../dataset/names.js'
import { StructureCheck, type TileLength } from '../dataset/structure.js'
import { IDENTITY, linksOf, seenKey } from '../dataset/walk.js'
import { CorruptInputError, IntegrityError, InvalidArgumentError, LimitError, TesseraError } from '../errors.js'
import { type CID, DAG_CBOR, decodeCbor, MAX_BLOCK_BYTES, verifyBlock } from '../format/block.js'
import { decodeManifest } from '../format/manifest.js'
import type { AbortOptions, BlockStore } from '../store/interface.js'

/** Options of importCar. */
export interface CarImportOptions extends AbortOptions {
  /** Name for a dataset root (default: the name recorded in its version). */
  readonly name?: string
  /** Label of the pin for an image (or other) root (default: the image's source name, else `car import`). */
  readonly label?: string
}

/** A root of an imported CAR and what names it now. */
export interface ImportedRoot {
  readonly cid: CID
  readonly kind: 'image' | 'dataset' | 'block'
  /** The dataset name, or the pin label. */
  readonly name: string
}

/** What an import did. */
export interface CarImportResult {
  readonly roots: ImportedRoot[]
  /** Blocks in the CAR, and those not already stored (with their bytes). */
  readonly blocks: number
  readonly newBlocks: number
  readonly newBytes: number
}

/** Imports a CAR (v1, or v2 with its CARv1 payload) from `source`; see the module comment. */
export async function importCar(
  store: BlockStore,
  source: AsyncIterable<Uint8Array>,
  options: CarImportOptions = {},
): Promise<CarImportResult> {
  if (options.name !== undefined) assertDatasetName(options.name)
  let reader: CarBlockIterator
  let roots: CID[]
  try {
    reader = await CarBlockIterator.fromIterable(source)
    roots = await reader.getRoots()
  } catch (cause) {
    throw new CorruptInputError(`Not a CAR file: ${(cause as Error).message}`, { cause })
  }
  if (roots.length === 0) throw new CorruptInputError('The CAR names no root: nothing would keep its blocks')
  const writer = await store.begin(options)
  try {
    // Blocks of the CAR by key, with their lengths.
    const present = new Map<string, number>()
    // Tile lengths the row indexes state, for tiles not met yet (in `car export` order, the
    // current row's): checked as each tile comes, the rest against the store at the end.
    const stated = new Map<string, TileLength>()
    // Strong links (spec/dataset.md §8) seen so far, with the block that holds them.
    const needed = new Map<string, { cid: CID; from: CID }>()
    const rootKeys = new Set(roots.map(seenKey))
    const rootBlocks = new Map<string, Uint8Array>()
    let blocks = 0
    let newBlocks = 0
    // Blocks that hash right may still break the format: they are refused before anything commits.
    const structure = new StructureCheck()
    const iterator = reader[Symbol.asyncIterator]()
    for (;;) {
      let next: IteratorResult<{ cid: CID; bytes: Uint8Array }>
      try {
        next = await iterator.next()
      } catch (cause) {
        throw new CorruptInputError(`The CAR is truncated or malformed after ${blocks} blocks: ${(cause as Error).message}`, { cause })
      }
      if (next.done === true) break
      options.signal?.throwIfAborted()
      const { cid, bytes } = next.value
      blocks++
      if (bytes.length > MAX_BLOCK_BYTES)
        throw new LimitError(`Block ${cid} of ${bytes.length} bytes exceeds the ${MAX_BLOCK_BYTES}-byte block limit`)
      verifyBlock(cid, bytes)
      let statements: TileLength[]
      try {
        statements = structure.block(cid, bytes)
      } catch (cause) {
        if (!(cause instanceof TesseraError)) throw cause
        throw new IntegrityError(`The CAR's block ${cid} breaks the format: ${cause.message}`, { cause })
      }
      for (const statement of statements) {
        const key = seenKey(statement.tile)
        const size = present.get(key)
        if (size !== undefined) {
          if (size !== statement.length) throw lengthMismatch(statement, size)
          continue
        }
        const earlier = stated.get(key)
        if (earlier !== undefined && earlier.length !== statement.length) throw lengthMismatch(statement, earlier.length, earlier.row)
        stated.set(key, statement)
      }
      const key = seenKey(cid)
      const waiting = stated.get(key)
      if (waiting !== undefined) {
        if (waiting.length !== bytes.length) throw lengthMismatch(waiting, bytes.length)
        stated.delete(key)
      }
      present.set(key, bytes.length)
      if (rootKeys.has(key)) rootBlocks.set(key, bytes)
      if (cid.code === DAG_CBOR) {
        for (const link of linksOf(decodeCbor(bytes))) {
          if (!link.weak) needed.set(seenKey(link.cid), { cid: link.cid, from: cid })
        }
      }
      if (await writer.put(cid, bytes, options)) newBlocks++
    }
    structure.finish()
    for (const statement of stated.values()) {
      const size = await store.size(statement.tile, options)
      // An absent tile is the completeness check's to report.
      if (size !== undefined && size !== statement.length) throw lengthMismatch(statement, size)
    }
    for (const [key, { cid, from }] of needed) {
      if (present.has(key) || cid.multihash.code === IDENTITY) continue
      if (!(await store.has(cid, options))) {
        throw new IntegrityError(`The CAR is incomplete: block ${cid}, linked from ${from}, is neither in it nor in the store`)
      }
    }
    const named: ImportedRoot[] = []
    const datasets: Array<{ name: string; cid: CID }> = []
    for (const root of roots) {
      const bytes = rootBlocks.get(seenKey(root)) ?? (await store.get(root, options).catch(() => undefined))
      if (bytes === undefined) throw new IntegrityError(`The CAR's root ${root} is neither in it nor in the store`)
      const kind = rootKind(root, bytes)
      if (kind.kind === 'dataset') {
        const name = options.name ?? kind.name
        assertDatasetName(name)
        datasets.push({ name, cid: root })
        named.push({ cid: root, kind: 'dataset', name })
      } else {
        const label = options.label ?? kind.label ?? 'car import'
        writer.pin(root, label)
        named.push({ cid: root, kind: kind.kind, name: label })
      }
    }
    if (options.name !== undefined && datasets.length !== 1) {
      throw new InvalidArgumentError(`A dataset name was given, but the CAR has ${datasets.length} dataset roots`)
    }
    const commit = async () => {
      for (const { name, cid } of datasets) {
        const head = typeof store.ref === 'function' ? await store.ref(datasetRef(name), options) : undefined
        if (head !== undefined && !head.equals(cid)) {
          throw new InvalidArgumentError(`Dataset ${name} already exists with another head (${head}): import it under another name`)
        }
        writer.setRef(datasetRef(name), cid)
      }
      await writer.commit(options)
    }
    // A dataset's reference changes under the dataset's lock, as every dataset update does.
    const locked = datasets.reduce<() => Promise<void>>(
      (run, { name }) =>
        () =>
          withDatasetLock(store, name, run),
      commit,
    )
    await locked()
    return { roots: named, blocks, newBlocks, newBytes: writer.newBytes }
  } catch (error) {
    await writer.abort()
    throw error
  }
}

/** A row index's stated tile length that the tile (or another row index) contradicts. */
function lengthMismatch(statement: TileLength, actual: number, otherRow?: CID): IntegrityError {
  const what = otherRow === undefined ? `the tile has ${actual}` : `row index ${otherRow} states ${actual}`
  return new IntegrityError(`Row index ${statement.row} states ${statement.length} bytes for tile ${statement.tile}, but ${what}`)
}

function rootKind(cid: CID, bytes: Uint8Array): { kind: 'dataset'; name: string } | { kind: 'image' | 'block'; label?: string } {
  if (cid.code !== DAG_CBOR) return { kind: 'block' }
  const value = decodeCbor(bytes)
  if (isVersionValue(value)) return { kind: 'dataset', name: decodeVersion(bytes).name }
  if (value !== null && typeof value === 'object' && 'tessera' in value) {
    const manifest = decodeManifest(bytes)
    return { kind: 'image', ...(manifest.metadata.source?.name === undefined ? {} : { label: manifest.metadata.source.name }) }
  }
  return { kind: 'block' }
}
