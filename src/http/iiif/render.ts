/**
 * Producing IIIF images and image information from a stored image: the pyramid level is the
 * smallest one that still has at least the output's pixels, only the tiles under the region
 * are read, and a request that is exactly a tile of a level (what viewers ask for) is served
 * from that level's pixels without resampling.
 */
import { type Band, colorModelOf, formatOfExtension, pixelFormat, pyramidSizes, type Region, type TesseraImage } from '../../image.js'
import type { IiifFormat, ResolvedRequest, SizeLimits } from './params.js'
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
    extraQualities: gray ? ['gray'] : ['color', 'gray'],
    extraFeatures: ['mirroring', 'profileLinkHeader', 'canonicalLinkHeader', ...(limits.upscaling ? ['sizeUpscaling'] : [])],
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

/** The output pixels of a resolved request, before quality and rotation. */
export async function renderPixels(
  image: TesseraImage,
  request: Pick<ResolvedRequest, 'region' | 'width' | 'height'>,
  options: { signal?: AbortSignal; reader?: TesseraImage['reader'] } = {},
): Promise<Raster> {
  const { manifest } = image
  const reader = options.reader ?? image.reader
  const choice = chooseLevel(image, request.region, request.width, request.height)
  const bands = reader.bands(choice.source, { level: choice.level, signal: options.signal })
  const shape = { width: request.width, height: request.height, channels: manifest.channels, bitsPerSample: manifest.bitsPerSample }
  const output: AsyncIterable<Band> = choice.exact
    ? bands
    : resampleBands(
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
  return collect(output, shape, options.signal)
}

/**
 * Encodes a raster with the output table's writer of a IIIF format (its extension); `icc` is
 * embedded (png, tif) when the colours are the stored ones. tif is deflate, not zstd: every
 * TIFF reader (and sharp's libvips) has it.
 */
export async function encodeRaster(raster: Raster, format: IiifFormat, icc?: Uint8Array): Promise<Uint8Array> {
  const init = {
    width: raster.width,
    height: raster.height,
    format: pixelFormat(colorModelOf(raster.channels), raster.bitsPerSample),
    ...(icc === undefined ? {} : { icc }),
    compression: 'deflate' as const,
    tileSize: 256,
    predictor: 2 as const,
    zstdLevel: 3,
  }
  const parts: Uint8Array[] = []
  for await (const chunk of formatOfExtension(format)!.write(init, rasterBands(raster))) parts.push(chunk)
  return new Uint8Array(Buffer.concat(parts))
}

/** The encoded image for a resolved request: pixels, gray, mirror and rotation, format (§4.6 order). */
export async function renderImage(image: TesseraImage, request: ResolvedRequest, signal?: AbortSignal): Promise<Uint8Array> {
  let raster = await renderPixels(image, request, { signal })
  const toGrayscale = request.quality === 'gray' && raster.channels >= 3
  if (toGrayscale) raster = toGray(raster)
  raster = orient(raster, request.rotation.mirror, request.rotation.degrees)
  signal?.throwIfAborted()
  // An RGB profile does not describe gray pixels: only the stored colours keep it.
  const iccCid = image.manifest.metadata.icc
  const icc = iccCid !== undefined && !toGrayscale ? await image.reader.store.get(iccCid, { signal }) : undefined
  return encodeRaster(raster, request.format, icc)
}
