/** Types of the importer's input decoders. Types only: no runtime code here. */
import type { Band, PixelFormat } from '../../format/interface.js'

/** Options of `openDecoder` and of each decoder's `open`. */
export interface DecodeOptions {
  /** Largest accepted width x height; checked from the header before any pixel is decoded. */
  readonly maxPixels: number
  /** Where a decoder may put a temporary file (the sharp path does); removed by `close()`. */
  readonly tmpDir: string
  /**
   * Largest temporary file accepted, in bytes (default: no limit but the free space of
   * `tmpDir`, less a margin). Checked from the header, before decoding (ERR_LIMIT).
   */
  readonly maxTempBytes?: number | undefined
  /**
   * Largest buffer a decoder may need at once (default DEFAULT_MAX_DECODE_BYTES): a row of TIFF
   * strips or tiles, or a whole image for loaders that cannot stream. Checked from the header
   * (ERR_LIMIT). The importer holds its own tile rows to the same limit (through `accept`).
   */
  readonly maxDecodeBytes?: number | undefined
  /**
   * Called with the header once it is read and validated, before any pixel is decoded or any
   * temporary file written: throwing refuses the image (the importer checks its own limits).
   */
  readonly accept?: ((header: DecodedHeader) => void) | undefined
  readonly signal?: AbortSignal | undefined
}

/** What a decoder knows from the header alone. */
export interface DecodedHeader {
  readonly width: number
  readonly height: number
  readonly format: PixelFormat
  readonly icc?: Uint8Array | undefined
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
   * The whole image's rows, when the decoder holds them anyway (a small image decoded in
   * memory); undefined for decoders that stream. Read-only: the importer samples it to choose
   * a codec before the first band (import/codec-choice.ts).
   */
  readonly pixels?: Uint8Array | undefined
  /**
   * Rows top to bottom in bands of `bandHeight` rows (the last may be shorter). A band's
   * `data` is valid until the next band is requested: decoders may reuse one buffer, so that
   * a 1 GiB image costs one band of memory. Callable once.
   */
  bands(bandHeight: number, options?: BandOptions): AsyncIterable<Band>
  /** Releases the file and removes any temporary file; safe to call twice. */
  close(): Promise<void>
}
