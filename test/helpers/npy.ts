/**
 * A tiny .npy reader for test oracles (format spec: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html).
 * Only what the fixtures use: uint8 and uint16 arrays in C order. 16-bit data is returned
 * little-endian, like Tessera's bands.
 */
import { readFileSync } from 'node:fs'

/** A parsed .npy array: its shape and its raw sample bytes (16-bit little-endian). */
export interface NpyArray {
  readonly shape: readonly number[]
  readonly bitsPerSample: 8 | 16
  readonly data: Uint8Array
}

/** Reads the .npy file at `path`. */
export function readNpy(path: string): NpyArray {
  const bytes = new Uint8Array(readFileSync(path))
  const magic = String.fromCharCode(...bytes.subarray(1, 6))
  if (bytes[0] !== 0x93 || magic !== 'NUMPY') throw new Error(`${path} is not a .npy file`)
  const major = bytes[6]!
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length)
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true)
  const start = major === 1 ? 10 : 12
  const header = new TextDecoder('latin1').decode(bytes.subarray(start, start + headerLength))
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1]
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1]
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1]
  if (descr === undefined || fortran !== 'False' || shapeText === undefined) throw new Error(`${path}: unsupported header ${header}`)
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map(Number)
  const data = bytes.slice(start + headerLength)
  const count = shape.reduce((a, b) => a * b, 1)
  if (descr === '|u1' || descr === 'u1') {
    if (data.length !== count) throw new Error(`${path}: ${data.length} bytes for shape ${shape}`)
    return { shape, bitsPerSample: 8, data }
  }
  if (descr === '<u2' || descr === '>u2') {
    if (data.length !== count * 2) throw new Error(`${path}: ${data.length} bytes for shape ${shape}`)
    if (descr === '>u2') Buffer.from(data.buffer, data.byteOffset, data.length).swap16()
    return { shape, bitsPerSample: 16, data }
  }
  throw new Error(`${path}: unsupported dtype ${descr}`)
}
