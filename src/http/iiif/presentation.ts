/**
 * IIIF Presentation API 3.0 documents (https://iiif.io/api/presentation/3.0/): a Manifest of
 * one image (one Canvas painted by its Image API service), a Manifest of a dataset's entries
 * (one Canvas each, in name order), and Collections: of a directory's subdirectories and
 * entries, or of the pages of a large dataset (Presentation 3.0 has no paging within one
 * Manifest, §5.3: a Collection of Manifests is how a long sequence stays loadable). Pure: the
 * routes (routes/presentation.ts) read the store and hand the facts in.
 *
 * Canvases point at image services by image CID, whatever name the document was asked by: a
 * Canvas states the image's size, and only the CID is sure to keep it.
 */
import type { TesseraImage } from '../../image.js'
import type { SizeLimits } from './params.js'
import { advertisedLevels } from './render.js'

/** Presentation API 3.0 context (§4.6). */
export const PRESENTATION_CONTEXT = 'http://iiif.io/api/presentation/3/context.json'

/** Canvases per Manifest (a page of a dataset) and items per Collection page. */
export const PAGE_SIZE = 1000

/** Longest side of a thumbnail, at most: the largest pyramid level that fits (never an upscale). */
const THUMBNAIL_SIDE = 256

/** A language map (§4.1 label): names carry no language, Tessera's own words are English. */
type LanguageMap = Record<string, string[]>
const none = (text: string): LanguageMap => ({ none: [text] })
const en = (text: string): LanguageMap => ({ en: [text] })

/** What a Canvas needs of an image. */
export interface CanvasImage {
  readonly image: TesseraImage
  /** The service's base URI (Image API §3): `{server}/iiif/3/{cid}`. */
  readonly service: string
  /** The Image API limits of this image (info.json's maxWidth, maxHeight, maxArea). */
  readonly limits: SizeLimits
  readonly label: string
}

/** The output size of `full/max` within the limits (Image API §4.2), the painting body's size. */
function maxSize(image: TesseraImage, limits: SizeLimits): [number, number] {
  const { width, height } = image.manifest
  const scale = Math.min(1, limits.maxWidth / width, limits.maxHeight / height, Math.sqrt(limits.maxArea / (width * height)))
  if (scale >= 1) return [width, height]
  return [Math.max(1, Math.floor(width * scale + 1e-9)), Math.max(1, Math.floor(height * scale + 1e-9))]
}

/** The image service reference (§3.2 `service`, Image API §5 properties a client needs without fetching info.json). */
function serviceOf(image: CanvasImage) {
  return [{ id: image.service, type: 'ImageService3', profile: 'level2' }]
}

/**
 * A thumbnail (§3.2): a pyramid level's size, so that it is served from stored pixels (a
 * level's exact size needs no resampling), at most THUMBNAIL_SIDE on its long side, or the
 * smallest level. No service: viewers fetch this URL as it is, not a size of their choosing.
 */
export function thumbnailOf(image: CanvasImage) {
  const fits = (w: number, h: number) => w <= image.limits.maxWidth && h <= image.limits.maxHeight && w * h <= image.limits.maxArea
  const levels = advertisedLevels(image.image).filter((l) => fits(l.width, l.height))
  const level = levels.find((l) => Math.max(l.width, l.height) <= THUMBNAIL_SIDE) ?? levels.at(-1)
  const [width, height] = level === undefined ? maxSize(image.image, image.limits) : [level.width, level.height]
  return [{ id: `${image.service}/full/${width},${height}/0/default.jpg`, type: 'Image', format: 'image/jpeg', width, height }]
}

/** The Canvas `id` paints `image` on (§5.4), with its one painting Annotation (§5.5, §6.1). */
export function canvasOf(id: string, image: CanvasImage) {
  const { width, height } = image.image.manifest
  const [bodyWidth, bodyHeight] = maxSize(image.image, image.limits)
  return {
    id,
    type: 'Canvas',
    label: none(image.label),
    width,
    height,
    thumbnail: thumbnailOf(image),
    items: [
      {
        id: `${id}/page`,
        type: 'AnnotationPage',
        items: [
          {
            id: `${id}/page/image`,
            type: 'Annotation',
            motivation: 'painting',
            body: {
              id: `${image.service}/full/max/0/default.jpg`,
              type: 'Image',
              format: 'image/jpeg',
              width: bodyWidth,
              height: bodyHeight,
              service: serviceOf(image),
            },
            target: id,
          },
        ],
      },
    ],
  }
}

/** Metadata pairs (§3.1 `metadata`) describing a stored image. */
function imageMetadata(image: TesseraImage) {
  const m = image.manifest
  const pairs: Array<[string, string]> = [
    ['CID', image.cid.toString()],
    ['Size', `${m.width} × ${m.height} px`],
    ['Pixels', `${m.colorModel}, ${m.bitsPerSample} bits per sample`],
    ['Tiles', `${m.tileSize} × ${m.tileSize}, ${m.levels.length} stored level(s)`],
  ]
  if (m.metadata.source !== undefined) pairs.push(['Source', `${m.metadata.source.name ?? '(unnamed)'} (${m.metadata.source.format})`])
  return pairs.map(([label, value]) => ({ label: en(label), value: none(value) }))
}

/** Links every document carries: the context and, for people, the server's own pages. */
export interface DocumentLinks {
  /** The document's own URL. */
  readonly id: string
  /** An HTML page showing the same thing (§3.3 `homepage`), if any. */
  readonly homepage?: string
  /** The Collection this document is a page or part of (§3.3 `partOf`). */
  readonly partOf?: { readonly id: string; readonly label: string }
}

function linking(links: DocumentLinks) {
  return {
    ...(links.homepage === undefined
      ? {}
      : { homepage: [{ id: links.homepage, type: 'Text', label: en('Tessera viewer'), format: 'text/html' }] }),
    ...(links.partOf === undefined ? {} : { partOf: [{ id: links.partOf.id, type: 'Collection', label: none(links.partOf.label) }] }),
  }
}

/** The Manifest of one image: one Canvas, its service, thumbnail, label and the image's facts as metadata. */
export function imageManifest(links: DocumentLinks & { readonly manifestJson: string }, canvasId: string, image: CanvasImage) {
  return {
    '@context': PRESENTATION_CONTEXT,
    id: links.id,
    type: 'Manifest',
    label: none(image.label),
    metadata: imageMetadata(image.image),
    thumbnail: thumbnailOf(image),
    ...linking(links),
    seeAlso: [{ id: links.manifestJson, type: 'Dataset', format: 'application/json', label: en('Tessera manifest (dag-json)') }],
    items: [canvasOf(canvasId, image)],
  }
}

/** A Manifest of dataset entries, one Canvas each; `first` is the 1-based position of the first in the whole listing. */
export function entriesManifest(
  links: DocumentLinks & { readonly label: string; readonly summary: string },
  canvasBase: string,
  first: number,
  images: readonly CanvasImage[],
) {
  return {
    '@context': PRESENTATION_CONTEXT,
    id: links.id,
    type: 'Manifest',
    label: none(links.label),
    summary: en(links.summary),
    ...(images.length === 0 ? {} : { thumbnail: thumbnailOf(images[0]!) }),
    ...linking(links),
    // §3.2: a sequence of frames (a screenshot archive, a time series) is read in order.
    behavior: ['individuals'],
    items: images.map((image, i) => canvasOf(`${canvasBase}/${first + i}`, image)),
  }
}

/** An item of a Collection (§5.2): a Manifest or a Collection, by reference. */
export interface CollectionItem {
  readonly id: string
  readonly type: 'Manifest' | 'Collection'
  readonly label: string
  readonly thumbnail?: ReturnType<typeof thumbnailOf>
}

/** A Collection of `items` (§5.2). */
export function collection(links: DocumentLinks & { readonly label: string; readonly summary: string }, items: readonly CollectionItem[]) {
  return {
    '@context': PRESENTATION_CONTEXT,
    id: links.id,
    type: 'Collection',
    label: none(links.label),
    summary: en(links.summary),
    ...linking(links),
    items: items.map((item) => ({
      id: item.id,
      type: item.type,
      label: none(item.label),
      ...(item.thumbnail === undefined ? {} : { thumbnail: item.thumbnail }),
    })),
  }
}
