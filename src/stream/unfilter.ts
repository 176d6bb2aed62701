/**
 * PNG row unfiltering (W3C PNG 3rd edition §9) over a pair of row buffers: the row being
 * decoded and the one above it. Two implementations of one contract: WebAssembly SIMD128
 * (unfilter.c, embedded as unfilter-wasm.ts; its rows live in the instance's own memory, so no
 * copy in or out), about 3x the JavaScript on photographs, which dominate as Paeth; and plain
 * JavaScript where WebAssembly SIMD is unavailable (and as the tests' reference).
 */
import { UNFILTER_WASM_BASE64 } from './unfilter-wasm.js'

/** Two row buffers, `stride + 1` bytes each (the filter type first), and the unfilter between them. */
export interface RowUnfilter {
  /** The row being decoded: fill it, then `unfilter()` it in place. */
  readonly current: Uint8Array
  /** The row above, unfiltered; zeros above the first row. */
  readonly previous: Uint8Array
  /** Undoes `current`'s filter against `previous`; false for an unknown filter type. */
  unfilter(): boolean
  /** Makes `current` the row above and hands out the other buffer as the next `current`. */
  swap(): void
}

/** The WebAssembly JS API used here (the tsconfig has no "dom" lib; @types/node 20 lacks it). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object
  Instance: new (module: object, imports: object) => { readonly exports: Record<string, unknown> }
  Memory: new (descriptor: { initial: number }) => { readonly buffer: ArrayBuffer }
}

/** Room below the rows for the kernel's stack and data (its __heap_base, checked). */
const RESERVED = 1 << 16
/** Bytes the kernel may read or rewrite past a row's end. */
const SLACK = 16
const PAGE = 1 << 16
/** Rows longer than this use the JavaScript loops (wasm memory is allocated per decoder). */
const MAX_WASM_ROW = 256 << 20

let compiled: { readonly api: WasmApi; readonly module: object } | null | undefined

/** The compiled module, or null without WebAssembly SIMD128. */
function wasmModule(): { readonly api: WasmApi; readonly module: object } | null {
  if (compiled !== undefined) return compiled
  const api = (globalThis as { WebAssembly?: WasmApi }).WebAssembly
  compiled = null
  if (api === undefined) return compiled
  try {
    // Synchronous: the module is 4 KB. Compiling fails where SIMD128 is unsupported.
    compiled = { api, module: new api.Module(Buffer.from(UNFILTER_WASM_BASE64, 'base64')) }
  } catch {
    // The JavaScript loops serve.
  }
  return compiled
}

/** A RowUnfilter for rows of `stride` bytes (without the filter byte) and `bpp` bytes per complete pixel (at least 1). */
export function rowUnfilter(stride: number, bpp: number, options: { readonly wasm?: boolean } = {}): RowUnfilter {
  const compiledModule = options.wasm === false || stride + 1 > MAX_WASM_ROW ? null : wasmModule()
  if (compiledModule !== null) {
    const slot = Math.ceil((stride + 1 + SLACK) / 16) * 16
    const { api, module } = compiledModule
    const memory = new api.Memory({ initial: Math.ceil((RESERVED + 2 * slot) / PAGE) })
    const { exports } = new api.Instance(module, { env: { memory } })
    if ((exports.__heap_base as { value: number }).value <= RESERVED) {
      const kernel = exports.unfilter as (row: number, previous: number, stride: number, bpp: number) => number
      const offsets = [RESERVED, RESERVED + slot]
      const views = offsets.map((at) => new Uint8Array(memory.buffer, at, stride + 1))
      let k = 0
      return {
        get current() {
          return views[k]!
        },
        get previous() {
          return views[1 - k]!
        },
        unfilter: () => kernel(offsets[k]!, offsets[1 - k]!, stride, bpp) === 0,
        swap: () => {
          k = 1 - k
        },
      }
    }
  }
  let current = new Uint8Array(stride + 1)
  let previous = new Uint8Array(stride + 1)
  return {
    get current() {
      return current
    },
    get previous() {
      return previous
    },
    unfilter: () => unfilterJs(current, previous, stride, bpp),
    swap: () => {
      ;[current, previous] = [previous, current]
    },
  }
}

/** The JavaScript unfilter: `row[0]` is the filter type, `row[1..stride]` the bytes; `previous` the row above. */
function unfilterJs(row: Uint8Array, previous: Uint8Array, stride: number, bpp: number): boolean {
  const end = stride + 1
  switch (row[0]) {
    case 0:
      return true
    case 1:
      for (let i = 1 + bpp; i < end; i++) row[i] = row[i]! + row[i - bpp]!
      return true
    case 2:
      for (let i = 1; i < end; i++) row[i] = row[i]! + previous[i]!
      return true
    case 3:
      for (let i = 1; i <= bpp && i < end; i++) row[i] = row[i]! + (previous[i]! >> 1)
      for (let i = 1 + bpp; i < end; i++) row[i] = row[i]! + ((row[i - bpp]! + previous[i]!) >> 1)
      return true
    case 4:
      for (let i = 1; i <= bpp && i < end; i++) row[i] = row[i]! + previous[i]!
      for (let i = 1 + bpp; i < end; i++) row[i] = row[i]! + paeth(row[i - bpp]!, previous[i]!, previous[i - bpp]!)
      return true
    default:
      return false
  }
}

/**
 * The Paeth predictor (§9.4) without branches, which photographs make unpredictable: with
 * p = a + b - c, the distances are |p - a| = |b - c|, |p - b| = |a - c|, |p - c| = |a + b - 2c|;
 * ties go to a, then b. Masks are all ones (-1) or zero.
 */
function paeth(a: number, b: number, c: number): number {
  let pa = b - c
  let pb = a - c
  let pc = pa + pb
  pa = (pa ^ (pa >> 31)) - (pa >> 31)
  pb = (pb ^ (pb >> 31)) - (pb >> 31)
  pc = (pc ^ (pc >> 31)) - (pc >> 31)
  const ma = ~(((pb - pa) | (pc - pa)) >> 31)
  const mb = ~((pc - pb) >> 31) & ~ma
  return (a & ma) | (b & mb) | (c & ~(ma | mb))
}
