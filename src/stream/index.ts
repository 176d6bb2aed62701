/**
 * Stream cropping (spec/outputs.md, Stream cropping): regions of an image cropped while it
 * arrives, without importing it. One forward pass decodes the input holding a band of rows,
 * feeds every region's writer (any format of OUTPUT_FORMATS) and stops reading once the last
 * needed row has gone by. Inputs: PNG, PNM/PAM, TIFF (none/deflate/zstd; from a stream only
 * with the IFD first), a Tessera CAR; from a file also whatever the importer decodes through
 * libvips (JPEG, WebP, GIF, other TIFFs), though not streamed.
 */
import { tmpdir } from 'node:os'
import { clipRegion, validateRegion } from '../crop/plan.js'
import { type OutputInit, outputCompression, outputFormat } from '../crop/writers/index.js'
import { InvalidArgumentError, InvalidRegionError } from '../errors.js'
import { assertTileSize } from '../format/grid.js'
import type { Region } from '../format/interface.js'
import { IMPORT_OPTIONS } from '../import/options.js'
import type { Delivery, StreamCrop, StreamCropOptions, StreamCropOutput, StreamInput, StreamStats } from './interface.js'
import { openSource, openStreamDecoder } from './open.js'
import { SharedScan, scanPlan } from './scan.js'

export type {
  StreamCrop,
  StreamCropOptions,
  StreamCropOutput,
  StreamImageInfo,
  StreamInput,
  StreamStats,
} from './interface.js'

/** A new, zeroed StreamStats. */
export function emptyStreamStats(): StreamStats {
  return { bytesRead: 0, inputBytes: undefined, rowsDecoded: 0, tilesDecoded: 0 }
}

/**
 * Opens `input` (a file path, or the bytes as they arrive), reads its header and prepares one
 * output per region. Everything is validated before it returns (format, compression, regions
 * against the image's size, what the format can hold), so callers create their outputs only
 * then; on any failure the input is released. Nothing is decoded until an output is read;
 * read them all at once (see StreamCropOutput.bytes).
 */
export async function cropStream(input: StreamInput, regions: readonly Region[], options: StreamCropOptions = {}): Promise<StreamCrop> {
  const format = outputFormat(options.format ?? 'tiff')
  const compression = outputCompression(format, options.compression)
  if (!Array.isArray(regions) || regions.length === 0) throw new InvalidArgumentError('Expected at least one region')
  for (const region of regions) if (region === null || typeof region !== 'object') throw new InvalidRegionError('Expected a region object')
  const level = options.level ?? 0
  if (!Number.isSafeInteger(level) || level < 0)
    throw new InvalidArgumentError(`Expected a non-negative integer for level but received ${String(level)}`)
  const maxPixels = options.maxPixels ?? IMPORT_OPTIONS.maxPixels.default
  if (typeof maxPixels !== 'number' || !(maxPixels >= 1))
    throw new InvalidArgumentError(`Expected a positive maxPixels but received ${String(maxPixels)}`)
  if (options.tileSize !== undefined) assertTileSize(options.tileSize)
  const tmpDir = options.tmpDir ?? tmpdir()
  options.signal?.throwIfAborted()

  const source = await openSource(input)
  const stats: StreamStats = { ...emptyStreamStats(), inputBytes: source.size }
  let decoder: Awaited<ReturnType<typeof openStreamDecoder>> | undefined
  try {
    decoder = await openStreamDecoder(source, typeof input === 'string' ? input : undefined, {
      maxPixels,
      level,
      tmpDir,
      signal: options.signal,
    })
    const { width, height } = decoder
    const targets = regions.map((asked) => {
      const target = options.clip === true ? clipRegion(asked, width, height) : asked
      if (target === undefined) {
        throw new InvalidRegionError(
          `Region ${asked.x},${asked.y},${asked.width},${asked.height} does not intersect the ${width}x${height} image`,
        )
      }
      validateRegion(target, width, height)
      return target
    })
    const tiling = decoder.tiling ?? {
      tileSize: IMPORT_OPTIONS.tileSize.default,
      predictor: IMPORT_OPTIONS.predictor.default,
      zstdLevel: IMPORT_OPTIONS.zstdLevel.default,
    }
    const plan = scanPlan(targets)
    const opened = decoder
    const deliveries = async function* (): AsyncGenerator<readonly Delivery[]> {
      try {
        for await (const step of opened.deliveries(plan, stats, options.signal)) {
          stats.bytesRead = Math.max(stats.bytesRead, source.bytesRead)
          yield step
        }
      } finally {
        stats.bytesRead = Math.max(stats.bytesRead, source.bytesRead)
      }
    }
    const release = async () => {
      try {
        await opened.close()
      } finally {
        await source.close()
        stats.bytesRead = Math.max(stats.bytesRead, source.bytesRead)
      }
    }
    const scan = new SharedScan(plan, deliveries, release)
    const outputs = targets.map((region, i): StreamCropOutput => {
      const init: OutputInit = {
        width: region.width,
        height: region.height,
        format: opened.format,
        ...(opened.icc === undefined ? {} : { icc: opened.icc }),
        compression,
        tileSize: options.tileSize ?? tiling.tileSize,
        predictor: tiling.predictor,
        zstdLevel: tiling.zstdLevel,
      }
      const bytes = format.write(init, scan.channels[i]!, { tmpDir, ...(options.signal ? { signal: options.signal } : {}) })
      return { format, region, length: format.length(init), bytes: () => bytes }
    })
    const onAbort = () => void scan.close(options.signal?.reason)
    options.signal?.addEventListener('abort', onAbort, { once: true })
    const done = scan.done.then(
      () => stats,
      (error: unknown) => {
        throw error
      },
    )
    void done.finally(() => options.signal?.removeEventListener('abort', onAbort)).catch(() => undefined)
    done.catch(() => undefined)
    const { sourceFormat, icc } = opened
    return {
      image: { width, height, format: opened.format, sourceFormat, ...(icc === undefined ? {} : { icc }) },
      outputs,
      stats,
      close: (reason?: unknown) => scan.close(reason),
      done,
    }
  } catch (error) {
    await decoder?.close().catch(() => undefined)
    await source.close().catch(() => undefined)
    throw error
  }
}
