/** Types shared by every layer. Types only: no runtime code here. */

/** Colour model of the stored samples, in interleaved channel order. */
export type ColorModel = 'gray' | 'graya' | 'rgb' | 'rgba'

/** Bits per sample; 16-bit samples are stored little-endian. */
export type BitDepth = 8 | 16

/** How the samples of one pixel are laid out. */
export interface PixelFormat {
  readonly colorModel: ColorModel
  readonly channels: 1 | 2 | 3 | 4
  readonly bitsPerSample: BitDepth
}

/** A rectangle in pixels, origin top-left, of one pyramid level. */
export interface Region {
  readonly x: number
  readonly y: number
  readonly width: number
  readonly height: number
}

/**
 * A run of whole rows of an image or region: `height` rows of `width` pixels each,
 * interleaved samples, 16-bit samples little-endian, no row padding.
 * `y` is the first row's index within the image or region the band belongs to.
 */
export interface Band {
  readonly y: number
  readonly height: number
  readonly data: Uint8Array
}

/** Tile compression parameters recorded in the manifest. */
export interface TileCodec {
  /** Always 'zstd' in format version 1. */
  readonly name: 'zstd'
  /** zstd compression level used when writing (informational for readers). */
  readonly level: number
  /** TIFF Predictor: 1 = none, 2 = horizontal differencing. */
  readonly predictor: 1 | 2
}
