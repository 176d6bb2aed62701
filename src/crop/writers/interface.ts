/**
 * Types of the crop output writers. Types only: no runtime code here.
 *
 * Every writer takes a `RasterInit` and an `AsyncIterable<Band>` (from src/format/interface.ts)
 * and returns the output file as an `AsyncIterable<Uint8Array>`: header first, then payload
 * chunks. Bands must arrive top to bottom, contiguous from row 0, of any heights. Writers may
 * yield a band's own buffer (raw does), so a producer must not reuse a band buffer it has
 * handed over; writers never modify band buffers.
 */
import type { PixelFormat } from '../../format/interface.js'

/** What a writer needs to know before the first band: the region's size and pixel format. */
export interface RasterInit {
  readonly width: number
  readonly height: number
  readonly format: PixelFormat
  /** ICC profile to embed (PNG iCCP, TIFF tag 34675); ignored by formats without one. */
  readonly icc?: Uint8Array
}

/** Output file formats (their table is OUTPUT_FORMATS in formats.ts). */
export type OutputFormat = 'tiff' | 'png' | 'npy' | 'pam' | 'ppm' | 'pgm' | 'raw' | 'jpg' | 'webp'

/** Tile compression of a written TIFF (png takes deflate or none). */
export type TiffCompression = 'zstd' | 'deflate' | 'none'

/** What every writer of the table takes: the raster, the stored image's tiling and codec (tiff reuses them), the compression. */
export interface OutputInit extends RasterInit {
  readonly compression: TiffCompression
  readonly tileSize: number
  readonly predictor: 1 | 2
  readonly zstdLevel: number
}

/** A piece of an output whose length is known before its bytes are read. */
export interface Segment {
  readonly length: number
  read(signal?: AbortSignal): Uint8Array | Promise<Uint8Array>
}

/** Construction parameters of a tiled TIFF. */
export interface TiffInit extends RasterInit {
  /** Tile width and length in pixels; a positive multiple of 16 (TIFF 6.0 section 15). */
  readonly tileSize: number
  readonly compression: TiffCompression
  /** TIFF Predictor; ignored (never written) with compression 'none'. */
  readonly predictor: 1 | 2
  readonly zstdLevel: number
  /** zlib level 0-9 for 'deflate'; default 6. */
  readonly deflateLevel?: number
}

/** Per-call options of `writeTiffFromBands`. */
export interface TiffBandsOptions extends TiffLayoutOptions {
  /** Where to spool compressed tiles that exceed `spoolThreshold`; default `os.tmpdir()`. */
  readonly tmpDir?: string
  /** Compressed bytes kept in memory before spooling to a temp file; default 64 MiB. */
  readonly spoolThreshold?: number
  readonly signal?: AbortSignal
}

/** Per-call options of `writeTiffFromPayloads`. */
export interface TiffPayloadsOptions extends TiffLayoutOptions {
  readonly signal?: AbortSignal
}

/** Layout knobs shared by both TIFF entry points. */
export interface TiffLayoutOptions {
  /**
   * File size in bytes from which BigTIFF is written instead of classic TIFF; default 2^32
   * (classic offsets are 32-bit). Tests lower it to exercise BigTIFF on small images.
   */
  readonly bigTiffThreshold?: number
}

/** Per-call options of `writePng`. */
export interface PngOptions {
  /** 'none' writes zlib stored blocks (level 0) and filter None: fastest, largest. */
  readonly compression: 'deflate' | 'none'
  /** zlib level 1-9 for 'deflate'; default 6. */
  readonly level?: number
}

/** The kinds of Netpbm file `writePnm` writes. */
export type PnmKind = 'pam' | 'ppm' | 'pgm'
