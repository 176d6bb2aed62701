/**
 * Batch import of directory trees into a dataset (spec/dataset.md §6): files found
 * recursively by extension, imported a few at a time, skipped when the dataset already has
 * their content, and committed as dataset versions at checkpoints so an interrupted import
 * resumes instead of restarting.
 *
 * Between checkpoints every image goes into one store transaction (the importer's own
 * transaction is folded into it), so nothing is visible, or collectable, until the checkpoint
 * commits the blocks, the entries and the dataset reference in one atomic step.
 */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { readdir, stat } from 'node:fs/promises'
import { basename, extname, resolve, sep } from 'node:path'
import { InvalidArgumentError, NotFoundError, TesseraError } from '../errors.js'
import type { CID } from '../format/block.js'
import { pyramidSizes } from '../format/grid.js'
import { decodeManifest } from '../format/manifest.js'
import type { DeltaTicket } from '../import/delta.js'
import type { ImportOptions } from '../import/importer.js'
import { type CodecSetting, datasetImportParameters } from '../import/options.js'
import type { AbortOptions, BlockStore, BlockWriter } from '../store/interface.js'
import { commitVersion, datasetHead, type VersionRef, withDatasetLock } from './dataset.js'
import type { DatasetEntry } from './interface.js'
import { assertDatasetName, assertEntryName, compareNames } from './names.js'
import { getEntry, iterateEntries, NodeCache, type TreeChange } from './tree.js'

/** File extensions imported from directories (case-insensitive). */
export const IMAGE_EXTENSIONS: readonly string[] = [
  '.png',
  '.jpg',
  '.jpeg',
  '.webp',
  '.gif',
  '.tif',
  '.tiff',
  '.ppm',
  '.pgm',
  '.pam',
  '.pnm',
  '.avif',
  '.heic',
  '.heif',
]

/** How the import is going, after each file. */
export interface DatasetImportProgress {
  readonly total: number
  readonly done: number
  readonly imported: number
  readonly reused: number
  readonly unchanged: number
  readonly failed: number
}

/** A file that could not be imported (the others were). */
export interface ImportFailure {
  readonly path: string
  readonly name: string
  readonly error: Error & { code?: string }
}

/** Options of importDataset. */
export interface DatasetImportOptions
  extends AbortOptions,
    Pick<ImportOptions, 'tileSize' | 'zstdLevel' | 'predictor' | 'pyramid' | 'maxPixels' | 'tmpDir'> {
  /** Put the entries under this directory of the dataset. */
  readonly prefix?: string
  /** Files imported at once (default 2). */
  readonly jobs?: number
  /** Compression threads, one pool shared by every file (default one per core, at most 8; 0: on the main thread). */
  readonly workers?: number
  /**
   * Store tiles as deltas against the tile at the same place in the files before, in the
   * order of their names (spec/format.md §6.1; default DATASET_DEFAULTS.deltas).
   */
  readonly deltas?: boolean
  /** Commit a checkpoint version after this many files (default 500)... */
  readonly checkpointFiles?: number
  /** ...or this many seconds since the last one (default 30), whichever comes first. */
  readonly checkpointSeconds?: number
  /** File extensions to import from directories (default IMAGE_EXTENSIONS). */
  readonly extensions?: readonly string[]
  readonly onProgress?: (progress: DatasetImportProgress) => void
  /** Called for each file that fails; the import goes on. */
  readonly onFailure?: (failure: ImportFailure) => void
}

/** What an import did. */
export interface DatasetImportResult extends DatasetImportProgress {
  /** The dataset's head afterwards (undefined if the dataset is still empty). */
  readonly head: CID | undefined
  /** Whether this import committed a new version (false: nothing changed). */
  readonly changed: boolean
  /** Checkpoint versions committed on the way. */
  readonly checkpoints: number
  /** Bytes of new blocks written. */
  readonly newBytes: number
  readonly failures: readonly ImportFailure[]
  /** The settings the files were imported with, and which of them were DATASET_DEFAULTS rather than asked for. */
  readonly settings: {
    readonly tileSize: number
    readonly deltas: boolean
    readonly codec: CodecSetting
    readonly defaulted: readonly string[]
  }
}

interface SourceFile {
  /** As bytes when found in a directory (its name may not be UTF-8). */
  readonly path: string | Buffer
  readonly name: string
}

/** A path for messages: its bytes as UTF-8, invalid sequences shown as \\xNN. */
function displayPath(path: Buffer): string {
  const text = path.toString('utf8')
  if (Buffer.from(text, 'utf8').equals(path)) return text
  let out = ''
  let at = 0
  while (at < path.length) {
    let end = at + 1
    while (end <= path.length && end - at <= 4) {
      const piece = path.subarray(at, end)
      if (Buffer.from(piece.toString('utf8'), 'utf8').equals(piece)) break
      end++
    }
    if (end <= path.length && end - at <= 4) {
      out += path.subarray(at, end).toString('utf8')
      at = end
    } else {
      out += `\\x${path[at]!.toString(16).padStart(2, '0')}`
      at++
    }
  }
  return out
}

function shownPath(file: SourceFile): string {
  return typeof file.path === 'string' ? file.path : displayPath(file.path)
}

/**
 * Imports the image files of `sources` (directories, searched recursively, or files) into
 * dataset `name`, creating it if needed. Entry names are paths relative to each directory
 * (a file given directly is named by its base name), under `prefix`.
 */
export async function importDataset(
  store: BlockStore,
  name: string,
  sources: readonly string[],
  options: DatasetImportOptions = {},
): Promise<DatasetImportResult> {
  assertDatasetName(name)
  if (options.prefix !== undefined) assertEntryName(options.prefix)
  // Parameters every file shares are checked once, before any file is read.
  const parameters = datasetImportParameters(options)
  const { jobs, checkpointFiles, checkpointSeconds, workers, deltas, defaulted } = parameters
  const settings = { tileSize: parameters.tileSize, deltas, codec: parameters.codec, defaulted }
  const failures: ImportFailure[] = []
  const fail = (failure: ImportFailure) => {
    failures.push(failure)
    options.onFailure?.(failure)
  }
  const files = await findFiles(sources, options, fail)
  const importer = await import('../import/importer.js')
  const { compressPool } = await import('../import/pool.js')
  const { DeltaContext } = await import('../import/delta.js')

  return withDatasetLock(store, name, async () => {
    const start = await datasetHead(store, name, options)
    let current: VersionRef | undefined = start
    const cache = new NodeCache(store)
    // Files refused while they were being found (a bad name, a dangling link) count as files:
    // total = imported + reused + unchanged + failed once done.
    const counts = {
      total: files.length + failures.length,
      done: failures.length,
      imported: 0,
      reused: 0,
      unchanged: 0,
      failed: failures.length,
    }
    let newBytes = 0
    let checkpoints = 0
    let changed = false
    const pending = new Map<string, TreeChange>()
    let sinceCheckpoint = 0
    let checkpointAt = Date.now()

    // Content already in the dataset, by sha2-256 of the source file: built on first need.
    let byHash: Map<string, CID> | undefined
    const contentIndex = async (): Promise<Map<string, CID>> => {
      if (byHash !== undefined) return byHash
      byHash = new Map()
      for await (const entry of iterateEntries(cache, start?.version.entries, { signal: options.signal })) {
        byHash.set(hex(entry.sha256), entry.image)
      }
      return byHash
    }
    const explicitParameters = ['tileSize', 'zstdLevel', 'predictor', 'pyramid'].some(
      (name) => options[name as keyof DatasetImportOptions] !== undefined,
    )
    // Whether an image was imported with this import's parameters (else its content is re-imported).
    const sameParameters = new Map<string, boolean>()
    const reusable = async (image: CID): Promise<boolean> => {
      const key = image.toString()
      let same = sameParameters.get(key)
      if (same === undefined) {
        try {
          const manifest = decodeManifest(await store.get(image, options))
          const { tileSize, codec, pyramid } = parameters
          const levels = pyramid ? pyramidSizes(manifest.width, manifest.height, tileSize).length : 1
          // `auto` takes whatever the content chose.
          same =
            manifest.tileSize === tileSize &&
            (codec.level === 'auto' || manifest.codec.level === codec.level) &&
            (codec.predictor === 'auto' || manifest.codec.predictor === codec.predictor) &&
            manifest.levels.length === levels
        } catch {
          // Not in this store yet (an image of this import, not yet committed), or damaged.
          same = false
        }
        sameParameters.set(key, same)
      }
      return same
    }

    let writer: BlockWriter = await store.begin(options)
    const session = sessionStore(store, () => writer)
    // One compression pool for every file, so that `jobs` files at once share the cores.
    const pool = compressPool(workers)
    // Files take their place in the delta order as they are launched: the order of their names.
    const context = deltas ? new DeltaContext() : undefined

    const checkpoint = async (final: boolean) => {
      const changes = [...pending.values()].sort((a, b) => compareNames(a.name, b.name))
      const note = final
        ? `import ${counts.total} files: ${counts.imported} imported, ${counts.reused} reused, ${counts.unchanged} unchanged, ${counts.failed} failed`
        : `import in progress: ${counts.done} of ${counts.total} files`
      current = await commitVersion(store, writer, name, current, changes, { note, checkpoint: !final, signal: options.signal })
      changed = true
      if (!final) checkpoints++
      pending.clear()
      sinceCheckpoint = 0
      checkpointAt = Date.now()
    }

    const importOne = async (file: SourceFile, ticket: DeltaTicket | undefined): Promise<void> => {
      const stats = await stat(file.path)
      const size = stats.size
      const mtime = Math.floor(stats.mtimeMs)
      const existing = await getEntry(cache, start?.version.entries, file.name, options)
      // Unchanged: nothing to do, unless this import asks for parameters (a re-import with another
      // --tile-size, say) that its image was not imported with: then it is imported again, not
      // skipped silently. A re-run with the defaults reads nothing, not even the manifest.
      if (
        existing !== undefined &&
        existing.size === size &&
        existing.mtime === mtime &&
        (!explicitParameters || (await reusable(existing.image)))
      ) {
        counts.unchanged++
        return
      }
      const sha256 = await hashFile(file.path)
      let entry: DatasetEntry
      if (existing !== undefined && Buffer.from(existing.sha256).equals(sha256) && (await reusable(existing.image))) {
        // Touched, not changed: new file facts, same image.
        entry = { ...existing, size, mtime }
        counts.unchanged++
      } else {
        const known = (await contentIndex()).get(hex(sha256))
        if (known !== undefined && (await reusable(known))) {
          entry = { name: file.name, image: known, size, mtime, sha256 }
          counts.reused++
        } else {
          const result = await importer.importImage(session, file.path, {
            tileSize: parameters.tileSize,
            zstdLevel: parameters.codec.level,
            predictor: parameters.codec.predictor,
            ...(options.maxPixels === undefined ? {} : { maxPixels: options.maxPixels }),
            ...(options.tmpDir === undefined ? {} : { tmpDir: options.tmpDir }),
            pyramid: options.pyramid === true,
            pool,
            ...(ticket === undefined ? {} : { delta: ticket }),
            label: file.name,
            signal: options.signal,
          })
          newBytes += result.newBytes
          ;(await contentIndex()).set(hex(sha256), result.cid)
          sameParameters.set(result.cid.toString(), true)
          entry = { name: file.name, image: result.cid, size, mtime, sha256 }
          counts.imported++
        }
      }
      pending.set(file.name, { name: file.name, entry })
    }

    const running = new Set<Promise<void>>()
    let fatal: unknown
    const launch = (file: SourceFile) => {
      const ticket = context?.ticket()
      const task = importOne(file, ticket)
        .catch((error: unknown) => {
          if (isFileError(error)) {
            counts.failed++
            fail({ path: shownPath(file), name: file.name, error: error as Error })
          } else fatal ??= error
        })
        .finally(() => {
          ticket?.end()
          counts.done++
          sinceCheckpoint++
          running.delete(task)
          options.onProgress?.({ ...counts })
        })
      running.add(task)
    }
    try {
      for (const file of files) {
        while (running.size >= jobs) await Promise.race(running)
        if (fatal !== undefined) break
        options.signal?.throwIfAborted()
        const due = sinceCheckpoint >= checkpointFiles || Date.now() - checkpointAt >= checkpointSeconds * 1000
        if (due && (pending.size > 0 || running.size > 0)) {
          // A checkpoint commits the shared transaction: let the files in flight finish first.
          await Promise.all(running)
          if (fatal !== undefined) break
          if (pending.size > 0) {
            await checkpoint(false)
            writer = await store.begin(options)
          } else {
            sinceCheckpoint = 0
            checkpointAt = Date.now()
          }
        }
        launch(file)
      }
      await Promise.all(running)
      if (fatal !== undefined) throw fatal
      // A final version also when only checkpoints (of this run or an interrupted one) precede it.
      const head = current as VersionRef | undefined
      if (pending.size > 0 || head?.version.checkpoint === true) await checkpoint(true)
      else await writer.abort()
    } catch (error) {
      await Promise.allSettled(running)
      await writer.abort()
      throw error
    } finally {
      await pool.close()
    }
    const head = current as VersionRef | undefined
    return { ...counts, head: head?.cid, changed, checkpoints, newBytes, failures, settings }
  })
}

/** Errors that fail one file, not the whole import: Tessera's and the file system's. */
function isFileError(error: unknown): boolean {
  if (error instanceof TesseraError) return error.code !== 'ERR_ABORTED' && error.code !== 'ERR_STORE' && error.code !== 'ERR_STORE_LOCKED'
  const code = (error as NodeJS.ErrnoException | undefined)?.code
  return typeof code === 'string' && /^E[A-Z]+$/.test(code) && code !== 'ENOSPC'
}

/**
 * The files to import, sorted by entry name. Directories are searched recursively (names
 * starting with `.` are skipped, symbolic links to files followed, to directories not).
 */
async function findFiles(
  sources: readonly string[],
  options: DatasetImportOptions,
  fail: (failure: ImportFailure) => void,
): Promise<SourceFile[]> {
  if (sources.length === 0) throw new InvalidArgumentError('Expected at least one directory or file to import')
  const extensions = new Set((options.extensions ?? IMAGE_EXTENSIONS).map((e) => e.toLowerCase()))
  const prefix = options.prefix === undefined ? '' : `${options.prefix}/`
  const files: SourceFile[] = []
  const add = (path: string | Buffer, relative: string) => {
    // One spelling per name: macOS lists decomposed (NFD) names, Linux keeps what was written;
    // both import to the same entry, and two files that differ only so collide (below).
    const name = (prefix + relative).normalize('NFC')
    const shown = typeof path === 'string' ? path : displayPath(path)
    try {
      assertEntryName(name)
    } catch (error) {
      fail({ path: shown, name, error: error as Error })
      return
    }
    files.push({ path, name })
  }
  const visit = async (dir: Buffer, relative: string): Promise<void> => {
    options.signal?.throwIfAborted()
    // Names as bytes: a name that is not UTF-8 still opens (as a string it would not).
    const items = await readdir(dir, { withFileTypes: true, encoding: 'buffer' })
    const named = items.map((item) => ({ item, name: item.name.toString('utf8') }))
    named.sort((a, b) => compareNames(a.name, b.name))
    for (const { item, name: own } of named) {
      if (own.startsWith('.')) continue
      const path = Buffer.concat([dir, Buffer.from(sep), item.name])
      const name = relative === '' ? own : `${relative}/${own}`
      if (!Buffer.from(own, 'utf8').equals(item.name)) {
        if (item.isDirectory() || extensions.has(extname(own).toLowerCase())) {
          const error = new InvalidArgumentError(
            `The name ${JSON.stringify(displayPath(item.name))} is not valid UTF-8, which entry names must be: rename it`,
          )
          fail({ path: displayPath(path), name, error })
        }
        continue
      }
      if (item.isDirectory()) await visit(path, name)
      else if (extensions.has(extname(own).toLowerCase())) {
        if (item.isFile()) add(path, name)
        else if (item.isSymbolicLink()) {
          const target = await stat(path).catch((error: NodeJS.ErrnoException) => error)
          if (target instanceof Error) {
            const error = new NotFoundError(`${displayPath(path)} is a symbolic link to nothing (${target.code ?? target.message})`, {
              cause: target,
            })
            fail({ path: displayPath(path), name, error })
          } else if (target.isFile()) add(path, name)
        }
      }
    }
  }
  for (const source of sources) {
    const path = resolve(source)
    const stats = await stat(path).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT' || error.code === 'ENOTDIR') throw new NotFoundError(`${source} does not exist`, { cause: error })
      throw error
    })
    if (stats.isDirectory()) await visit(Buffer.from(path), '')
    else if (stats.isFile()) add(path, basename(path))
    else throw new InvalidArgumentError(`${source} is neither a directory nor a file`)
  }
  files.sort((a, b) => compareNames(a.name, b.name))
  for (let i = 1; i < files.length; i++) {
    if (files[i - 1]!.name === files[i]!.name) {
      throw new InvalidArgumentError(
        `${shownPath(files[i - 1]!)} and ${shownPath(files[i]!)} would both be entry ${JSON.stringify(files[i]!.name)}: import them separately with --prefix`,
      )
    }
  }
  return files
}

/** sha2-256 of a file's bytes. */
async function hashFile(path: string | Buffer): Promise<Buffer> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer)
  return hash.digest()
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('hex')
}

/**
 * The store as the importer sees it during a dataset import: reads go to the store, and
 * every transaction the importer begins writes into the import's current transaction, whose
 * commit is the checkpoint's. An image that fails leaves its blocks there, unreferenced:
 * garbage for the next collection.
 */
function sessionStore(store: BlockStore, current: () => BlockWriter): BlockStore {
  return {
    get: (cid, options) => store.get(cid, options),
    getMany: (cids, options) => store.getMany(cids, options),
    getManyUnsafe: (cids, options) => store.getManyUnsafe(cids, options),
    has: (cid, options) => store.has(cid, options),
    size: (cid, options) => store.size(cid, options),
    pins: (options) => store.pins(options),
    storedBytes: (options) => store.storedBytes(options),
    close: async () => {},
    begin: async (options) => {
      options?.signal?.throwIfAborted()
      const outer = current()
      let newBytes = 0
      return {
        put: async (cid, bytes, putOptions) => {
          const added = await outer.put(cid, bytes, putOptions)
          if (added) newBytes += bytes.length
          return added
        },
        // The dataset entry keeps the image: no pin.
        pin: () => {},
        unpin: () => {},
        setRef: () => {
          throw new InvalidArgumentError('References cannot be set inside a dataset import')
        },
        commit: async (commitOptions) => {
          commitOptions?.signal?.throwIfAborted()
        },
        abort: async () => {},
        get newBytes() {
          return newBytes
        },
      }
    },
  }
}
