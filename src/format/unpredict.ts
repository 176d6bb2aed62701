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
 *
 * The same module also holds the PNG writer's kernels (`pngFilter`, `adler32`), in a
 * WebAssembly instance of their own so that their memory never moves the crop scratch.
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
  readonly pngFilter: (...args: number[]) => number
  readonly adler32: (adler: number, at: number, length: number) => number
  readonly crc32: (crc: number, at: number, length: number) => number
}

/** The instantiated wasm, or undefined where WebAssembly or SIMD128 is unavailable. */
const kernel: Kernel | undefined = instantiate()

/** A new instance of the module (its own memory), or undefined without WebAssembly SIMD128. */
function instantiate(): Kernel | undefined {
  const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly
  if (wasm === undefined) return undefined
  const bytes = Buffer.from(UNPREDICT_WASM_BASE64, 'base64')
  if (!wasm.validate(bytes)) return undefined
  // Synchronous: the module is 11 KB, and callers need the kernel without awaiting.
  const { exports } = new wasm.Instance(new wasm.Module(bytes))
  return {
    memory: exports.memory as Kernel['memory'],
    heapBase: (exports.__heap_base as { value: number }).value,
    unpredict: exports.unpredict as Kernel['unpredict'],
    pngFilter: exports.png_filter as Kernel['pngFilter'],
    adler32: exports.adler32 as Kernel['adler32'],
    crc32: exports.crc32 as Kernel['crc32'],
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

// The PNG writer's kernels: row filtering and Adler-32, in an instance of their own, made on
// first use (worker threads that only deflate never filter).

/** PNG filter types (PNG spec 9.2): 0 None, 1 Sub, 2 Up, 3 Average, 4 Paeth; 5 chooses per row. */
export type PngFilterType = 0 | 1 | 2 | 3 | 4 | 5

/** What `pngFilter` filters. */
export interface PngFilterOptions {
  /** Bytes per row, without the filter type byte. */
  readonly stride: number
  /** Bytes per complete pixel, 1 to 8 (the spec's bpp). */
  readonly bpp: number
  /** 16-bit samples, little-endian in the rows: swapped to PNG's big-endian first. */
  readonly wide: boolean
  /** One filter type for every row, or 5: per row, the least sum of |residual| (libpng's heuristic) on a sample. */
  readonly type: PngFilterType
}

/** Largest encoder instance memory; bigger calls run in JS (wasm memory never shrinks). */
const ENCODER_MAX_BYTES = 32 << 20

let encoder: Kernel | undefined | null = null

function encoderKernel(): Kernel | undefined {
  if (encoder === null) encoder = instantiate()
  return encoder
}

/** The encoder memory, grown to hold `end` bytes. */
function encoderMemory(k: Kernel, end: number): Uint8Array {
  const have = k.memory.buffer.byteLength
  if (end > have) k.memory.grow(Math.ceil((end - have) / 65536))
  return new Uint8Array(k.memory.buffer)
}

/**
 * Choosing a row's filter looks at 1 vector of 16 bytes in 2^shift: every one in short rows,
 * 1 in 4 from 2 KiB. Measured on photographs, sampling a quarter of a 512-pixel RGB row
 * changes the output size by under 0.5%.
 */
function sampleShift(stride: number): number {
  return stride >= 2048 ? 2 : stride >= 512 ? 1 : 0
}

/**
 * Filters whole rows for PNG (PNG spec 9: filter method 0): `rows` holds `rows.length /
 * stride` rows, `above` the row above the first in PNG byte order (undefined at the top of
 * the image: zeros). Writes each row's filter type byte and residuals to `out` (rows * (stride
 * + 1) bytes) and, when given, the last row in PNG byte order to `lastRow` (the next call's
 * `above`). Returns the number of zero residual bytes. WebAssembly SIMD when available, the
 * same bytes in JS otherwise.
 */
export function pngFilter(
  rows: Uint8Array,
  above: Uint8Array | undefined,
  out: Uint8Array,
  options: PngFilterOptions,
  lastRow?: Uint8Array,
): number {
  const { stride, bpp, wide, type } = options
  const count = rows.length / stride
  if (
    !(Number.isInteger(count) && stride > 0 && bpp >= 1 && bpp <= 8 && Number.isInteger(type) && type >= 0 && type <= 5) ||
    (above !== undefined && above.length !== stride) ||
    (lastRow !== undefined && lastRow.length !== stride) ||
    out.length < count * (stride + 1)
  ) {
    throw new RangeError(`pngFilter: ${rows.length} bytes of rows, stride ${stride}, bpp ${bpp}, type ${type} or output size invalid`)
  }
  if (count === 0) return 0
  const shift = sampleShift(stride)
  const k = encoderKernel()
  // Layout: 16 readable bytes (the first vector loads left of the row above), the row above,
  // the rows, 16 bytes the loads may pass the last row by, then the output and 16 bytes of slack.
  const aboveAt = k === undefined ? 0 : align(k.heapBase, 16) + 16
  const rowsAt = aboveAt + stride
  const outAt = align(rowsAt + rows.length + 16, 16)
  const end = outAt + count * (stride + 1) + 16
  if (k !== undefined && end <= ENCODER_MAX_BYTES) {
    const memory = encoderMemory(k, end)
    if (above === undefined) memory.fill(0, aboveAt, rowsAt)
    else memory.set(above, aboveAt)
    memory.set(rows, rowsAt)
    const zeros = k.pngFilter(rowsAt, outAt, stride, bpp, count, wide ? 1 : 0, type, shift)
    out.set(memory.subarray(outAt, outAt + count * (stride + 1)))
    lastRow?.set(memory.subarray(rowsAt + rows.length - stride, rowsAt + rows.length))
    return zeros
  }
  return pngFilterJs(wide ? swapBytes(rows) : rows, above ?? new Uint8Array(stride), out, stride, bpp, type, shift, lastRow)
}

/** A copy of `data` with the bytes of each 16-bit sample swapped. */
function swapBytes(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(data.length)
  for (let i = 0; i + 1 < data.length; i += 2) {
    out[i] = data[i + 1]!
    out[i + 1] = data[i]!
  }
  return out
}

/** The Paeth predictor (PNG spec 9.4): ties go to a, then b. */
function paethPredictor(a: number, b: number, c: number): number {
  const pa = Math.abs(b - c)
  const pb = Math.abs(a - c)
  const pc = Math.abs(a + b - c - c)
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c
}

/** The residual of filter type `f` at byte `i` of `row` (PNG spec 9.2), in 0..255. */
function residualAt(f: number, row: Uint8Array, above: Uint8Array, i: number, bpp: number): number {
  const x = row[i]!
  const a = i >= bpp ? row[i - bpp]! : 0
  const b = above[i]!
  const c = i >= bpp ? above[i - bpp]! : 0
  const p = f === 0 ? 0 : f === 1 ? a : f === 2 ? b : f === 3 ? (a + b) >> 1 : paethPredictor(a, b, c)
  return (x - p) & 0xff
}

/**
 * pngFilter in plain JS (the twin of png_filter in unpredict.c: the same choice on the same
 * sample, the same bytes), on rows already in PNG byte order; exported for tests.
 */
export function pngFilterJs(
  rows: Uint8Array,
  above: Uint8Array,
  out: Uint8Array,
  stride: number,
  bpp: number,
  type: number,
  shift: number,
  lastRow: Uint8Array | undefined,
): number {
  const count = rows.length / stride
  const step = 16 << shift
  const sums = [0, 0, 0, 0, 0]
  let zeros = 0
  let prev = above
  for (let r = 0; r < count; r++) {
    const row = rows.subarray(r * stride, (r + 1) * stride)
    let f = type
    if (type === 5) {
      sums.fill(0)
      for (let start = 0; start < stride; start += step) {
        for (let i = start; i < Math.min(start + 16, stride); i++) {
          for (let t = 0; t < 5; t++) {
            const v = residualAt(t, row, prev, i, bpp)
            sums[t]! += v < 128 ? v : 256 - v
          }
        }
      }
      f = 0
      for (let t = 1; t < 5; t++) if (sums[t]! < sums[f]!) f = t
    }
    const o = r * (stride + 1)
    out[o] = f
    for (let i = 0; i < stride; i++) {
      const v = residualAt(f, row, prev, i, bpp)
      out[o + 1 + i] = v
      if (v === 0) zeros++
    }
    prev = row
  }
  lastRow?.set(prev)
  return zeros
}

/** Bytes handed to the wasm checksums at a time. */
const ADLER_PIECE = 1 << 20

/**
 * Continues a CRC-32 (PNG spec 5.5; start with 0) over `data` in WebAssembly (slicing by 8,
 * about 3x crc32.ts), or undefined where WebAssembly is unavailable: then use crc32.ts.
 */
export function wasmCrc32(data: Uint8Array, crc = 0): number | undefined {
  const k = encoderKernel()
  if (k === undefined) return undefined
  const at = align(k.heapBase, 16)
  const memory = encoderMemory(k, at + Math.min(data.length, ADLER_PIECE))
  for (let start = 0; start < data.length; start += ADLER_PIECE) {
    const piece = data.subarray(start, start + ADLER_PIECE)
    memory.set(piece, at)
    crc = k.crc32(crc, at, piece.length) >>> 0
  }
  return crc >>> 0
}

/** Continues an Adler-32 (RFC 1950 section 8.2; start with 1) over `data`: WebAssembly SIMD when available. */
export function adler32(data: Uint8Array, adler = 1): number {
  const k = data.length >= 256 ? encoderKernel() : undefined
  if (k !== undefined) {
    const at = align(k.heapBase, 16)
    const memory = encoderMemory(k, at + Math.min(data.length, ADLER_PIECE))
    for (let start = 0; start < data.length; start += ADLER_PIECE) {
      const piece = data.subarray(start, start + ADLER_PIECE)
      memory.set(piece, at)
      adler = k.adler32(adler, at, piece.length) >>> 0
    }
    return adler
  }
  let a = adler & 0xffff
  let b = adler >>> 16
  // zlib's NMAX: the longest run before b could pass 2^32 (kept so that sums stay small integers).
  for (let start = 0; start < data.length; start += 5552) {
    const end = Math.min(start + 5552, data.length)
    for (let i = start; i < end; i++) {
      a += data[i]!
      b += a
    }
    a %= 65521
    b %= 65521
  }
  return ((b << 16) | a) >>> 0
}
