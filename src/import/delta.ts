/**
 * Delta tiles across the images of one import run (spec/format.md §6.1): for every tile
 * position (image geometry, level, row, column), the last tile stored there, its reference
 * (the last plain tile there) and a few earlier references, so that the next image's tile at
 * that position is stored as the same block, as a delta against one of the references, or
 * plain (becoming the new reference). Depth 1: a reference is always plain.
 *
 * The images of a run are compressed in the run's order, tile row by tile row: image k's row
 * r waits until image k-1 has done its row r (or has finished), so several images decode at
 * once while the choice of references, and so the CIDs, depend only on the order of the
 * images, never on timing.
 */
import type { CID } from '../format/block.js'
import { tileBytes } from '../format/tile-codec.js'
import type { DeltaSlot } from './compress.js'

/** What a delta import keeps of a tile it stored, to store the same content the same way again. */
export interface StoredTileRef {
  readonly cid: CID
  readonly payload: Uint8Array
  /** The reference of a delta; null for a plain tile. */
  readonly ref: ReferenceTile | null
}

/** A plain tile that deltas may reference, with its payload (written again beside each delta that uses it). */
export interface ReferenceTile {
  readonly cid: CID
  readonly payload: Uint8Array
  /** Its size at the probe level (compress.ts, PROBE_LEVEL): what the deltas against it are weighed against. */
  readonly estimate: number
  /** The payload in shared memory, for the workers (made when the tile becomes an earlier reference). */
  shared?: Uint8Array
}

/** One tile position's state: content in shared memory (for the workers), CIDs here. */
export interface PositionState {
  readonly last: Uint8Array
  readonly ref: Uint8Array
  lastTile: StoredTileRef | undefined
  refTile: ReferenceTile | undefined
  /** Earlier references of the position, most recent first (at most DELTA_DEFAULTS.history). */
  history: ReferenceTile[]
}

/** Defaults of delta import. */
export const DELTA_DEFAULTS = {
  /**
   * A delta is stored only when at most this fraction of the plain payload: a tile barely
   * smaller as a delta is better stored plain, where it becomes the reference for the tiles
   * after it (which then differ from their reference less).
   */
  maxRatio: 0.5,
  /**
   * Earlier references of a position also tried when a tile is far from the current one (a
   * window switched back to). Each costs a compression for such tiles only, and its payload's
   * bytes of memory.
   */
  history: 3,
} as const

/** Construction options of a DeltaContext. */
export interface DeltaContextInit {
  /** See DELTA_DEFAULTS.maxRatio. */
  readonly maxRatio?: number
}

/** The state of one import run's delta tiles; see the module comment. */
export class DeltaContext {
  readonly maxRatio: number
  readonly #rows = new Map<string, PositionState[]>()
  #last: DeltaTicket | undefined

  constructor(init: DeltaContextInit = {}) {
    const maxRatio = init.maxRatio ?? DELTA_DEFAULTS.maxRatio
    if (!(maxRatio > 0 && maxRatio <= 1)) throw new RangeError(`Expected a maxRatio in (0, 1] but received ${maxRatio}`)
    this.maxRatio = maxRatio
  }

  /**
   * The next image's place in the run's order. Take tickets in the order the images should
   * reference each other (a dataset import: its files' order), and end each one.
   */
  ticket(): DeltaTicket {
    const ticket = new DeltaTicket(this, this.#last)
    this.#last = ticket
    return ticket
  }

  /** The states of one tile row's positions (created empty). */
  row(key: string, columns: number, shape: { tileSize: number; channels: number; bitsPerSample: 8 | 16 }): PositionState[] {
    let states = this.#rows.get(key)
    if (states === undefined) {
      const bytes = tileBytes(shape)
      states = Array.from({ length: columns }, () => ({
        last: new Uint8Array(new SharedArrayBuffer(bytes)),
        ref: new Uint8Array(new SharedArrayBuffer(bytes)),
        lastTile: undefined,
        refTile: undefined,
        history: [],
      }))
      this.#rows.set(key, states)
    }
    return states
  }

  /** Forgets a row's positions (after a failed compression left their shared content unknown). */
  forget(key: string): void {
    this.#rows.delete(key)
  }
}

/**
 * The worker's view of a position's state, with the references its tile may be a delta
 * against (the position's own, then its earlier ones), and in the same order the reference
 * tiles they are.
 */
export function slotOf(state: PositionState): [DeltaSlot, ReferenceTile[]] {
  const tile = state.refTile
  if (tile === undefined) return [{ last: state.last, hasLast: state.lastTile !== undefined, ref: state.ref, refs: [] }, []]
  const refs = [
    { content: state.ref, length: tile.estimate },
    ...state.history.map((old) => ({ payload: old.shared!, length: old.estimate })),
  ]
  return [{ last: state.last, hasLast: state.lastTile !== undefined, ref: state.ref, refs }, [tile, ...state.history]]
}

/**
 * Makes `tile` the position's reference (its content is already in `state.ref`), the
 * previous one the most recent earlier reference.
 */
export function makeReference(state: PositionState, tile: ReferenceTile, limit: number = DELTA_DEFAULTS.history): void {
  const previous = state.refTile
  state.history = state.history.filter((old) => !old.cid.equals(tile.cid))
  if (previous !== undefined && !previous.cid.equals(tile.cid)) {
    if (previous.shared === undefined) {
      previous.shared = new Uint8Array(new SharedArrayBuffer(previous.payload.length))
      previous.shared.set(previous.payload)
    }
    state.history.unshift(previous)
  }
  state.history.length = Math.min(state.history.length, limit)
  state.refTile = tile
}

/** One image's place in a DeltaContext's order. */
export class DeltaTicket {
  readonly context: DeltaContext
  /** Settles when this image and every one before it have ended. */
  readonly ended: Promise<void>
  #previous: DeltaTicket | undefined
  readonly #rows = new Map<string, { promise: Promise<void>; resolve: () => void }>()
  #end!: () => void

  constructor(context: DeltaContext, previous: DeltaTicket | undefined) {
    this.context = context
    this.#previous = previous
    const own = new Promise<void>((resolve) => {
      this.#end = resolve
    })
    this.ended = previous === undefined ? own : Promise.all([own, previous.ended]).then(() => {})
    // Once the images before have ended, this one no longer waits for them: let them go.
    previous?.ended.then(() => {
      this.#previous = undefined
    })
  }

  /** Waits until the images before this one are done with tile row `key`. */
  async turn(key: string): Promise<void> {
    const previous = this.#previous
    if (previous !== undefined) await Promise.race([previous.#row(key).promise, previous.ended])
  }

  /** This image is done with tile row `key`: the next one may take it. */
  done(key: string): void {
    this.#row(key).resolve()
  }

  /** This image is done (imported, skipped or failed). */
  end(): void {
    this.#end()
  }

  #row(key: string) {
    let row = this.#rows.get(key)
    if (row === undefined) {
      let resolve!: () => void
      const promise = new Promise<void>((r) => {
        resolve = r
      })
      row = { promise, resolve }
      this.#rows.set(key, row)
    }
    return row
  }
}
