/**
 * Binary Netpbm (PGM P5, PPM P6, PAM P7) read as it arrives. The header is the importer's
 * (`parsePnmHeader`, same rules: MAXVAL 255 or 65535 only); the raster is plain rows, so rows
 * no region needs are skipped (dropped from a stream, seeked over in a file) and reading stops
 * after the last needed row.
 */
import { CorruptInputError, UnsupportedFormatError } from '../errors.js'
import type { Band, PixelFormat } from '../format/interface.js'
import { pixelFormat } from '../format/pixel.js'
import { parsePnmHeader } from '../import/decoders/pnm.js'
import { checkDimensions, swap16 } from '../import/decoders/rows.js'
import type { RowDecoder, ScanPlan, StreamStats } from './interface.js'
import { neededRows } from './scan.js'
import type { ByteSource } from './source.js'

export { isPnm } from '../import/decoders/pnm.js'

/** Longest header read, as the importer's reader (its comment block included). */
const MAX_HEADER = 64 * 1024
/** Target size of a band of rows. */
const BAND_BYTES = 4 << 20

/** Reads the header and returns a decoder of the rows. */
export async function openPnm(source: ByteSource, options: { readonly maxPixels: number }): Promise<RowDecoder> {
  const head = await source.peek(MAX_HEADER)
  const header = parsePnmHeader(head, head.length < MAX_HEADER)
  if (header.maxval !== 255 && header.maxval !== 65535) {
    throw new UnsupportedFormatError(`PNM MAXVAL ${header.maxval} is not supported (only 255 and 65535)`)
  }
  checkDimensions(header.width, header.height, options.maxPixels, 'PNM')
  const format = pixelFormat(header.colorModel, header.maxval === 255 ? 8 : 16)
  const rowBytes = header.width * format.channels * (format.bitsPerSample / 8)
  if (source.size !== undefined && header.dataOffset + rowBytes * header.height > source.size) {
    throw new CorruptInputError(
      `PNM raster needs ${rowBytes * header.height} bytes but the file has ${source.size - header.dataOffset} (truncated?)`,
    )
  }
  return new PnmRows(source, header.width, header.height, format, header.dataOffset)
}

class PnmRows implements RowDecoder {
  readonly sourceFormat = 'pnm'
  readonly icc = undefined
  readonly #source: ByteSource
  readonly #dataOffset: number

  constructor(
    source: ByteSource,
    readonly width: number,
    readonly height: number,
    readonly format: PixelFormat,
    dataOffset: number,
  ) {
    this.#source = source
    this.#dataOffset = dataOffset
  }

  async *bands(plan: ScanPlan, stats: StreamStats, signal: AbortSignal | undefined): AsyncGenerator<Band> {
    const rowBytes = this.width * this.format.channels * (this.format.bitsPerSample / 8)
    const bandRows = Math.max(1, Math.floor(BAND_BYTES / rowBytes))
    for (const [start, end] of neededRows(plan)) {
      await this.#source.seek(this.#dataOffset + start * rowBytes, `PNM row ${start}`)
      for (let y = start; y < end; y += bandRows) {
        signal?.throwIfAborted()
        const height = Math.min(bandRows, end - y)
        let data = await this.#source.read(height * rowBytes, `PNM rows ${y}..${y + height - 1}`)
        if (this.format.bitsPerSample === 16) {
          data = data.slice() // the input's bytes stay as they are
          swap16(data)
        }
        stats.rowsDecoded += height
        yield { y, height, data }
      }
    }
  }

  async close(): Promise<void> {}
}
