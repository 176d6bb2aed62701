/** Types of stream cropping (spec/outputs.md, Stream cropping). Types only: no runtime code here. */
import type { OutputFormat, OutputFormatSpec, TiffCompression } from '../crop/writers/index.js'
import type { Band, PixelFormat, Region } from '../format/interface.js'
import type { AbortOptions } from '../store/interface.js'

/** An image file's path, or its bytes as they arrive (standard input, an upload, a socket). */
export type StreamInput = string | AsyncIterable<Uint8Array>

/** Counters of one stream crop; live while it runs. */
export interface StreamStats {
  /** Bytes taken from the input (a file: bytes read; a stream: bytes received). */
  bytesRead: number
  /** The input's size when it is a regular file, else undefined. */
  inputBytes: number | undefined
  /** Image rows decoded (a PNG's rows unfiltered, strips' or tiles' rows decompressed), each counted once. */
  rowsDecoded: number
  /** TIFF strips or tiles, or CAR tiles, decompressed. */
  tilesDecoded: number
}

/** Options of cropStream. */
export interface StreamCropOptions extends AbortOptions {
  /** Output format of every region (default tiff): a name of OUTPUT_FORMATS. */
  readonly format?: OutputFormat
  /** One of the format's `compressions` (default its first). */
  readonly compression?: TiffCompression
  /** Clip regions that extend past the image instead of failing (default false). */
  readonly clip?: boolean
  /** Pyramid level, for a Tessera CAR only (default 0). */
  readonly level?: number
  /** Largest accepted width x height, checked from the header (default DEFAULT_MAX_PIXELS). */
  readonly maxPixels?: number
  /** Tile size of TIFF outputs (default: a CAR's own, else the import default, 256). */
  readonly tileSize?: number
  /** Where large TIFF re-encodes spool, and where a file decoded by libvips is unpacked (default the OS temp dir). */
  readonly tmpDir?: string
}

/** What the input's header says. */
export interface StreamImageInfo {
  readonly width: number
  readonly height: number
  readonly format: PixelFormat
  /** 'png' | 'pnm' | 'tiff' | 'car' | what libvips calls a file it decodes ('jpeg', 'webp', ...). */
  readonly sourceFormat: string
  readonly icc?: Uint8Array | undefined
}

/** One region's output. */
export interface StreamCropOutput {
  readonly format: OutputFormatSpec
  /** The region cropped (after clipping), in pixels of the image (of `level` for a CAR). */
  readonly region: Region
  /** Its length in bytes when known before the first byte. */
  readonly length: number | undefined
  /**
   * Its bytes, front to back (call once). Consume every output at once (Promise.all): the
   * scan moves at the pace of the slowest consumer and waits for outputs not being read.
   */
  bytes(): AsyncIterable<Uint8Array>
}

/** A stream crop, validated and ready: its outputs are produced by one pass over the input. */
export interface StreamCrop {
  readonly image: StreamImageInfo
  /** One per region, in the order given. */
  readonly outputs: readonly StreamCropOutput[]
  /** Live counters. */
  readonly stats: StreamStats
  /**
   * Stops the scan and releases the input: outputs still running fail with `reason` (default an
   * AbortError). Call it when an output's consumer fails, or when outputs will not be read.
   */
  close(reason?: unknown): Promise<void>
  /** Settles when the scan is over (every output fed, or a failure) and the input released. */
  readonly done: Promise<StreamStats>
}

/** The rows and columns a scan needs: the union of its regions. */
export interface ScanPlan {
  readonly regions: readonly Region[]
  /** One past the last row any region needs: the scan stops reading there. */
  readonly endRow: number
}

/** One region's band at one step of the scan. */
export interface Delivery {
  /** Index of the region in the plan. */
  readonly index: number
  readonly band: Band
}

/**
 * A decoder of one input format: its header read, its pixels not yet. `deliveries` yields, top to
 * bottom, each region's bands (region-relative `y`, buffers the receivers own), reading no further
 * than the row before `plan.endRow`.
 */
export interface StreamDecoder extends StreamImageInfo {
  /** TIFF tiling of re-encoded outputs when the input has its own (a CAR), else undefined. */
  readonly tiling?: { readonly tileSize: number; readonly predictor: 1 | 2; readonly zstdLevel: number } | undefined
  deliveries(plan: ScanPlan, stats: StreamStats, signal: AbortSignal | undefined): AsyncIterable<readonly Delivery[]>
  /** Releases what the decoder holds besides the source (temporary files); safe to call twice. */
  close(): Promise<void>
}

/**
 * A decoder of full-width rows (PNG, PNM, TIFF, libvips): `bands` yields rows top to bottom,
 * covering every row of the plan's regions (rows no region needs may be skipped), each band
 * valid until the next is requested; columns no region needs may hold anything.
 */
export interface RowDecoder extends StreamImageInfo {
  bands(plan: ScanPlan, stats: StreamStats, signal: AbortSignal | undefined): AsyncIterable<Band>
  close(): Promise<void>
}
