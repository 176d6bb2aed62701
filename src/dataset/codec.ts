/**
 * Dataset blocks (spec/dataset.md §4-§5): the version root and the nodes of the entry tree,
 * as dag-cbor, with validation on decode. Pure: no I/O.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { IntegrityError } from '../errors.js'
import { type Block, type CID, cborBlock, DAG_CBOR, decodeCbor } from '../format/block.js'
import { fieldChecks } from '../format/fields.js'
import type { DatasetEntry, DatasetVersion, TreeChild, TreeNode } from './interface.js'
import { assertEntryName, compareNames } from './names.js'

const { invalid, record, int, link: dagLink } = fieldChecks('dataset')

/** Format version of dataset blocks (`tesseraDataset`). */
export const DATASET_FORMAT = 1

/** Highest tree level a reader accepts: 2^(7·32) entries is far beyond any store. */
export const MAX_TREE_LEVEL = 32

/** The dag-cbor value of an entry (keys as in the schema). */
export function entryValue(entry: DatasetEntry): Record<string, unknown> {
  return { name: entry.name, image: entry.image, size: entry.size, mtime: entry.mtime, sha256: entry.sha256 }
}

/** The dag-cbor value of a branch node's child link. */
export function childValue(child: TreeChild): Record<string, unknown> {
  return { first: child.first, count: child.count, node: child.node }
}

/** Encoded byte length of one entry or child inside a node. */
export function itemBytes(value: Record<string, unknown>): number {
  return dagCbor.encode(value).length
}

/** Encodes a tree node. */
export function encodeNode(node: TreeNode): Block {
  if ('entries' in node) return cborBlock({ level: 0, entries: node.entries.map(entryValue) })
  return cborBlock({ level: node.level, children: node.children.map(childValue) })
}

/** Encodes a version root (absent optional fields omitted). */
export function encodeVersion(version: DatasetVersion): Block {
  const value: Record<string, unknown> = {
    tesseraDataset: version.tesseraDataset,
    name: version.name,
    count: version.count,
    time: version.time,
    note: version.note,
  }
  if (version.entries !== undefined) value.entries = version.entries
  if (version.previous !== undefined) value.previous = version.previous
  if (version.checkpoint === true) value.checkpoint = true
  return cborBlock(value)
}

/** Whether a decoded dag-cbor value looks like a dataset version root (has `tesseraDataset`). */
export function isVersionValue(value: unknown): boolean {
  return value !== null && typeof value === 'object' && 'tesseraDataset' in value
}

/** Decodes and validates a version root; IntegrityError if it is not one. */
export function decodeVersion(bytes: Uint8Array): DatasetVersion {
  const value = record(decodeCbor(bytes), 'dataset version')
  const format = int(value.tesseraDataset, 'tesseraDataset', 1)
  if (format !== DATASET_FORMAT) throw new IntegrityError(`Unsupported dataset format version ${format}`)
  if (typeof value.name !== 'string') throw invalid('name')
  if (typeof value.note !== 'string') throw invalid('note')
  const count = int(value.count, 'count', 0)
  const time = int(value.time, 'time', 0)
  const version: { -readonly [K in keyof DatasetVersion]: DatasetVersion[K] } = {
    tesseraDataset: format,
    name: value.name,
    count,
    time,
    note: value.note,
  }
  if (value.entries !== undefined) version.entries = link(value.entries, 'entries')
  if ((version.entries === undefined) !== (count === 0)) throw invalid('entries')
  if (value.previous !== undefined) version.previous = link(value.previous, 'previous')
  if (value.checkpoint !== undefined) {
    if (value.checkpoint !== true) throw invalid('checkpoint')
    version.checkpoint = true
  }
  return version
}

/** Decodes and validates a tree node; IntegrityError if it is not one. */
export function decodeNode(bytes: Uint8Array): TreeNode {
  const value = record(decodeCbor(bytes), 'dataset node')
  const level = int(value.level, 'level', 0, MAX_TREE_LEVEL)
  if (level === 0) {
    if (!Array.isArray(value.entries) || value.entries.length === 0 || value.children !== undefined) throw invalid('entries')
    const entries = value.entries.map(decodeEntry)
    for (let i = 1; i < entries.length; i++) if (compareNames(entries[i - 1]!.name, entries[i]!.name) >= 0) throw invalid('entries order')
    return { level: 0, entries }
  }
  if (!Array.isArray(value.children) || value.children.length === 0 || value.entries !== undefined) throw invalid('children')
  const children = value.children.map((item: unknown): TreeChild => {
    const child = record(item, 'child')
    if (typeof child.first !== 'string') throw invalid('child.first')
    return { first: child.first, count: int(child.count, 'child.count', 1), node: link(child.node, 'child.node') }
  })
  for (let i = 1; i < children.length; i++)
    if (compareNames(children[i - 1]!.first, children[i]!.first) >= 0) throw invalid('children order')
  return { level, children }
}

function decodeEntry(item: unknown): DatasetEntry {
  const value = record(item, 'entry')
  if (typeof value.name !== 'string') throw invalid('entry.name')
  try {
    assertEntryName(value.name)
  } catch (cause) {
    throw new IntegrityError('Invalid dataset: bad entry.name', { cause })
  }
  if (!(value.sha256 instanceof Uint8Array) || value.sha256.length !== 32) throw invalid('entry.sha256')
  return {
    name: value.name,
    image: link(value.image, 'entry.image'),
    size: int(value.size, 'entry.size', 0),
    mtime: int(value.mtime, 'entry.mtime', Number.MIN_SAFE_INTEGER),
    sha256: value.sha256,
  }
}

function link(value: unknown, field: string): CID {
  return dagLink(value, DAG_CBOR, field)
}
