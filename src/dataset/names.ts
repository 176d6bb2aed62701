/**
 * Names (spec/dataset.md §3, §7): dataset names, entry names, their order, and the specifiers
 * the CLI accepts wherever it accepts a CID: `CID`, `NAME`, `NAME/path`, `VERSION-CID/path`.
 */
import type { CID } from 'multiformats/cid'
import { InvalidArgumentError, type InvalidCidError } from '../errors.js'
import { parseCid } from '../format/block.js'

/** Prefix of the store references that hold dataset heads: `dataset/NAME`. */
export const DATASET_REF_PREFIX = 'dataset/'

/** Longest entry name, in UTF-8 bytes. */
export const MAX_ENTRY_NAME_BYTES = 4096

const DATASET_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$/

/** The store reference holding the head of dataset `name`. */
export function datasetRef(name: string): string {
  return `${DATASET_REF_PREFIX}${name}`
}

/** Throws InvalidArgumentError unless `name` is a valid dataset name (spec/dataset.md §3). */
export function assertDatasetName(name: string): void {
  if (typeof name !== 'string' || !DATASET_NAME.test(name)) {
    throw new InvalidArgumentError(
      `Expected a dataset name (1 to 100 of A-Z a-z 0-9 . _ -, not starting with . or -) but received ${JSON.stringify(String(name).slice(0, 120))}`,
    )
  }
  if (tryCid(name) !== undefined) {
    throw new InvalidArgumentError(`${JSON.stringify(name)} reads as a CID and cannot name a dataset`)
  }
}

/** Whether `name` is a valid dataset name. */
export function isDatasetName(name: string): boolean {
  return DATASET_NAME.test(name) && tryCid(name) === undefined
}

/**
 * Throws InvalidArgumentError unless `name` is a valid entry name: 1 to 4096 bytes of UTF-8,
 * '/'-separated segments, none empty, `.` or `..`, and no control characters.
 */
export function assertEntryName(name: string): void {
  const problem = entryNameProblem(name)
  if (problem !== undefined) {
    throw new InvalidArgumentError(`Expected an entry name but received ${JSON.stringify(String(name).slice(0, 200))}: ${problem}`)
  }
}

function entryNameProblem(name: string): string | undefined {
  if (typeof name !== 'string' || name.length === 0) return 'empty'
  const bytes = Buffer.from(name, 'utf8')
  if (bytes.length > MAX_ENTRY_NAME_BYTES) return `longer than ${MAX_ENTRY_NAME_BYTES} bytes`
  if (bytes.toString('utf8') !== name) return 'not well-formed Unicode'
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'control character'
  for (const segment of name.split('/')) {
    if (segment === '') return 'empty path segment (leading, trailing or double /)'
    if (segment === '.' || segment === '..') return `segment ${segment}`
  }
  return undefined
}

/**
 * Orders entry names by their UTF-8 bytes (= by code points), the order of the entry tree.
 * JavaScript's `<` compares UTF-16 code units, which differs for characters above U+FFFF.
 */
export function compareNames(a: string, b: string): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const ca = a.charCodeAt(i)
    const cb = b.charCodeAt(i)
    if (ca === cb) continue
    const sa = ca >= 0xd800 && ca <= 0xdfff
    const sb = cb >= 0xd800 && cb <= 0xdfff
    // A surrogate starts a code point above U+FFFF: greater than any BMP character.
    if (sa === sb) return ca - cb
    return sa ? 1 : -1
  }
  return a.length - b.length
}

/** What a specifier names. */
export type Specifier =
  | { readonly kind: 'cid'; readonly cid: CID }
  | {
      readonly kind: 'dataset'
      /** The dataset's name, or undefined when a version is named by its CID. */
      readonly name?: string
      readonly version?: CID
      /** An entry name or a directory prefix (without its trailing /); undefined: the whole dataset. */
      readonly path?: string
    }

/**
 * Parses a specifier: a CID; `NAME` (a dataset); `NAME/path` (an entry, or a directory of
 * entries); `CID/path` (in the dataset version whose root is CID). A string that is none of
 * these fails as a CID would (ERR_INVALID_CID).
 */
export function parseSpecifier(text: string): Specifier {
  const slash = typeof text === 'string' ? text.indexOf('/') : -1
  if (slash < 0) {
    const cid = tryCid(text)
    if (cid !== undefined) return { kind: 'cid', cid }
    if (DATASET_NAME.test(text)) return { kind: 'dataset', name: text }
    parseCid(text) // throws the InvalidCidError
    throw new InvalidArgumentError(`Cannot resolve ${JSON.stringify(text)}`)
  }
  const head = text.slice(0, slash)
  const rest = text.slice(slash + 1).replace(/\/+$/, '')
  if (rest !== '') assertEntryName(rest)
  const path = rest === '' ? {} : { path: rest }
  const version = tryCid(head)
  if (version !== undefined) return { kind: 'dataset', version, ...path }
  if (!DATASET_NAME.test(head)) {
    throw new InvalidArgumentError(`${JSON.stringify(text.slice(0, 200))} is neither a CID nor NAME/path with a valid dataset name`)
  }
  return { kind: 'dataset', name: head, ...path }
}

function tryCid(text: string): CID | undefined {
  try {
    return parseCid(text)
  } catch (error) {
    if ((error as InvalidCidError).code === 'ERR_INVALID_CID') return undefined
    throw error
  }
}
