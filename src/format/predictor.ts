/**
 * TIFF Predictor 2 (horizontal differencing), TIFF 6.0 section 14, applied per row of a tile
 * to each sample of a pixel against the same sample of the pixel to its left. 16-bit samples
 * are differenced as little-endian uint16 values, as libtiff does for a little-endian file.
 * Written by hand: it is a few lines, and it must be byte-exact with libtiff.
 */

/** Differences `data` (rows of `rowPixels` pixels of `channels` samples) in place. */
export function encodePredictor(data: Uint8Array, rowPixels: number, channels: number, bitsPerSample: 8 | 16): void {
  const rowSamples = rowPixels * channels
  if (bitsPerSample === 8) {
    for (let row = 0; row < data.length; row += rowSamples) {
      for (let i = row + rowSamples - 1; i >= row + channels; i--) data[i] = (data[i]! - data[i - channels]!) & 0xff
    }
    return
  }
  const samples = asUint16(data)
  for (let row = 0; row < samples.length; row += rowSamples) {
    for (let i = row + rowSamples - 1; i >= row + channels; i--) {
      samples[i] = (samples[i]! - samples[i - channels]!) & 0xffff
    }
  }
}

/** Undoes `encodePredictor` in place. */
export function decodePredictor(data: Uint8Array, rowPixels: number, channels: number, bitsPerSample: 8 | 16): void {
  const rowSamples = rowPixels * channels
  if (bitsPerSample === 8) {
    for (let row = 0; row < data.length; row += rowSamples) {
      const end = row + rowSamples
      for (let i = row + channels; i < end; i++) data[i] = (data[i]! + data[i - channels]!) & 0xff
    }
    return
  }
  const samples = asUint16(data)
  for (let row = 0; row < samples.length; row += rowSamples) {
    const end = row + rowSamples
    for (let i = row + channels; i < end; i++) samples[i] = (samples[i]! + samples[i - channels]!) & 0xffff
  }
}

/** A little-endian uint16 view of `data`; copies only if `data` is not 2-byte aligned. */
export function asUint16(data: Uint8Array): Uint16Array {
  // Node and every platform Tessera targets are little-endian; an aligned view is then exact.
  if (data.byteOffset % 2 === 0) return new Uint16Array(data.buffer, data.byteOffset, data.length >> 1)
  throw new RangeError('16-bit sample buffer must be 2-byte aligned')
}

/**
 * Undoes Predictor 2 in place for `rowCount` rows from `firstRow`, and only for the first
 * `pixels` pixels of each row: differencing is per row and runs left to right, so a crop
 * needs no more than that. Running sums are kept per channel in locals, the fast path.
 */
export function decodePredictorRows(
  data: Uint8Array,
  rowPixels: number,
  channels: number,
  bitsPerSample: 8 | 16,
  firstRow: number,
  rowCount: number,
  pixels: number,
): void {
  const rowSamples = rowPixels * channels
  const samples = bitsPerSample === 8 ? data : asUint16(data)
  const mask = bitsPerSample === 8 ? 0xff : 0xffff
  for (let row = firstRow; row < firstRow + rowCount; row++) {
    const start = row * rowSamples
    const end = start + pixels * channels
    if (channels === 3) {
      let a = samples[start]!
      let b = samples[start + 1]!
      let c = samples[start + 2]!
      for (let i = start + 3; i < end; i += 3) {
        a = (a + samples[i]!) & mask
        b = (b + samples[i + 1]!) & mask
        c = (c + samples[i + 2]!) & mask
        samples[i] = a
        samples[i + 1] = b
        samples[i + 2] = c
      }
    } else if (channels === 1) {
      let a = samples[start]!
      for (let i = start + 1; i < end; i++) {
        a = (a + samples[i]!) & mask
        samples[i] = a
      }
    } else {
      for (let i = start + channels; i < end; i++) samples[i] = (samples[i]! + samples[i - channels]!) & mask
    }
  }
}
