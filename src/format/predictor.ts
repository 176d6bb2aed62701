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
