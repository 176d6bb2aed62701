/**
 * The structure check of dag-cbor blocks (spec/format.md §5-6, spec/dataset.md), shared by
 * `verify` (maintenance.ts, over a walk) and CAR import (car/import.ts, over the file's blocks):
 * a block that hashes right can still break the spec, and such a block must neither be imported
 * nor verify as whole. Image roots, dataset versions and tree nodes are told by their shape and
 * decoded; a tile row index has no shape of its own, so it is checked against the manifest that
 * lists it (its column count, its format version), and the tile lengths it states are handed to
 * the caller to compare with the tiles. Blocks reached parents first (a walk, a CAR in
 * `car export` order) are checked as they come; a block met before the manifest that lists it is
 * kept until the manifest comes, or until finish().
 */
import { IntegrityError, TesseraError } from '../errors.js'
import { type CID, DAG_CBOR, decodeCbor } from '../format/block.js'
import { levelGeometry } from '../format/grid.js'
import { decodeManifest, decodeTileRow, type TileRowIndex } from '../format/manifest.js'
import { decodeNode, decodeVersion } from './codec.js'
import { seenKey } from './walk.js'

/** A tile row index's statement of one tile's length (format.md §6: `lengths[c]`). */
export interface TileLength {
  readonly tile: CID
  readonly length: number
  /** The row index that states it. */
  readonly row: CID
}

/** What the manifest listing a tile row index expects of it. */
interface RowExpectation {
  readonly columns: number
  readonly version: number
  readonly image: CID
}

/** Checks blocks one at a time; see the module comment. */
export class StructureCheck {
  /** Tile row indexes listed by a manifest and not met yet. */
  readonly #expected = new Map<string, RowExpectation>()
  /** Tile row indexes checked, with the column count they were checked for. */
  readonly #checked = new Map<string, number>()
  /** dag-cbor blocks of no known shape met before any manifest listed them: tile row indexes, maybe. */
  readonly #unplaced = new Map<string, { readonly cid: CID; readonly bytes: Uint8Array }>()

  /**
   * Checks `bytes`, the block `cid` (a raw block is not looked at). Throws IntegrityError.
   * Returns the tile lengths stated by the row indexes it checked (this block, or rows met
   * before their manifest): the caller compares them with the tiles, which it can size.
   */
  block(cid: CID, bytes: Uint8Array): TileLength[] {
    if (cid.code !== DAG_CBOR) return []
    const value = decodeCbor(bytes)
    const shaped = value !== null && typeof value === 'object'
    if (shaped && 'tessera' in value) return this.#manifest(cid, bytes)
    if (shaped && 'tesseraDataset' in value) decodeVersion(bytes)
    else if (shaped && 'level' in value && ('entries' in value || 'children' in value)) decodeNode(bytes)
    else {
      const key = seenKey(cid)
      const expected = this.#expected.get(key)
      if (expected !== undefined) return this.#row(cid, bytes, expected)
      if (!this.#checked.has(key)) this.#unplaced.set(key, { cid, bytes })
    }
    return []
  }

  /**
   * The end of the blocks: any left unplaced are not tile row indexes of a manifest met here
   * (other dag-cbor, or rows of a manifest already checked in the store), and are let go.
   */
  finish(): void {
    this.#unplaced.clear()
    this.#expected.clear()
  }

  #manifest(cid: CID, bytes: Uint8Array): TileLength[] {
    const manifest = decodeManifest(bytes)
    const stated: TileLength[] = []
    for (const level of manifest.levels) {
      const { columns } = levelGeometry(level.width, level.height, manifest.tileSize)
      const expected: RowExpectation = { columns, version: manifest.tessera, image: cid }
      for (const row of level.rows) {
        const key = seenKey(row)
        const checked = this.#checked.get(key)
        if (checked !== undefined) {
          // One row block shared by two images: it must fit both.
          if (checked !== columns) throw new IntegrityError(`Image ${cid}: its tile row ${row} has ${checked} tiles, not ${columns}`)
          continue
        }
        const unplaced = this.#unplaced.get(key)
        if (unplaced === undefined) this.#expected.set(key, expected)
        else {
          this.#unplaced.delete(key)
          stated.push(...this.#row(unplaced.cid, unplaced.bytes, expected))
        }
      }
    }
    return stated
  }

  #row(cid: CID, bytes: Uint8Array, expected: RowExpectation): TileLength[] {
    const key = seenKey(cid)
    let index: TileRowIndex
    try {
      index = decodeTileRow(bytes, expected.columns, expected.version)
    } catch (error) {
      if (!(error instanceof TesseraError)) throw error
      throw new IntegrityError(`Tile row index ${cid} of image ${expected.image} is not valid: ${error.message}`, { cause: error })
    }
    this.#expected.delete(key)
    this.#checked.set(key, expected.columns)
    return index.tiles.map((tile, c) => ({ tile, length: index.lengths[c]!, row: cid }))
  }
}
