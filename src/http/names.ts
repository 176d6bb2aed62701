/**
 * Dataset names in URLs (spec/http.md, Names). A route's identifier is one path segment: a CID,
 * or a dataset entry `NAME/path` with its slashes encoded as %2F (the router decodes them).
 * `/images/...` and `/view/...` also take the entry's path with plain slashes, as a person types
 * it: before routing, rewriteNamedUrl folds those segments into one. IIIF identifiers are not
 * folded: the Image API requires a slash in an identifier to be encoded (§9), and an unencoded
 * one to fail (the validator's id_error_escapedslash).
 */

import type { Target } from './context.js'

/** The last segments of an `/images/{identifier}/...` URL that name a representation, not an entry. */
const IMAGE_ACTIONS = new Set(['info', 'crop', 'export'])

/** How many trailing segments of an image URL are its action: `info`, `crop`, `export`, `tiles/L/C/R`; 0 for the manifest. */
function actionLength(segments: readonly string[]): number {
  const n = segments.length
  // Whatever follows `tiles`: the route checks the numbers (a 400 for `tiles/0/-1/0`).
  if (n >= 5 && segments[n - 4] === 'tiles') return 4
  if (n >= 2 && IMAGE_ACTIONS.has(segments[n - 1]!)) return 1
  return 0
}

/**
 * `url` with the identifier of `/images/NAME/a/b.png/crop?...` or `/view/NAME/a/b.png` folded
 * into one segment (`NAME%2Fa%2Fb.png`); any other URL unchanged. For images, trailing `info`,
 * `crop`, `export` and `tiles/L/C/R` are the representation asked for, so an entry whose own
 * last segment is one of those words is reached with its slashes encoded.
 */
export function rewriteNamedUrl(url: string): string {
  const query = url.indexOf('?')
  const path = query < 0 ? url : url.slice(0, query)
  const rest = query < 0 ? '' : url.slice(query)
  let head: string
  let segments: string[]
  let tail: string[] = []
  if (path.startsWith('/images/')) {
    head = '/images/'
    segments = path.slice(head.length).split('/')
    const action = actionLength(segments)
    tail = segments.slice(segments.length - action)
    segments = segments.slice(0, segments.length - action)
  } else if (path.startsWith('/view/')) {
    head = '/view/'
    segments = path.slice(head.length).split('/')
  } else {
    return url
  }
  if (segments.length <= 1) return url
  return `${head}${[segments.join('%2F'), ...tail].join('/')}${rest}`
}

/** How many segments the identifier of a `/view/...` URL spans as the client sent it: the page's links climb that many levels. */
export function viewDepth(originalUrl: string): number {
  const path = originalUrl.split('?')[0]!
  return Math.max(1, path.slice('/view/'.length).split('/').length)
}

/**
 * Headers of a response about `target` under `/images/` (spec/http.md, Names): for a name,
 * Content-Location (RFC 9110 §8.7) is the same request by CID, whose response is immutable.
 */
export function targetHeaders(target: Target, url: string): Record<string, string> {
  if (!target.named) return {}
  // After rewriteNamedUrl the identifier is the third segment: /images/{identifier}/...
  const parts = url.split('/')
  parts[2] = target.cid
  return { 'content-location': parts.join('/') }
}
