/** Types of the importer's input decoders. Types only: no runtime code here. */
import type { Band, PixelFormat } from '../../format/interface.js'

/** Options of `openDecoder` and of each decoder's `open`. */
export interface DecodeOptions {
  /** Largest accepted width x height; checked from the header before any pixel is decoded. */
  readonly maxPixels: number
  /** Where a decoder may put a temporary file (the sharp path does); removed by `close()`. */
  readonly tmpDir: string
  readonly signal?: AbortSignal | undefined
}

/** Options of one `bands()` pass. */
export interface BandOptions {
  readonly signal?: AbortSignal | undefined
}

/**
 * An opened input image whose pixels are read band by band, never whole.
 * Pixels are the samples as stored in the file: no colour conversion, no EXIF rotation.
 */
export interface DecodedImage {
  readonly width: number
  readonly height: number
  readonly format: PixelFormat
  /** The container the pixels came from: 'png' | 'jpeg' | 'tiff' | 'webp' | 'pnm' | 'gif' | ... */
  readonly sourceFormat: string
  /** Embedded ICC profile bytes, if any (passed through, never applied). */
  readonly icc?: Uint8Array | undefined
  /**
   * Rows top to bottom in bands of `bandHeight` rows (the last may be shorter). Each band's
   * `data` is a new buffer the caller owns. Callable once.
   */
  bands(bandHeight: number, options?: BandOptions): AsyncIterable<Band>
  /** Releases the file and removes any temporary file; safe to call twice. */
  close(): Promise<void>
}
