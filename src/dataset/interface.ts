/** Datasets (spec/dataset.md): named, versioned collections of images. Types only. */
import type { CID } from 'multiformats/cid'

/** One entry of a dataset: a name (a file's path) and the image it names, with source facts. */
export interface DatasetEntry {
  /** '/'-separated relative path, e.g. `2025/06/shot-0001.png` (spec/dataset.md §3). */
  readonly name: string
  /** The image root (dag-cbor CIDv1). */
  readonly image: CID
  /** Size of the source file in bytes. */
  readonly size: number
  /** Modification time of the source file, ms since the epoch (integer). */
  readonly mtime: number
  /** sha2-256 of the source file's bytes (32 bytes). */
  readonly sha256: Uint8Array
}

/** A link from a branch node to a child node of the entry tree. */
export interface TreeChild {
  /** Name of the first entry under the child. */
  readonly first: string
  /** Number of entries under the child. */
  readonly count: number
  readonly node: CID
}

/** A decoded node of the entry tree: a leaf (level 0) lists entries, a branch lists children. */
export type TreeNode =
  | { readonly level: 0; readonly entries: readonly DatasetEntry[] }
  | { readonly level: number; readonly children: readonly TreeChild[] }

/** A decoded dataset version root. */
export interface DatasetVersion {
  /** Format version of datasets: 1. */
  readonly tesseraDataset: number
  /** The dataset's name when this version was made. */
  readonly name: string
  /** Number of entries. */
  readonly count: number
  /** Root of the entry tree; absent when the dataset is empty. */
  readonly entries?: CID
  /** The version this one replaces; absent for the first. */
  readonly previous?: CID
  /** When this version was committed, ms since the epoch. */
  readonly time: number
  /** What made it, for people: `import 120 files`, `rm a.png`. */
  readonly note: string
  /** True for an import's intermediate version, replaced (not followed) by the next one. */
  readonly checkpoint?: true
}
