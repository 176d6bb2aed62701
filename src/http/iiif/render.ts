/**
 * Producing IIIF images and image information from a stored image: the pyramid level is the
 * smallest one that still has at least the output's pixels, only the tiles under the region
 * are read, and a request that is exactly a tile of a level (what viewers ask for) is served
 * from that level's pixels without resampling.
 */
import { type Band, colorModelOf, formatOfExtension, pixelFormat, pyramidSizes, type Region, type TesseraImage } from '../../image.js'
import type { Cost } from '../context.js'
import { RESPONSE_BYTES, readBytes, writerBytes } from '../cost.js'
import { bitonalBands, encodeBilevelPng, encodeBilevelTiff } from './bitonal.js'
import { IIIF_FORMATS, type IiifFormat, largestSize, type ResolvedRequest, type SizeLimits } from './params.js'
import { collect, orient, type Raster, rasterBands, resampleBands, toGray } from './raster.js'

/** IIIF Image API 3.0 context and profile URIs (§5.2, §6). */
export const IIIF_CONTEXT = 'http://iiif.io/api/image/3/context.json'
export const IIIF_PROFILE = 'http://iiif.io/api/image/3/level2.json'

/** Levels above the stored pyramid that info.json still advertises (each such tile reads at most 8x8 stored tiles). */
const EXTRA_SCALE_LEVELS = 3

/** The pyramid levels a tile request may use: stored ones, then a few computed from the top stored level. */
export function advertisedLevels(image: TesseraImage): Array<{ factor: number; width: number; height: number }> {
  const { manifest } = image
  const all = pyramidSizes(manifest.width, manifest.height, manifest.tileSize)
  const count = Math.min(all.length, manifest.levels.length + EXTRA_SCALE_LEVELS)
  return all.slice(0, count).map(([width, height], k) => ({ factor: 2 ** k, width, height }))
}

/** The image information document (§5) of `image`, whose base URI is `id`. */
export function imageInformation(image: TesseraImage, id: string, limits: SizeLimits, extra: { manifestUrl?: string } = {}) {
  const { manifest } = image
  const levels = advertisedLevels(image)
  const fits = (w: number, h: number) => w <= limits.maxWidth && h <= limits.maxHeight && w * h <= limits.maxArea
  const gray = manifest.colorModel === 'gray' || manifest.colorModel === 'graya'
  return {
    '@context': IIIF_CONTEXT,
    id,
    type: 'ImageService3',
    protocol: 'http://iiif.io/api/image',
    profile: 'level2',
    width: manifest.width,
    height: manifest.height,
    maxWidth: limits.maxWidth,
    maxHeight: limits.maxHeight,
    maxArea: limits.maxArea,
    // §5.3: preferred sizes for full-image requests, smallest first: the pyramid levels.
    sizes: levels
      .filter((l) => fits(l.width, l.height))
      .reverse()
      .map(({ width, height }) => ({ width, height })),
    // §5.4: tiles of the store's tile size at every advertised level's scale factor.
    tiles: [{ width: manifest.tileSize, height: manifest.tileSize, scaleFactors: levels.map((l) => l.factor) }],
    extraFormats: ['tif', 'webp'],
    // §4.4: a gray image lists no `color` (a request for it still succeeds).
    extraQualities: gray ? ['gray', 'bitonal'] : ['color', 'gray', 'bitonal'],
    extraFeatures: ['mirroring', 'profileLinkHeader', 'canonicalLinkHeader', ...(limits.upscaling ? ['sizeUpscaling'] : [])],
    // Not IIIF: OpenSeadragon copies the properties of an info.json it is handed as an object
    // (Mirador does so) onto the tile source, and loads tiles with this policy: with CORS, so that
    // its WebGL drawer may read them (spec/http.md, Viewers). Every response allows any origin.
    crossOriginPolicy: 'Anonymous',
    ...(extra.manifestUrl === undefined
      ? {}
      : {
          seeAlso: [
            {
              id: extra.manifestUrl,
              type: 'Dataset',
              format: 'application/json',
              label: { en: ['Tessera manifest (dag-json)'] },
            },
          ],
        }),
  }
}

/** Which level serves a request, and the integer region of that level it reads. */
export interface LevelChoice {
  readonly level: number
  readonly factor: number
  readonly source: Region
  /** The request is exactly `source` at its own size: no resampling. */
  readonly exact: boolean
  /** The window inside `source` that maps onto the output, in that level's pixels. */
  readonly window: { left: number; top: number; right: number; bottom: number }
}

/**
 * The smallest stored level that has at least `width` x `height` pixels under `region`
 * (level 0 when upscaling), so that the output is only ever reduced from it. Level k is
 * ceil(w/2^k) x ceil(h/2^k) (spec/format.md §7); the region maps to [x/2^k, (x+w)/2^k) of it.
 */
export function chooseLevel(image: TesseraImage, region: Region, width: number, height: number): LevelChoice {
  const { manifest } = image
  for (let k = manifest.levels.length - 1; k >= 0; k--) {
    const s = 2 ** k
    const level = manifest.levels[k]!
    const x0 = Math.floor(region.x / s)
    const y0 = Math.floor(region.y / s)
    const x1 = Math.min(level.width, Math.ceil((region.x + region.width) / s))
    const y1 = Math.min(level.height, Math.ceil((region.y + region.height) / s))
    // A region that ends at the image's edge ends at the level's edge, whose last pixel may
    // stand for fewer than s source pixels (§7): it is used whole.
    const right = region.x + region.width === manifest.width ? x1 : (region.x + region.width) / s
    const bottom = region.y + region.height === manifest.height ? y1 : (region.y + region.height) / s
    const window = { left: region.x / s - x0, top: region.y / s - y0, right: right - x0, bottom: bottom - y0 }
    const enough = window.right - window.left >= width - 1e-9 && window.bottom - window.top >= height - 1e-9
    if (k > 0 && !enough) continue
    const source = { x: x0, y: y0, width: x1 - x0, height: y1 - y0 }
    const aligned = window.left === 0 && window.top === 0 && window.right === source.width && window.bottom === source.height
    return { level: k, factor: s, source, exact: aligned && source.width === width && source.height === height, window }
  }
  throw new Error('unreachable: level 0 always qualifies')
}

/** The output pixels of a resolved request, before quality and rotation, band by band (§6.4 of spec/http.md). */
export function outputBands(
  image: TesseraImage,
  request: Pick<ResolvedRequest, 'region' | 'width' | 'height'>,
  options: { signal?: AbortSignal; reader?: TesseraImage['reader'] } = {},
): AsyncIterable<Band> {
  const { manifest } = image
  const reader = options.reader ?? image.reader
  const choice = chooseLevel(image, request.region, request.width, request.height)
  const bands = reader.bands(choice.source, { level: choice.level, signal: options.signal })
  if (choice.exact) return bands
  return resampleBands(
    {
      sourceWidth: choice.source.width,
      sourceHeight: choice.source.height,
      ...choice.window,
      channels: manifest.channels,
      bitsPerSample: manifest.bitsPerSample,
      width: request.width,
      height: request.height,
    },
    bands,
  )
}

/** The output pixels of a resolved request, before quality and rotation, as one raster. */
export async function renderPixels(
  image: TesseraImage,
  request: Pick<ResolvedRequest, 'region' | 'width' | 'height'>,
  options: { signal?: AbortSignal; reader?: TesseraImage['reader'] } = {},
): Promise<Raster> {
  const { manifest } = image
  const shape = { width: request.width, height: request.height, channels: manifest.channels, bitsPerSample: manifest.bitsPerSample }
  return collect(outputBands(image, request, options), shape, options.signal)
}

/** Bands converted to gray (toGray, band by band). */
async function* grayBands(bands: AsyncIterable<Band>, shape: Omit<Raster, 'data' | 'height'>): AsyncGenerator<Band> {
  for await (const band of bands) {
    const gray = toGray({ ...shape, height: band.height, data: band.data })
    yield { y: band.y, height: band.height, data: gray.data }
  }
}

/**
 * Encodes bands of a `shape` image with the output table's writer of a IIIF format (its
 * extension), into a list of chunks; `icc` is embedded (png, tif) when the colours are the
 * stored ones. tif is deflate, not zstd: every TIFF reader (and sharp's libvips) has it.
 */
async function encodeBands(bands: AsyncIterable<Band>, shape: Omit<Raster, 'data'>, format: IiifFormat, icc?: Uint8Array) {
  const init = {
    width: shape.width,
    height: shape.height,
    format: pixelFormat(colorModelOf(shape.channels), shape.bitsPerSample),
    ...(icc === undefined ? {} : { icc }),
    compression: 'deflate' as const,
    tileSize: 256,
    predictor: 2 as const,
    zstdLevel: 3,
  }
  const parts: Uint8Array[] = []
  for await (const chunk of formatOfExtension(format)!.write(init, bands)) parts.push(chunk)
  return parts
}

/** Encodes a raster (see encodeBands) into one array. */
export async function encodeRaster(raster: Raster, format: IiifFormat, icc?: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(Buffer.concat(await encodeBands(rasterBands(raster), raster, format, icc)))
}

/**
 * The encoded image for a resolved request (§4.6 order: pixels, gray, mirror and rotation,
 * format), as chunks. Without mirroring or rotation the bands stream from the store through the
 * resampler and the gray conversion into the writer, so that only the writer holds the image
 * (png and tif: compressed; jpg and webp: the 8-bit raster sharp needs); a rotation needs it whole.
 */
export async function renderImage(image: TesseraImage, request: ResolvedRequest, signal?: AbortSignal): Promise<Uint8Array[]> {
  const { manifest } = image
  if (request.quality === 'bitonal') return renderBitonal(image, request, signal)
  const toGrayscale = request.quality === 'gray' && manifest.channels >= 3
  const channels = toGrayscale ? (manifest.channels === 4 ? 2 : 1) : manifest.channels
  const shape = { width: request.width, height: request.height, channels, bitsPerSample: manifest.bitsPerSample }
  let bands = outputBands(image, request, { signal })
  if (toGrayscale) bands = grayBands(bands, { ...shape, channels: manifest.channels })
  const { mirror, degrees } = request.rotation
  let oriented: Omit<Raster, 'data'> = shape
  if (mirror || degrees !== 0) {
    const raster = orient(await collect(bands, shape, signal), mirror, degrees)
    signal?.throwIfAborted()
    bands = rasterBands(raster)
    oriented = raster
  }
  // An RGB profile does not describe gray pixels: only the stored colours keep it.
  const iccCid = manifest.metadata.icc
  const icc = iccCid !== undefined && !toGrayscale ? await image.reader.store.get(iccCid, { signal }) : undefined
  return encodeBands(bands, oriented, request.format, icc)
}

/**
 * A `bitonal` image (bitonal.ts): the output as 8-bit 0/255 gray, held whole (a packed 1-bit
 * image is written at once), oriented, then a 1-bit png or tif, or 8-bit gray jpg or webp.
 */
async function renderBitonal(image: TesseraImage, request: ResolvedRequest, signal?: AbortSignal): Promise<Uint8Array[]> {
  const { channels, bitsPerSample } = image.manifest
  const bands = bitonalBands(outputBands(image, request, { signal }), request.width, channels, bitsPerSample)
  const shape = { width: request.width, height: request.height, channels: 1, bitsPerSample: 8 as const }
  const raster = orient(await collect(bands, shape, signal), request.rotation.mirror, request.rotation.degrees)
  signal?.throwIfAborted()
  if (request.format === 'png') return encodeBilevelPng(raster)
  if (request.format === 'tif') return encodeBilevelTiff(raster)
  return encodeBands(rasterBands(raster), raster, request.format)
}

/**
 * What rendering `request` costs (spec/http.md §8): the source band read from the chosen level
 * and its tiles' payloads, the resampler's rows, a gray band, the raster twice when it is
 * rotated or mirrored, the writer's memory and the encoded output, which is held whole (its
 * length is sent first). Pixels: those read from the level and those written.
 */
export function renderCost(
  image: TesseraImage,
  request: Pick<ResolvedRequest, 'region' | 'width' | 'height' | 'rotation' | 'quality' | 'format'>,
): Cost {
  const { manifest } = image
  const choice = chooseLevel(image, request.region, request.width, request.height)
  const source = { channels: manifest.channels, bitsPerSample: manifest.bitsPerSample }
  const sourceBytes = manifest.channels * (manifest.bitsPerSample / 8)
  const bitonal = request.quality === 'bitonal'
  const channels = bitonal
    ? 1
    : request.quality === 'gray' && manifest.channels >= 3
      ? manifest.channels === 4
        ? 2
        : 1
      : manifest.channels
  const output = { channels, bitsPerSample: bitonal ? 8 : manifest.bitsPerSample }
  const pixels = request.width * request.height
  const raster = pixels * channels * (output.bitsPerSample / 8)
  const read = readBytes(choice.source.width, choice.source.height, manifest.tileSize, source)
  // The resampler's two rows of float64 accumulators and its output band (at most 1 MiB).
  const resampled = choice.exact ? 0 : 2 * request.width * manifest.channels * 8 + 2 ** 20
  const outputBand = choice.exact ? Math.min(choice.source.height, manifest.tileSize) * choice.source.width * sourceBytes : 2 ** 20
  const gray = channels === manifest.channels ? 0 : outputBand
  // A bitonal image is always collected whole (and packed at an eighth of that).
  const oriented = (request.rotation.mirror || request.rotation.degrees !== 0 ? 2 * raster : 0) + (bitonal ? 2 * raster : 0)
  const writer = writerBytes(request.format, pixels, output, 'deflate')
  // png and tif: the compressed chunks, collected (at most the raster, plus headers).
  const encoded = request.format === 'png' || request.format === 'tif' ? Math.ceil(1.01 * raster) + 2 ** 16 : 0
  return {
    memory: RESPONSE_BYTES + read + resampled + gray + oriented + writer + encoded,
    pixels: choice.source.width * choice.source.height + pixels,
  }
}

/**
 * The size limits info.json states for `image` (§5.2): the server's, with `maxArea` lowered, if
 * need be, so that any request within them fits `memory` bytes (the heavy lane's budget): the
 * largest area whose largest full image (the image itself, or as large as the limits allow
 * when upscaling is served), in the costliest format and quality and rotated, still fits.
 */
export function imageLimits(image: TesseraImage, limits: SizeLimits, memory: number): SizeLimits {
  const { width, height } = image.manifest
  const fits = (area: number) => {
    const [w, h] = largestSize(width, height, { ...limits, maxArea: area }, limits.upscaling)
    if (w * h > area) return false // an area too small for the image's aspect ratio
    const region = { x: 0, y: 0, width, height }
    const rotation = { mirror: false, degrees: 90 } as const
    const worst = IIIF_FORMATS.flatMap((format) =>
      (['default', 'bitonal'] as const).map((quality) => renderCost(image, { region, width: w, height: h, rotation, quality, format })),
    )
    return Math.max(...worst.map((cost) => cost.memory)) <= memory
  }
  if (fits(limits.maxArea)) return limits
  let low = 1
  let high = limits.maxArea
  while (high - low > 1) {
    const mid = Math.floor((low + high) / 2)
    if (fits(mid)) low = mid
    else high = mid
  }
  return { ...limits, maxArea: low }
}
