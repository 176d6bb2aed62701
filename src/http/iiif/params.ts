/**
 * IIIF Image API 3.0 request parameters (https://iiif.io/api/image/3.0/ §4): parsing of
 * region, size, rotation, quality and format (syntax only, no I/O), then their resolution
 * against an image's size and the server's limits into a pixel region, an output size and the
 * canonical URI path (§4.8). Pure: tested against the specification's own examples.
 */
import { InvalidArgumentError, InvalidRegionError, LimitError } from '../../errors.js'
import type { Region } from '../../image.js'
import { HttpError } from '../errors.js'

/** §4.1 Region. */
export type RegionParam =
  | { readonly kind: 'full' }
  | { readonly kind: 'square' }
  | { readonly kind: 'px'; readonly x: number; readonly y: number; readonly w: number; readonly h: number }
  | { readonly kind: 'pct'; readonly x: number; readonly y: number; readonly w: number; readonly h: number }

/** §4.2 Size; `upscale` is the `^` prefix. */
export type SizeParam = { readonly upscale: boolean } & (
  | { readonly kind: 'max' }
  | { readonly kind: 'w'; readonly w: number }
  | { readonly kind: 'h'; readonly h: number }
  | { readonly kind: 'pct'; readonly n: number }
  | { readonly kind: 'wh'; readonly w: number; readonly h: number }
  | { readonly kind: 'confined'; readonly w: number; readonly h: number }
)

/** §4.3 Rotation: mirroring (`!`) then clockwise degrees, a multiple of 90 (others are not supported). */
export interface RotationParam {
  readonly mirror: boolean
  readonly degrees: 0 | 90 | 180 | 270
}

/** §4.4 Qualities this server produces (bitonal.ts for `bitonal`). */
export type Quality = 'default' | 'color' | 'gray' | 'bitonal'
const QUALITIES: readonly Quality[] = ['default', 'color', 'gray', 'bitonal']

/**
 * §4.5 Formats this server produces: jpg and png (level 2), tif and webp (extraFormats). Each
 * is the extension of an output format of the facade's table, whose media type it has.
 */
export const IIIF_FORMATS = ['jpg', 'png', 'tif', 'webp'] as const
export type IiifFormat = (typeof IIIF_FORMATS)[number]

/** A parsed image request. */
export interface ImageRequest {
  readonly region: RegionParam
  readonly size: SizeParam
  readonly rotation: RotationParam
  readonly quality: Quality
  readonly format: IiifFormat
}

/** Size limits of the service, as info.json states them (§5.2). */
export interface SizeLimits {
  readonly maxWidth: number
  readonly maxHeight: number
  readonly maxArea: number
  /** Whether `^` sizes that need upscaling are served (else 501, §4.2). */
  readonly upscaling: boolean
}

/** A request resolved against an image: what to cut, how big to make it, and its canonical path. */
export interface ResolvedRequest {
  /** The region of the full image, clipped to it (§4.1). */
  readonly region: Region
  /** Output size before rotation. */
  readonly width: number
  readonly height: number
  readonly rotation: RotationParam
  readonly quality: Quality
  readonly format: IiifFormat
  /** `{region}/{size}/{rotation}/{quality}.{format}` in canonical form (§4.8). */
  readonly canonical: string
}

// §4.7: floating point values are decimal digits and "." only (no sign, no exponent).
const INTEGER = /^\d{1,16}$/
const DECIMAL = /^(\d{1,16}(\.\d{1,16})?|\.\d{1,16})$/

function integer(text: string, what: string): number {
  const value = Number(text)
  if (!INTEGER.test(text) || !Number.isSafeInteger(value)) throw bad(`${what} must be a non-negative integer, not ${quote(text)}`)
  return value
}

function decimal(text: string, what: string): number {
  if (!DECIMAL.test(text)) throw bad(`${what} must be a non-negative decimal number, not ${quote(text)}`)
  return Number(text)
}

function bad(message: string): InvalidArgumentError {
  return new InvalidArgumentError(message)
}

function quote(text: string): string {
  return JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}...` : text)
}

/** Parses the region parameter (§4.1). */
export function parseRegion(text: string): RegionParam {
  if (text === 'full') return { kind: 'full' }
  if (text === 'square') return { kind: 'square' }
  const pct = text.startsWith('pct:')
  const parts = (pct ? text.slice(4) : text).split(',')
  if (parts.length !== 4) throw bad(`Region must be full, square, x,y,w,h or pct:x,y,w,h, not ${quote(text)}`)
  const [x, y, w, h] = parts.map((part, i) => (pct ? decimal : integer)(part, `Region ${'xywh'[i]}`)) as [number, number, number, number]
  // §4.1: a region of zero width or height is an error.
  if (w === 0 || h === 0) throw new InvalidRegionError(`Region ${text} has zero width or height`)
  return pct ? { kind: 'pct', x, y, w, h } : { kind: 'px', x, y, w, h }
}

/** Parses the size parameter (§4.2). */
export function parseSize(text: string): SizeParam {
  const upscale = text.startsWith('^')
  const rest = upscale ? text.slice(1) : text
  if (rest === 'max') return { upscale, kind: 'max' }
  if (rest.startsWith('pct:')) return { upscale, kind: 'pct', n: decimal(rest.slice(4), 'Size percentage') }
  const confined = rest.startsWith('!')
  const parts = (confined ? rest.slice(1) : rest).split(',')
  if (parts.length !== 2) throw bad(`Size must be max, w,, ,h, w,h, !w,h or pct:n (optionally after ^), not ${quote(text)}`)
  const [w, h] = parts as [string, string]
  if (confined || (w !== '' && h !== '')) {
    const kind = confined ? 'confined' : 'wh'
    return { upscale, kind, w: integer(w, 'Size width'), h: integer(h, 'Size height') }
  }
  if (w !== '') return { upscale, kind: 'w', w: integer(w, 'Size width') }
  if (h !== '') return { upscale, kind: 'h', h: integer(h, 'Size height') }
  throw bad(`Size ${quote(text)} gives neither width nor height`)
}

/** Parses the rotation parameter (§4.3). Only multiples of 90 are supported; others are a 400 (§4.3). */
export function parseRotation(text: string): RotationParam {
  const mirror = text.startsWith('!')
  const degrees = decimal(mirror ? text.slice(1) : text, 'Rotation')
  if (degrees > 360) throw bad(`Rotation must be from 0 to 360, not ${quote(text)}`)
  if (degrees % 90 !== 0) throw bad(`Rotation ${quote(text)} is not supported: only multiples of 90 degrees`)
  return { mirror, degrees: (degrees % 360) as 0 | 90 | 180 | 270 }
}

/** Parses `{quality}.{format}` (§4.4, §4.5); an unsupported value of either is a 400. */
export function parseQualityFormat(text: string): { quality: Quality; format: IiifFormat } {
  const dot = text.lastIndexOf('.')
  if (dot < 0) throw bad(`Expected {quality}.{format}, not ${quote(text)}`)
  const quality = text.slice(0, dot)
  const format = text.slice(dot + 1)
  if (!(QUALITIES as readonly string[]).includes(quality)) {
    throw bad(`Quality ${quote(quality)} is not supported: use ${QUALITIES.join(', ')}`)
  }
  if (!(IIIF_FORMATS as readonly string[]).includes(format))
    throw bad(`Format ${quote(format)} is not supported: use jpg, png, tif or webp`)
  return { quality: quality as Quality, format: format as IiifFormat }
}

/** Parses the four path segments of an image request; throws 400 errors, does no I/O. */
export function parseImageRequest(region: string, size: string, rotation: string, qualityFormat: string): ImageRequest {
  return { region: parseRegion(region), size: parseSize(size), rotation: parseRotation(rotation), ...parseQualityFormat(qualityFormat) }
}

/** The pixel region of a full `width` x `height` image that `param` names, clipped to the image (§4.1). */
export function resolveRegion(param: RegionParam, width: number, height: number): Region {
  let x: number
  let y: number
  let right: number
  let bottom: number
  switch (param.kind) {
    case 'full':
      return { x: 0, y: 0, width, height }
    case 'square': {
      // The server may place the square anywhere along the longer side: centred.
      const side = Math.min(width, height)
      return { x: Math.floor((width - side) / 2), y: Math.floor((height - side) / 2), width: side, height: side }
    }
    case 'px':
      x = param.x
      y = param.y
      right = param.x + param.w
      bottom = param.y + param.h
      break
    case 'pct':
      // Edges are rounded, not widths, so that abutting percentage regions abut in pixels:
      // pct:41.6,7.5,40,70 of 300x200 is 125,15,120,140 (the specification's example).
      x = Math.round((param.x * width) / 100)
      y = Math.round((param.y * height) / 100)
      right = Math.round(((param.x + param.w) * width) / 100)
      bottom = Math.round(((param.y + param.h) * height) / 100)
      break
  }
  right = Math.min(right, width)
  bottom = Math.min(bottom, height)
  if (x >= width || y >= height) throw new InvalidRegionError(`Region lies outside the ${width}x${height} image`)
  if (right <= x || bottom <= y) throw new InvalidRegionError('Region is empty once converted to pixels')
  return { x, y, width: right - x, height: bottom - y }
}

/** The largest scale (at most `cap`) at which a `w` x `h` region fits the limits. */
function limitScale(w: number, h: number, limits: SizeLimits, cap: number): number {
  return Math.min(cap, limits.maxWidth / w, limits.maxHeight / h, Math.sqrt(limits.maxArea / (w * h)))
}

/**
 * The largest size of a `w` x `h` region within the limits, keeping its aspect ratio: at most
 * the region itself, or (with `upscale`) as large as the limits allow. `max` is the first;
 * the second bounds every `^` size a client may ask for (render.ts, imageLimits).
 */
export function largestSize(w: number, h: number, limits: SizeLimits, upscale: boolean): [number, number] {
  return scaled(w, h, limitScale(w, h, limits, upscale ? Number.POSITIVE_INFINITY : 1))
}

/** `w` x `h` scaled by `scale`, rounded down so that a limit-bound size stays within its limits; at least 1x1. */
function scaled(w: number, h: number, scale: number): [number, number] {
  if (scale === 1) return [w, h]
  return [Math.max(1, Math.floor(w * scale + 1e-9)), Math.max(1, Math.floor(h * scale + 1e-9))]
}

/**
 * The output size for `size` applied to a `rw` x `rh` region (§4.2), checked against the
 * limits: upscaling without `^` is a 400, upscaling when the server does not support it a
 * 501, a result under 1 pixel or over the limits a 400.
 */
export function resolveSize(size: SizeParam, rw: number, rh: number, limits: SizeLimits): [number, number] {
  // A dimension derived from the other keeps the aspect ratio "as closely as possible"; it is
  // at least 1 pixel (only an explicitly requested 0 is an error).
  const derived = (value: number) => Math.max(1, Math.round(value))
  let w: number
  let h: number
  switch (size.kind) {
    case 'max':
      // `^max` is `max`: the region at full size, within the limits. The specification lets
      // `^max` grow the region up to maxWidth/maxHeight/maxArea, but those are this server's
      // memory bounds, not a size anyone asked for, and the official validator (size_up) and
      // viewers read `^max` of a 1000x1000 image as 1000x1000 (spec/http.md, IIIF).
      ;[w, h] = largestSize(rw, rh, limits, false)
      break
    case 'w':
      w = size.w
      h = derived((rh * size.w) / rw)
      break
    case 'h':
      w = derived((rw * size.h) / rh)
      h = size.h
      break
    case 'pct':
      if (size.n === 0) throw new LimitError('Size pct:0 gives an empty image')
      w = derived((rw * size.n) / 100)
      h = derived((rh * size.n) / 100)
      break
    case 'wh':
      w = size.w
      h = size.h
      break
    case 'confined': {
      if (size.w === 0 || size.h === 0) throw new LimitError(`Size !${size.w},${size.h} gives an empty image`)
      // As large as possible within w x h and the limits. Without ^ a box larger than the
      // region on both sides asks for an upscale, which is a 400 below (§4.2: "sizes not
      // prefixed with ^ that result in a scaled region dimensions greater than the pixel width
      // and height of the extracted region are errors"; the validator's size_noup).
      const scale = Math.min(size.w / rw, size.h / rh)
      w = Math.min(size.w, derived(rw * scale))
      h = Math.min(size.h, derived(rh * scale))
      if (w > limits.maxWidth || h > limits.maxHeight || w * h > limits.maxArea) [w, h] = scaled(rw, rh, limitScale(rw, rh, limits, scale))
      break
    }
  }
  if (w < 1 || h < 1) throw new LimitError(`Size ${w}x${h} is empty`)
  if (w > rw || h > rh) {
    if (!size.upscale) {
      throw new InvalidArgumentError(`Size ${w}x${h} is larger than the ${rw}x${rh} region: prefix the size with ^ to upscale`)
    }
    if (!limits.upscaling) throw new HttpError(501, 'ERR_NOT_IMPLEMENTED', 'Upscaling (^) is not supported by this server')
  }
  if (w > limits.maxWidth || h > limits.maxHeight || w * h > limits.maxArea) {
    throw new LimitError(
      `Size ${w}x${h} exceeds the server's limits (maxWidth ${limits.maxWidth}, maxHeight ${limits.maxHeight}, maxArea ${limits.maxArea})`,
    )
  }
  return [w, h]
}

/** Resolves a parsed request against a `width` x `height` image (§4.1, §4.2) and gives its canonical path (§4.8). */
export function resolveRequest(request: ImageRequest, width: number, height: number, limits: SizeLimits): ResolvedRequest {
  const region = resolveRegion(request.region, width, height)
  const [w, h] = resolveSize(request.size, region.width, region.height, limits)
  const full = region.x === 0 && region.y === 0 && region.width === width && region.height === height
  const canonicalRegion = full ? 'full' : `${region.x},${region.y},${region.width},${region.height}`
  const upscaled = w > region.width || h > region.height
  const [maxW, maxH] = scaled(region.width, region.height, limitScale(region.width, region.height, limits, 1))
  let canonicalSize: string
  if (!upscaled && w === maxW && h === maxH) canonicalSize = 'max'
  else canonicalSize = `${upscaled ? '^' : ''}${w},${h}`
  const rotation = `${request.rotation.mirror ? '!' : ''}${request.rotation.degrees}`
  return {
    region,
    width: w,
    height: h,
    rotation: request.rotation,
    quality: request.quality,
    format: request.format,
    canonical: `${canonicalRegion}/${canonicalSize}/${rotation}/${request.quality}.${request.format}`,
  }
}
