/**
 * A minimal uncompressed strip TIFF writer for the stream-cropping tests, with the layouts a
 * stream cannot take: the IFD after the pixels (as libtiff writes it), and strips stored in
 * reverse order. TIFF 6.0, little-endian, 8-bit chunky gray or RGB.
 */

/** What to write. */
export interface StripTiffSpec {
  readonly width: number
  readonly height: number
  readonly channels: 1 | 3
  /** width x height x channels samples. */
  readonly data: Uint8Array
  readonly rowsPerStrip: number
  /** The IFD after the pixels instead of before them. */
  readonly ifdLast?: boolean
  /** Strips stored bottom first. */
  readonly reverseStrips?: boolean
  /** Zero bytes between the header (or IFD) and the first strip. */
  readonly padding?: number
}

/** The TIFF file of `spec`. */
export function stripTiff(spec: StripTiffSpec): Uint8Array {
  const rowBytes = spec.width * spec.channels
  const strips = Math.ceil(spec.height / spec.rowsPerStrip)
  const counts = Array.from({ length: strips }, (_, i) => Math.min(spec.rowsPerStrip, spec.height - i * spec.rowsPerStrip) * rowBytes)
  const entries = 10
  const ifdBytes = 2 + entries * 12 + 4
  const valuesBytes = 8 * strips + 6 // offsets, counts, BitsPerSample x3
  const headBytes = ifdBytes + valuesBytes
  const dataStart = 8 + (spec.ifdLast === true ? 0 : headBytes) + (spec.padding ?? 0)
  const offsets = new Array<number>(strips)
  let at = dataStart
  const order = Array.from({ length: strips }, (_, i) => (spec.reverseStrips === true ? strips - 1 - i : i))
  for (const strip of order) {
    offsets[strip] = at
    at += counts[strip]!
  }
  const ifdAt = spec.ifdLast === true ? at : 8
  const out = new Uint8Array(Math.max(at, ifdAt) + (spec.ifdLast === true ? headBytes : 0))
  const view = new DataView(out.buffer)
  out.set([0x49, 0x49, 42, 0])
  view.setUint32(4, ifdAt, true)
  const values = ifdAt + ifdBytes
  const offsetsAt = values
  const countsAt = values + 4 * strips
  const bitsAt = values + 8 * strips
  view.setUint16(ifdAt, entries, true)
  const tags: Array<[number, number, number, number]> = [
    [256, 4, 1, spec.width],
    [257, 4, 1, spec.height],
    [258, 3, spec.channels, spec.channels === 1 ? 8 : bitsAt],
    [259, 3, 1, 1],
    [262, 3, 1, spec.channels === 1 ? 1 : 2],
    [273, 4, strips, strips === 1 ? offsets[0]! : offsetsAt],
    [277, 3, 1, spec.channels],
    [278, 4, 1, spec.rowsPerStrip],
    [279, 4, strips, strips === 1 ? counts[0]! : countsAt],
    [284, 3, 1, 1],
  ]
  tags.forEach(([tag, type, count, value], i) => {
    const e = ifdAt + 2 + i * 12
    view.setUint16(e, tag, true)
    view.setUint16(e + 2, type, true)
    view.setUint32(e + 4, count, true)
    if (type === 3 && count === 1) view.setUint16(e + 8, value, true)
    else view.setUint32(e + 8, value, true)
  })
  for (let i = 0; i < strips; i++) {
    view.setUint32(offsetsAt + 4 * i, offsets[i]!, true)
    view.setUint32(countsAt + 4 * i, counts[i]!, true)
  }
  for (let c = 0; c < 3; c++) view.setUint16(bitsAt + 2 * c, 8, true)
  for (let i = 0; i < strips; i++) {
    const start = i * spec.rowsPerStrip * rowBytes
    out.set(spec.data.subarray(start, start + counts[i]!), offsets[i]!)
  }
  return out
}
