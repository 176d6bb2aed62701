/**
 * The crop hot path after zstd: undo TIFF Predictor 2 (TIFF 6.0 section 14; see predictor.ts)
 * for the rows and columns a crop needs and copy them to the output band. Two implementations
 * of one contract:
 *
 * - WebAssembly SIMD128 (unpredict.c, embedded as unpredict-wasm.ts), used when both the tile
 *   and the output are views of the scratch memory `unpredictScratch` hands out: wasm sees
 *   only its own memory. Decompress straight into `scratch.tile` and copy `scratch.out` away
 *   once per band. One pass that only reads the tile: ~0.07-0.18 ns per output sample, ~20x
 *   the JS loops.
 * - Plain JS for every other buffer, and for layouts the wasm has no loop for (channels
 *   outside 1..4): per RGB crop as fast as decodePredictorRows + out.set (within 5%), faster
 *   for 16-bit samples and other channel counts.
 *
 * bench/unpredict.ts measures both against decodePredictorRows + out.set.
 */
import { UNPREDICT_WASM_BASE64 } from './unpredict-wasm.js'

/** What to undo and copy: rows and columns of one tile, and where they go in `out`. */
export interface UnpredictOptions {
  readonly tileSize: number
  readonly channels: number
  readonly bitsPerSample: 8 | 16
  /** TIFF Predictor: 1 = none (copy only), 2 = horizontal differencing. */
  readonly predictor: 1 | 2
  /** First tile row to copy, and how many. */
  readonly firstRow: number
  readonly rowCount: number
  /** First pixel column inside the tile, and how many pixels per row. */
  readonly tileX: number
  readonly width: number
  /** Byte offset in `out` of the first row's first pixel, and bytes from one row to the next. */
  readonly outOffset: number
  readonly outStride: number
}

/** Views of process-wide WebAssembly memory for one band: see `unpredictScratch`. */
export interface UnpredictScratch {
  /** Exactly the requested tile bytes; decompress into it. */
  readonly tile: Uint8Array
  /** Exactly the requested output bytes; not cleared between calls. */
  readonly out: Uint8Array
}

/** Readable bytes the wasm loops may load past the end of a tile (never written). */
const SLACK = 64
/** Largest tile + output scratch handed out; bigger bands use the JS path (wasm memory never shrinks). */
const MAX_SCRATCH_BYTES = 64 * 2 ** 20

/**
 * The little of the WebAssembly JS API used here: the tsconfig has no "dom" lib, and
 * @types/node 20 does not declare it.
 */
interface WasmApi {
  validate(bytes: Uint8Array): boolean
  Module: new (bytes: Uint8Array) => object
  Instance: new (module: object) => { readonly exports: Record<string, unknown> }
}

interface Kernel {
  readonly memory: { readonly buffer: ArrayBuffer; grow(pages: number): number }
  readonly heapBase: number
  readonly unpredict: (...args: number[]) => number
}

/** The instantiated wasm, or undefined where WebAssembly or SIMD128 is unavailable. */
const kernel: Kernel | undefined = instantiate()

function instantiate(): Kernel | undefined {
  const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly
  if (wasm === undefined) return undefined
  const bytes = Buffer.from(UNPREDICT_WASM_BASE64, 'base64')
  if (!wasm.validate(bytes)) return undefined
  // Synchronous: the module is 8 KB, and callers need the kernel without awaiting.
  const { exports } = new wasm.Instance(new wasm.Module(bytes))
  return {
    memory: exports.memory as Kernel['memory'],
    heapBase: (exports.__heap_base as { value: number }).value,
    unpredict: exports.unpredict as Kernel['unpredict'],
  }
}

let scratch: UnpredictScratch | undefined

/**
 * Views of WebAssembly memory for one tile and one output band, for `unpredictCopy` to run
 * in SIMD; undefined if wasm is unavailable or the two exceed 64 MiB (use ordinary buffers).
 * The memory is shared by every caller in the process and a later call may move it, so use
 * the views synchronously (decompress, unpredictCopy, copy `out` away, with no await between)
 * and do not keep them.
 */
export function unpredictScratch(tileBytes: number, outBytes: number): UnpredictScratch | undefined {
  if (kernel === undefined) return undefined
  const current = scratch
  if (current !== undefined && current.tile.length === tileBytes && current.out.length === outBytes) {
    if (current.tile.buffer === kernel.memory.buffer) return current
  }
  if (tileBytes + outBytes > MAX_SCRATCH_BYTES) return undefined
  const tileAt = align(kernel.heapBase, 64)
  const outAt = align(tileAt + tileBytes + SLACK, 64)
  const end = outAt + outBytes
  const have = kernel.memory.buffer.byteLength
  if (end > have) kernel.memory.grow(Math.ceil((end - have) / 65536))
  const buffer = kernel.memory.buffer
  scratch = { tile: new Uint8Array(buffer, tileAt, tileBytes), out: new Uint8Array(buffer, outAt, outBytes) }
  return scratch
}

/**
 * For rows firstRow..firstRow+rowCount-1 of a decoded tile (tileSize x tileSize pixels of
 * `channels` samples, 16-bit ones little-endian), undoes Predictor 2 when `predictor` is 2 and
 * copies pixels [tileX, tileX+width) of each row to `out` from byte `outOffset`, advancing
 * `outStride` bytes per row. SIMD, which only reads the tile, when both buffers come from
 * `unpredictScratch` and channels are 1 to 4; plain JS otherwise, which undoes the copied
 * columns in place (decompress again before another call on the same rows). `out` receives
 * the same bytes either way.
 */
export function unpredictCopy(tile: Uint8Array, out: Uint8Array, options: UnpredictOptions): void {
  const { tileSize, channels, bitsPerSample, predictor, firstRow, rowCount, tileX, width, outOffset, outStride } = options
  const pixel = channels * (bitsPerSample >> 3)
  const rowBytes = tileSize * pixel
  const bytes = width * pixel
  if (rowCount <= 0 || width <= 0) return
  // Cheap guards: typed arrays drop out-of-range writes silently, and wasm would write over
  // its other scratch.
  if (
    !(firstRow >= 0 && tileX >= 0 && firstRow + rowCount <= tileSize && tileX + width <= tileSize) ||
    tile.length < tileSize * rowBytes ||
    outOffset < 0 ||
    outStride < bytes ||
    outOffset + (rowCount - 1) * outStride + bytes > out.length
  ) {
    throw new RangeError(`unpredictCopy: rows ${firstRow}+${rowCount}, columns ${tileX}+${width} or output range out of bounds`)
  }
  if (
    kernel !== undefined &&
    channels <= 4 &&
    tile.buffer === kernel.memory.buffer &&
    out.buffer === kernel.memory.buffer &&
    tile.byteOffset + tile.length + SLACK <= tile.buffer.byteLength
  ) {
    const status = kernel.unpredict(
      tile.byteOffset,
      out.byteOffset + outOffset,
      tileSize,
      channels,
      bitsPerSample >> 3,
      predictor,
      firstRow,
      rowCount,
      tileX,
      width,
      outStride,
    )
    if (status === 0) return
  }
  // The JS path: undo the predictor in place for the copied columns only (the columns left of
  // them are just summed), then copy each row. Writing the sums straight into `out` measured
  // ~10% slower: strided byte stores into a fresh band cost more than a memcpy per row.
  const row = firstRow * rowBytes
  if (predictor === 2) {
    if (bitsPerSample === 8) {
      if (channels === 3) rows8x3(tile, row, rowBytes, rowCount, tileX * 3, bytes)
      else if (channels === 1) rows8x1(tile, row, rowBytes, rowCount, tileX, bytes)
      else rows(tile, channels, row, rowBytes, rowCount, tileX * channels, bytes)
    } else if (tile.byteOffset % 2 === 0) {
      const tile16 = new Uint16Array(tile.buffer, tile.byteOffset, tile.length >> 1)
      rows(tile16, channels, row >> 1, rowBytes >> 1, rowCount, tileX * channels, bytes >> 1)
    } else {
      rows16Bytes(tile, channels, row, rowBytes, rowCount, tileX * pixel, bytes)
    }
  }
  for (let r = 0, s = row + tileX * pixel, d = outOffset; r < rowCount; r++, s += rowBytes, d += outStride) {
    out.set(tile.subarray(s, s + bytes), d)
  }
}

function align(n: number, to: number): number {
  return Math.ceil(n / to) * to
}

// The JS loops, in place. Running sums are int32 (`| 0` lets V8 drop its overflow checks,
// ~15% faster) and never masked: a typed-array store keeps the low 8 or 16 bits, which
// wrap-around leaves exact. `row` is the first tile row's first sample, `left` the samples
// summed but not undone, `count` the samples undone per row.

function rows8x3(tile: Uint8Array, row: number, rowLength: number, rowCount: number, left: number, count: number): void {
  for (let r = 0; r < rowCount; r++, row += rowLength) {
    let a = 0
    let b = 0
    let c = 0
    let s = row
    for (const end = row + left; s < end; s = (s + 3) | 0) {
      a = (a + tile[s]!) | 0
      b = (b + tile[s + 1]!) | 0
      c = (c + tile[s + 2]!) | 0
    }
    for (const end = s + count; s < end; s = (s + 3) | 0) {
      a = (a + tile[s]!) | 0
      b = (b + tile[s + 1]!) | 0
      c = (c + tile[s + 2]!) | 0
      tile[s] = a
      tile[s + 1] = b
      tile[s + 2] = c
    }
  }
}

function rows8x1(tile: Uint8Array, row: number, rowLength: number, rowCount: number, left: number, count: number): void {
  for (let r = 0; r < rowCount; r++, row += rowLength) {
    let a = 0
    let s = row
    for (const end = row + left; s < end; s = (s + 1) | 0) a = (a + tile[s]!) | 0
    for (const end = s + count; s < end; s = (s + 1) | 0) {
      a = (a + tile[s]!) | 0
      tile[s] = a
    }
  }
}

/** Any channel count, 8-bit samples or (on a uint16 view) 16-bit ones: one channel at a time. */
function rows(
  tile: Uint8Array | Uint16Array,
  channels: number,
  row: number,
  rowLength: number,
  rowCount: number,
  left: number,
  count: number,
): void {
  for (let r = 0; r < rowCount; r++, row += rowLength) {
    for (let ch = 0; ch < channels; ch++) {
      let a = 0
      let s = row + ch
      for (const end = row + left; s < end; s = (s + channels) | 0) a = (a + tile[s]!) | 0
      for (const end = row + left + count; s < end; s = (s + channels) | 0) {
        a = (a + tile[s]!) | 0
        tile[s] = a
      }
    }
  }
}

/** 16-bit little-endian samples at odd byte offsets, byte by byte. */
function rows16Bytes(
  tile: Uint8Array,
  channels: number,
  row: number,
  rowBytes: number,
  rowCount: number,
  left: number,
  bytes: number,
): void {
  const step = channels * 2
  for (let r = 0; r < rowCount; r++, row += rowBytes) {
    for (let ch = 0; ch < channels; ch++) {
      let a = 0
      let s = row + ch * 2
      for (const end = row + left; s < end; s = (s + step) | 0) a = (a + (tile[s]! | (tile[s + 1]! << 8))) | 0
      for (const end = row + left + bytes; s < end; s = (s + step) | 0) {
        a = (a + (tile[s]! | (tile[s + 1]! << 8))) | 0
        tile[s] = a
        tile[s + 1] = a >> 8
      }
    }
  }
}
