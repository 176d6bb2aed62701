/**
 * Shared pieces of the decoders: exact positional reads, header limit checks, and a
 * DecodedImage over a file whose pixels are contiguous rows at a known offset (PNM files and
 * the sharp path's temporary file). Bounded memory: one band is read at a time, by position.
 */
import type { FileHandle } from 'node:fs/promises'
import { CorruptInputError, InvalidArgumentError, LimitError } from '../../errors.js'
import type { Band, PixelFormat } from '../../format/interface.js'
import { bytesPerPixel } from '../../format/pixel.js'
import type { BandOptions, DecodedImage } from './interface.js'

// fs reads are limited to 2 GiB per call; stay well below.
const MAX_READ = 1 << 30

/** Fills `target` from `position`; throws CorruptInputError if the file ends first. */
export async function readExact(handle: FileHandle, target: Uint8Array, position: number, what: string): Promise<void> {
  let done = 0
  while (done < target.length) {
    const length = Math.min(target.length - done, MAX_READ)
    const { bytesRead } = await handle.read({ buffer: target, offset: done, length, position: position + done })
    if (bytesRead === 0) {
      throw new CorruptInputError(`${what}: file ends at byte ${position + done}, ${target.length - done} bytes short (truncated?)`)
    }
    done += bytesRead
  }
}

/** Reads `length` bytes at `position` into a new buffer; CorruptInputError if the file ends first. */
export async function readAt(handle: FileHandle, position: number, length: number, what: string): Promise<Uint8Array> {
  const target = new Uint8Array(length)
  await readExact(handle, target, position, what)
  return target
}

/** Validates header dimensions: positive integers (else corrupt) within `maxPixels` (else LimitError). */
export function checkDimensions(width: number, height: number, maxPixels: number, what: string): void {
  if (!Number.isSafeInteger(width) || !Number.isSafeInteger(height) || width < 1 || height < 1) {
    throw new CorruptInputError(`${what}: invalid dimensions ${width}x${height}`)
  }
  if (width * height > maxPixels) {
    throw new LimitError(`${what}: ${width}x${height} = ${width * height} pixels exceeds the limit of ${maxPixels}`)
  }
}

/** Validates a `bands()` argument. */
export function checkBandHeight(bandHeight: number): void {
  if (!Number.isSafeInteger(bandHeight) || bandHeight < 1) {
    throw new InvalidArgumentError(`Expected positive integer for bandHeight but received ${String(bandHeight)}`)
  }
}

/** Swaps the bytes of every 16-bit sample in place (big-endian file -> little-endian band). */
export function swap16(data: Uint8Array): void {
  Buffer.from(data.buffer, data.byteOffset, data.length).swap16()
}

/** Construction parameters of a RowFileImage. */
export interface RowFileInit {
  readonly handle: FileHandle
  /** Byte offset of the first row. */
  readonly dataOffset: number
  readonly width: number
  readonly height: number
  readonly format: PixelFormat
  readonly sourceFormat: string
  readonly icc?: Uint8Array | undefined
  /** 16-bit samples are big-endian in the file. */
  readonly bigEndian: boolean
  /** Runs after the handle is closed (e.g. removes a temporary file). */
  readonly cleanup?: () => Promise<void>
  /**
   * Resolves once the file holds every byte before `end`, for a file still being written
   * by another thread (the sharp path tails libvips' output). Absent: the file is complete.
   */
  readonly available?: (end: number) => Promise<void>
}

/** A DecodedImage over contiguous, unpadded rows at a fixed offset of an open file. */
export class RowFileImage implements DecodedImage {
  readonly width: number
  readonly height: number
  readonly format: PixelFormat
  readonly sourceFormat: string
  readonly icc: Uint8Array | undefined
  readonly #init: RowFileInit
  #started = false
  #closed: Promise<void> | undefined

  constructor(init: RowFileInit) {
    this.#init = init
    this.width = init.width
    this.height = init.height
    this.format = init.format
    this.sourceFormat = init.sourceFormat
    this.icc = init.icc
  }

  bands(bandHeight: number, options: BandOptions = {}): AsyncIterable<Band> {
    checkBandHeight(bandHeight)
    if (this.#started) throw new InvalidArgumentError('bands() can be called once per decoder')
    if (this.#closed !== undefined) throw new InvalidArgumentError('Decoder is closed')
    this.#started = true
    return this.#bands(bandHeight, options.signal, options.target)
  }

  async *#bands(bandHeight: number, signal: AbortSignal | undefined, target: BandOptions['target']): AsyncGenerator<Band> {
    const { handle, dataOffset, bigEndian } = this.#init
    const rowBytes = this.width * bytesPerPixel(this.format)
    const swap = bigEndian && this.format.bitsPerSample === 16
    // One buffer for every band (the caller consumes each band before asking for the next),
    // allocated only if the caller does not offer its own.
    let buffer: Uint8Array | undefined
    for (let y = 0; y < this.height; y += bandHeight) {
      signal?.throwIfAborted()
      if (this.#closed !== undefined) throw new InvalidArgumentError('Decoder is closed')
      const height = Math.min(bandHeight, this.height - y)
      let data = target?.(height * rowBytes)
      if (data === undefined) {
        buffer ??= new Uint8Array(Math.min(bandHeight, this.height) * rowBytes)
        data = buffer.subarray(0, height * rowBytes)
      }
      await this.#init.available?.(dataOffset + (y + height) * rowBytes)
      await readExact(handle, data, dataOffset + y * rowBytes, `${this.sourceFormat} rows ${y}..${y + height - 1}`)
      if (swap) swap16(data)
      yield { y, height, data }
    }
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      try {
        await this.#init.handle.close()
      } finally {
        await this.#init.cleanup?.()
      }
    })()
    return this.#closed
  }
}
