import { InvalidArgumentError } from '../errors.js'
import type { BitDepth, ColorModel, PixelFormat } from './interface.js'

const CHANNELS: Record<ColorModel, 1 | 2 | 3 | 4> = { gray: 1, graya: 2, rgb: 3, rgba: 4 }

/** The pixel format for a colour model and depth. */
export function pixelFormat(colorModel: ColorModel, bitsPerSample: BitDepth): PixelFormat {
  const channels = CHANNELS[colorModel]
  if (channels === undefined) throw new InvalidArgumentError(`Unknown colour model ${String(colorModel)}`)
  if (bitsPerSample !== 8 && bitsPerSample !== 16) {
    throw new InvalidArgumentError(`Expected 8 or 16 bits per sample but received ${String(bitsPerSample)}`)
  }
  return { colorModel, channels, bitsPerSample }
}

/** The colour model with this many channels. */
export function colorModelOf(channels: number): ColorModel {
  const model = (['gray', 'graya', 'rgb', 'rgba'] as const)[channels - 1]
  if (model === undefined) throw new InvalidArgumentError(`Expected 1 to 4 channels but received ${channels}`)
  return model
}

/** Bytes per pixel of a pixel format. */
export function bytesPerPixel(format: PixelFormat): number {
  return format.channels * (format.bitsPerSample / 8)
}
