/**
 * Dedup accounting (`tessera du`, spec/dataset.md §9): how many bytes a set of images would
 * take stored one by one, how many they take together, and why. Reads roots and index
 * blocks, never tiles: a tile's size is in its index block.
 */
import { type CID, decodeCbor } from '../format/block.js'
import { decodeManifest, decodeTileRow } from '../format/manifest.js'
import type { AbortOptions, BlockStore } from '../store/interface.js'
import { listDatasets, type VersionRef } from './dataset.js'
import { iterateEntries, NodeCache, treeNodes } from './tree.js'
import { seenKey } from './walk.js'

/** The figures of `tessera du`. */
export interface Usage {
  /** Images counted: dataset entries (and pins), duplicates included. */
  readonly entries: number
  /** Distinct image roots among them. */
  readonly images: number
  /** Bytes of the source files (dataset entries record them; pins do not). */
  readonly sourceBytes: number
  /** Uncompressed pixel bytes of level 0, summed over entries. */
  readonly pixelBytes: number
  /** Sum over entries of each image's own stored bytes (its distinct blocks): the cost of storing them apart. */
  readonly perImageBytes: number
  /** Bytes of the distinct blocks of all the images: what they take together. */
  readonly uniqueBytes: number
  /** Bytes of the dataset blocks themselves (version roots and entry tree nodes of the heads). */
  readonly indexBytes: number
  /** Tiles summed over entries (every pyramid level), and distinct tiles. */
  readonly tiles: number
  readonly uniqueTiles: number
  /** perImageBytes / uniqueBytes (1 when nothing is shared; 0 when there is nothing). */
  readonly dedupRatio: number
  /** Distinct plain tiles (references included) and their bytes (spec/format.md §7). */
  readonly plainTiles: number
  readonly plainBytes: number
  /** Distinct delta tiles and their bytes (spec/format.md §6.1). */
  readonly deltaTiles: number
  readonly deltaBytes: number
  /**
   * What deltas saved, estimated without decoding: the sum over distinct delta tiles of their
   * reference's bytes less their own (a tile stored plain takes about as many bytes as the
   * plain tile at its place that it differs from a little).
   */
  readonly deltaSavedBytes: number
}

/** A distinct block of an image: its bytes; for a delta tile, its reference's bytes too. */
interface BlockFacts {
  readonly bytes: number
  readonly tile: boolean
  readonly refBytes?: number
}

interface ImageFacts {
  readonly pixelBytes: number
  readonly storedBytes: number
  readonly tiles: number
  /** Distinct blocks of the image, key -> bytes; tiles flagged. */
  readonly blocks: Map<string, BlockFacts>
}

/** Accumulates images (and dataset blocks) into a Usage. */
export class UsageCounter {
  readonly #store: BlockStore
  readonly #images = new Map<string, ImageFacts>()
  readonly #unique = new Map<string, BlockFacts>()
  /** Sizes of reference tiles, which no index block states (store.size once each). */
  readonly #refSizes = new Map<string, number>()
  readonly #index = new Map<string, number>()
  #entries = 0
  #sourceBytes = 0
  #pixelBytes = 0
  #perImageBytes = 0
  #tiles = 0

  constructor(store: BlockStore) {
    this.#store = store
  }

  /** Counts one image (an entry or a pin); `sourceBytes` if known. */
  async addImage(image: CID, sourceBytes: number, options?: AbortOptions): Promise<void> {
    const facts = await this.#facts(image, options)
    this.#entries++
    this.#sourceBytes += sourceBytes
    this.#pixelBytes += facts.pixelBytes
    this.#perImageBytes += facts.storedBytes
    this.#tiles += facts.tiles
  }

  /** Counts every entry and the dataset blocks of a dataset version. */
  async addVersion(ref: VersionRef, options?: AbortOptions): Promise<void> {
    const cache = new NodeCache(this.#store)
    this.#index.set(seenKey(ref.cid), (await this.#store.size(ref.cid, options)) ?? 0)
    for await (const node of treeNodes(cache, ref.version.entries, options)) {
      this.#index.set(seenKey(node), (await this.#store.size(node, options)) ?? 0)
    }
    for await (const entry of iterateEntries(cache, ref.version.entries, { signal: options?.signal })) {
      await this.addImage(entry.image, entry.size, options)
    }
  }

  /** The figures so far. */
  usage(): Usage {
    let uniqueBytes = 0
    let uniqueTiles = 0
    let deltaTiles = 0
    let deltaBytes = 0
    let deltaSavedBytes = 0
    let plainBytes = 0
    for (const block of this.#unique.values()) {
      uniqueBytes += block.bytes
      if (!block.tile) continue
      uniqueTiles++
      if (block.refBytes === undefined) plainBytes += block.bytes
      else {
        deltaTiles++
        deltaBytes += block.bytes
        deltaSavedBytes += Math.max(0, block.refBytes - block.bytes)
      }
    }
    let indexBytes = 0
    for (const bytes of this.#index.values()) indexBytes += bytes
    return {
      entries: this.#entries,
      images: this.#images.size,
      sourceBytes: this.#sourceBytes,
      pixelBytes: this.#pixelBytes,
      perImageBytes: this.#perImageBytes,
      uniqueBytes,
      indexBytes,
      tiles: this.#tiles,
      uniqueTiles,
      dedupRatio: uniqueBytes === 0 ? 0 : this.#perImageBytes / uniqueBytes,
      plainTiles: uniqueTiles - deltaTiles,
      plainBytes,
      deltaTiles,
      deltaBytes,
      deltaSavedBytes,
    }
  }

  async #refSize(ref: CID, options?: AbortOptions): Promise<number> {
    const key = seenKey(ref)
    let size = this.#refSizes.get(key)
    if (size === undefined) {
      size = (await this.#store.size(ref, options)) ?? 0
      this.#refSizes.set(key, size)
    }
    return size
  }

  async #facts(image: CID, options?: AbortOptions): Promise<ImageFacts> {
    const key = seenKey(image)
    const known = this.#images.get(key)
    if (known !== undefined) return known
    const rootBytes = await this.#store.get(image, options)
    const manifest = decodeManifest(rootBytes)
    const blocks = new Map<string, BlockFacts>()
    blocks.set(key, { bytes: rootBytes.length, tile: false })
    if (manifest.metadata.icc !== undefined) {
      blocks.set(seenKey(manifest.metadata.icc), { bytes: (await this.#store.size(manifest.metadata.icc, options)) ?? 0, tile: false })
    }
    let tiles = 0
    for (const level of manifest.levels) {
      const columns = Math.ceil(level.width / manifest.tileSize)
      for (const rowCid of level.rows) {
        const rowBytes = await this.#store.get(rowCid, options)
        blocks.set(seenKey(rowCid), { bytes: rowBytes.length, tile: false })
        const row = decodeTileRow(rowBytes, columns, manifest.tessera)
        tiles += row.tiles.length
        for (const [i, tile] of row.tiles.entries()) {
          const ref = row.refs?.[i] ?? null
          if (ref === null) {
            blocks.set(seenKey(tile), { bytes: row.lengths[i]!, tile: true })
            continue
          }
          // A delta's reference is one of the image's blocks too (format.md §6.1), a plain tile.
          const refBytes = await this.#refSize(ref, options)
          blocks.set(seenKey(tile), { bytes: row.lengths[i]!, tile: true, refBytes })
          blocks.set(seenKey(ref), { bytes: refBytes, tile: true })
        }
      }
    }
    let storedBytes = 0
    for (const [blockKey, block] of blocks) {
      storedBytes += block.bytes
      this.#unique.set(blockKey, block)
    }
    const facts = {
      pixelBytes: manifest.width * manifest.height * manifest.channels * (manifest.bitsPerSample / 8),
      storedBytes,
      tiles,
      blocks,
    }
    // Only the totals are kept per image; the union holds the blocks.
    this.#images.set(key, { ...facts, blocks: new Map() })
    return facts
  }
}

/** Usage of one dataset version (its entries and its own blocks; not its history). */
export async function datasetUsage(store: BlockStore, ref: VersionRef, options?: AbortOptions): Promise<Usage> {
  const counter = new UsageCounter(store)
  await counter.addVersion(ref, options)
  return counter.usage()
}

/** Usage of the whole store: every dataset head, every pinned image, and all of them together. */
export async function storeUsage(
  store: BlockStore,
  options?: AbortOptions,
): Promise<{ datasets: Array<{ name: string; usage: Usage }>; pins: Usage; total: Usage; storedBytes: number }> {
  const total = new UsageCounter(store)
  const datasets: Array<{ name: string; usage: Usage }> = []
  if (typeof store.refs === 'function') {
    for await (const head of listDatasets(store, options)) {
      const one = new UsageCounter(store)
      await one.addVersion(head, options)
      await total.addVersion(head, options)
      datasets.push({ name: head.name, usage: one.usage() })
    }
  }
  const pins = new UsageCounter(store)
  for await (const pin of store.pins(options)) {
    // A pin of something other than an image (a CAR import's root) is not counted.
    if (!isImageRoot(await store.get(pin.cid, options).catch(() => undefined))) continue
    await pins.addImage(pin.cid, 0, options)
    await total.addImage(pin.cid, 0, options)
  }
  return { datasets, pins: pins.usage(), total: total.usage(), storedBytes: await store.storedBytes(options) }
}

function isImageRoot(bytes: Uint8Array | undefined): boolean {
  if (bytes === undefined) return false
  try {
    const value = decodeCbor(bytes)
    return value !== null && typeof value === 'object' && 'tessera' in value
  } catch {
    return false
  }
}
