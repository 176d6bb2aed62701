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
  /**
   * Where to put the next band's `bytes` bytes, if the caller has a place for them: a
   * decoder that honours it reads straight into the caller's buffer, saving a band-sized
   * copy. Decoders may ignore it.
   */
  readonly target?: ((bytes: number) => Uint8Array | undefined) | undefined
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
   * Rows top to bottom in bands of `bandHeight` rows (the last may be shorter). A band's
   * `data` is valid until the next band is requested: decoders may reuse one buffer, so that
   * a 1 GiB image costs one band of memory. Callable once.
   */
  bands(bandHeight: number, options?: BandOptions): AsyncIterable<Band>
  /** Releases the file and removes any temporary file; safe to call twice. */
  close(): Promise<void>
}
