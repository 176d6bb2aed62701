/**
 * The entry tree (spec/dataset.md §5): a dataset's entries sorted by name, cut into nodes of
 * at most 1 MiB. Where nodes begin depends on the names only: an entry whose name's sha2-256
 * starts with at least 7·r zero bits begins a new node at every level below r. So the tree is
 * a function of the entry set, whatever edits made it, and an edit rewrites only the nodes on
 * its path: versions share every other node (a probabilistic B-tree, like Merkle search trees
 * and prolly trees).
 *
 * `updateTree` feeds the new sequence of entries to a streaming chunker, but hands it whole
 * untouched subtrees when the chunker would provably rebuild them identically.
 */
import { createHash } from 'node:crypto'
import { IntegrityError } from '../errors.js'
import { type Block, type CID, MAX_BLOCK_BYTES } from '../format/block.js'
import type { AbortOptions, BlockStore } from '../store/interface.js'
import { decodeNode, encodeNode, entryValue, itemBytes } from './codec.js'
import type { DatasetEntry, TreeChild, TreeNode } from './interface.js'
import { compareNames } from './names.js'

/** Zero bits per level of the boundary rank: nodes hold 2^7 = 128 items on average. */
export const RANK_BITS = 7

// Room for a node's own fields around its items: map header, `level`, the list key and header.
const NODE_OVERHEAD = 64
/** Largest sum of item sizes in one node. */
export const NODE_BUDGET = MAX_BLOCK_BYTES - NODE_OVERHEAD
// Upper bound of a child link's encoding besides its `first` string: keys, count (<= 9 bytes),
// the CID (tag, header, 36-40 bytes). Fixed, so a boundary never depends on a count or a CID.
const CHILD_OVERHEAD = 80

/**
 * Boundary rank of a name: floor(leading zero bits of sha2-256(UTF-8 name) / bits). The format
 * fixes bits = RANK_BITS; tests pass fewer to get deep trees from few entries.
 */
export function rank(name: string, bits = RANK_BITS): number {
  const digest = createHash('sha256').update(name, 'utf8').digest()
  let zeros = 0
  for (const byte of digest) {
    if (byte === 0) {
      zeros += 8
      continue
    }
    zeros += Math.clz32(byte) - 24
    break
  }
  return Math.floor(zeros / bits)
}

/** Size counted against NODE_BUDGET for a branch's child link: its name's bytes + a fixed bound. */
export function childBudgetBytes(first: string): number {
  return Buffer.byteLength(first, 'utf8') + 3 + CHILD_OVERHEAD
}

/** Decoded nodes by CID, least recently used dropped first. */
export class NodeCache {
  readonly #store: BlockStore
  readonly #capacity: number
  readonly #nodes = new Map<string, TreeNode>()

  constructor(store: BlockStore, capacity = 256) {
    this.#store = store
    this.#capacity = capacity
  }

  /** The node whose block is `cid` (read, verified and validated). */
  async load(cid: CID, options?: AbortOptions): Promise<TreeNode> {
    const key = cid.toString()
    const cached = this.#nodes.get(key)
    if (cached !== undefined) {
      this.#nodes.delete(key)
      this.#nodes.set(key, cached)
      return cached
    }
    const node = decodeNode(await this.#store.get(cid, options))
    this.#nodes.set(key, node)
    if (this.#nodes.size > this.#capacity) this.#nodes.delete(this.#nodes.keys().next().value!)
    return node
  }

  /** A child node, checked against its link: one level down, same first name, same count. */
  async child(parentLevel: number, link: TreeChild, options?: AbortOptions): Promise<TreeNode> {
    const node = await this.load(link.node, options)
    const first = 'entries' in node ? node.entries[0]!.name : node.children[0]!.first
    const count = 'entries' in node ? node.entries.length : node.children.reduce((n, c) => n + c.count, 0)
    if (node.level !== parentLevel - 1 || first !== link.first || count !== link.count) {
      throw new IntegrityError(`Invalid dataset: node ${link.node} does not match its link`)
    }
    return node
  }
}

interface Item {
  readonly key: string
  readonly size: number
  readonly count: number
  readonly entry?: DatasetEntry
  readonly child?: TreeChild
}

/** What a build produced: the root node (undefined when empty) and the number of entries. */
export interface TreeResult {
  readonly root: CID | undefined
  readonly count: number
}

/**
 * The streaming chunker: entries in name order go in, nodes come out bottom-up through `put`.
 * Level k starts a new node before an item whose key has rank > k, or that would overflow
 * NODE_BUDGET.
 */
export class TreeBuilder {
  readonly #put: (block: Block) => Promise<void>
  readonly #bits: number
  readonly #levels: Array<{ items: Item[]; size: number }> = []
  #last: string | undefined

  constructor(put: (block: Block) => Promise<void>, bits = RANK_BITS) {
    this.#put = put
    this.#bits = bits
  }

  /** Appends an entry; names must strictly increase. */
  async pushEntry(entry: DatasetEntry): Promise<void> {
    if (this.#last !== undefined && compareNames(this.#last, entry.name) >= 0) {
      throw new RangeError(`Entries out of order: ${JSON.stringify(entry.name)} after ${JSON.stringify(this.#last)}`)
    }
    this.#last = entry.name
    await this.#push(0, { key: entry.name, size: itemBytes(entryValue(entry)), count: 1, entry })
  }

  /**
   * Appends an existing node of `level` (its link) whole. Valid only when feeding its entries
   * one by one would rebuild it: its first name has rank > level, or levels 0..level are empty.
   */
  async pushNode(level: number, child: TreeChild): Promise<void> {
    for (let k = 0; k <= level; k++) if ((this.#levels[k]?.items.length ?? 0) > 0) await this.#close(k)
    this.#last = undefined
    await this.#push(level + 1, { key: child.first, size: childBudgetBytes(child.first), count: child.count, child })
  }

  /** Whether levels 0..level hold nothing. */
  isEmptyUpTo(level: number): boolean {
    for (let k = 0; k <= level; k++) if ((this.#levels[k]?.items.length ?? 0) > 0) return false
    return true
  }

  /** Closes every open node and returns the root. */
  async finish(): Promise<TreeResult> {
    for (let k = 0; ; k++) {
      const items = this.#levels[k]?.items ?? []
      const above = this.#levels.slice(k + 1).some((level) => level.items.length > 0)
      if (!above) {
        if (items.length === 0) return { root: undefined, count: 0 }
        if (k > 0 && items.length === 1) return { root: items[0]!.child!.node, count: items[0]!.count }
      }
      if (items.length > 0) await this.#close(k)
    }
  }

  async #push(k: number, item: Item): Promise<void> {
    let level = this.#levels[k]
    if (level === undefined) {
      while (this.#levels.length <= k) this.#levels.push({ items: [], size: 0 })
      level = this.#levels[k]!
    }
    if (level.items.length > 0 && (rank(item.key, this.#bits) > k || level.size + item.size > NODE_BUDGET)) await this.#close(k)
    level.items.push(item)
    level.size += item.size
  }

  async #close(k: number): Promise<void> {
    const level = this.#levels[k]!
    const items = level.items
    level.items = []
    level.size = 0
    const node: TreeNode =
      k === 0 ? { level: 0, entries: items.map((item) => item.entry!) } : { level: k, children: items.map((item) => item.child!) }
    const block = encodeNode(node)
    await this.#put(block)
    const child: TreeChild = { first: items[0]!.key, count: items.reduce((n, item) => n + item.count, 0), node: block.cid }
    await this.#push(k + 1, { key: child.first, size: childBudgetBytes(child.first), count: child.count, child })
  }
}

/** A change for updateTree: `entry` undefined deletes the entry `name`. */
export interface TreeChange {
  readonly name: string
  readonly entry: DatasetEntry | undefined
}

/** Options of updateTree and buildTree. */
export interface TreeOptions extends AbortOptions {
  /** Rank bits (default RANK_BITS, the format's; tests only). */
  readonly bits?: number
}

/**
 * Applies `changes` (sorted by name, one per name) to the tree under `root`, writing new nodes
 * through `put`; reads only the nodes on the changed paths (and the right edge).
 */
export async function updateTree(
  cache: NodeCache,
  root: CID | undefined,
  changes: readonly TreeChange[],
  put: (block: Block) => Promise<void>,
  options: TreeOptions = {},
): Promise<TreeResult> {
  const bits = options.bits ?? RANK_BITS
  for (let i = 1; i < changes.length; i++) {
    if (compareNames(changes[i - 1]!.name, changes[i]!.name) >= 0) throw new RangeError('Tree changes must be sorted and unique')
  }
  const builder = new TreeBuilder(put, bits)
  let next = 0 // the first change not yet applied
  const applyBefore = async (name: string | undefined) => {
    while (next < changes.length && (name === undefined || compareNames(changes[next]!.name, name) < 0)) {
      const change = changes[next++]!
      if (change.entry !== undefined) await builder.pushEntry(change.entry)
    }
  }
  // Feeds the entries of `node`, whose span ends before `end` (undefined: the right edge).
  const visit = async (node: TreeNode, end: string | undefined): Promise<void> => {
    options.signal?.throwIfAborted()
    if ('entries' in node) {
      for (const entry of node.entries) {
        await applyBefore(entry.name)
        const change = changes[next]
        if (change !== undefined && change.name === entry.name) {
          next++
          if (change.entry !== undefined) await builder.pushEntry(change.entry)
        } else await builder.pushEntry(entry)
      }
      return
    }
    const level = node.level - 1
    for (let i = 0; i < node.children.length; i++) {
      const child = node.children[i]!
      const childEnd = node.children[i + 1]?.first ?? end
      await applyBefore(child.first)
      // Reusable whole: not on the right edge, no change from its first name up to and
      // including the next node's first name (a change there can move this node's end), and
      // the chunker would start a node here (spec/dataset.md §5.3).
      const untouched = childEnd !== undefined && (next >= changes.length || compareNames(changes[next]!.name, childEnd) > 0)
      if (untouched && (rank(child.first, bits) > level || builder.isEmptyUpTo(level))) {
        await builder.pushNode(level, child)
        continue
      }
      await visit(await cache.child(node.level, child, options), childEnd)
    }
  }
  if (root !== undefined) await visit(await cache.load(root, options), undefined)
  await applyBefore(undefined)
  return builder.finish()
}

/** Builds a tree from entries already sorted by name. */
export async function buildTree(
  entries: Iterable<DatasetEntry>,
  put: (block: Block) => Promise<void>,
  options: TreeOptions = {},
): Promise<TreeResult> {
  const builder = new TreeBuilder(put, options.bits)
  for (const entry of entries) await builder.pushEntry(entry)
  return builder.finish()
}

/** The entry named `name`, or undefined. */
export async function getEntry(
  cache: NodeCache,
  root: CID | undefined,
  name: string,
  options?: AbortOptions,
): Promise<DatasetEntry | undefined> {
  if (root === undefined) return undefined
  let node = await cache.load(root, options)
  while (!('entries' in node)) {
    const children = node.children
    // The last child whose first name is <= name.
    let lo = 0
    let hi = children.length - 1
    if (compareNames(children[0]!.first, name) > 0) return undefined
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (compareNames(children[mid]!.first, name) <= 0) lo = mid
      else hi = mid - 1
    }
    node = await cache.child(node.level, children[lo]!, options)
  }
  const entries = node.entries
  let lo = 0
  let hi = entries.length - 1
  while (lo <= hi) {
    const mid = (lo + hi) >> 1
    const order = compareNames(entries[mid]!.name, name)
    if (order === 0) return entries[mid]
    if (order < 0) lo = mid + 1
    else hi = mid - 1
  }
  return undefined
}

/** Options of iterateEntries. */
export interface IterateOptions extends AbortOptions {
  /** Only names that start with this string. */
  readonly prefix?: string
}

/** The entries under `root` in name order (optionally only those starting with `prefix`). */
export async function* iterateEntries(cache: NodeCache, root: CID | undefined, options: IterateOptions = {}): AsyncGenerator<DatasetEntry> {
  if (root === undefined) return
  const prefix = options.prefix ?? ''
  // Depth first, skipping the children whose span lies wholly before the prefix.
  const stack: Array<{ node: TreeNode; index: number }> = [{ node: await cache.load(root, options), index: 0 }]
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!
    const { node } = top
    if ('entries' in node) {
      stack.pop()
      for (const entry of node.entries) {
        if (entry.name.startsWith(prefix)) yield entry
        else if (compareNames(entry.name, prefix) > 0) return
      }
      continue
    }
    if (top.index >= node.children.length) {
      stack.pop()
      continue
    }
    const i = top.index++
    const child = node.children[i]!
    const nextFirst = node.children[i + 1]?.first
    // Every name under this child is below the next child's first name: skip it if that is <= prefix.
    if (nextFirst !== undefined && compareNames(nextFirst, prefix) <= 0) continue
    if (compareNames(child.first, prefix) > 0 && !child.first.startsWith(prefix)) return
    options.signal?.throwIfAborted()
    stack.push({ node: await cache.child(node.level, child, options), index: 0 })
  }
}

/** Every node CID of the tree under `root`, parents before children (for accounting). */
export async function* treeNodes(cache: NodeCache, root: CID | undefined, options?: AbortOptions): AsyncGenerator<CID> {
  if (root === undefined) return
  const stack: CID[] = [root]
  while (stack.length > 0) {
    const cid = stack.pop()!
    yield cid
    const node = await cache.load(cid, options)
    if ('children' in node) for (let i = node.children.length - 1; i >= 0; i--) stack.push(node.children[i]!.node)
  }
}
