/**
 * Helpers shared by the CLI's commands: where the store is, and how outputs are written
 * (standard output with `-`, else a file: atomically through a `.partial` file when it is a
 * regular file, straight into devices and FIFOs; spec/outputs.md).
 */
import type { Stats } from 'node:fs'
import { type FileHandle, lstat, open, readlink, rename, rm } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import type { Writable } from 'node:stream'
import { InvalidArgumentError as CommanderArgumentError, Option } from 'commander'
import { OutputError } from '../errors.js'
import type { CliIo } from './main.js'

/**
 * Writes `bytes` to the file `path`. A regular file, or a path where nothing is, is written
 * to `<path>.<pid>.partial` beside it and renamed over it after the last byte, so a failure at
 * any point leaves no partial file and any previous file as it was. Symlinks are followed: the
 * file is written (atomically, if regular or absent) where the last link points, and the links
 * stay. Anything else (a character device such as /dev/null, a FIFO) is written straight into,
 * never replaced. An error from `bytes` propagates as it is; the output's own failures are
 * OutputError (ERR_OUTPUT), except EPIPE (a FIFO's reader went away), which main() treats as
 * a closed standard output.
 */
export async function writeFileAtomically(path: string, bytes: AsyncIterable<Uint8Array>): Promise<void> {
  const { target, stats } = await followLinks(path)
  if (stats?.isDirectory()) throw new OutputError(`Cannot write ${path}: it is a directory`)
  if (stats === undefined || stats.isFile()) await writeReplacing(path, target, stats, bytes)
  else await writeStraight(path, target, bytes)
}

/** Where the chain of symlinks starting at `path` ends, and what is there (undefined: nothing). */
async function followLinks(path: string): Promise<{ target: string; stats: Stats | undefined }> {
  let target = path
  // 40: Linux's limit on links followed in one lookup (MAXSYMLINKS).
  for (let links = 0; links <= 40; links++) {
    let stats: Stats
    try {
      stats = await lstat(target)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { target, stats: undefined }
      throw outputError(path, error)
    }
    if (!stats.isSymbolicLink()) return { target, stats }
    target = resolve(dirname(target), await asOutput(path, readlink(target)))
  }
  throw new OutputError(`Cannot write ${path}: too many levels of symbolic links`)
}

/** `promise`, failing with ERR_OUTPUT for `path` where it fails with a system error. */
function asOutput<T>(path: string, promise: Promise<T>): Promise<T> {
  return promise.catch((error: unknown) => {
    throw outputError(path, error)
  })
}

/** Writes `target` (a regular file or nothing) through a partial file renamed over it at the end. */
async function writeReplacing(path: string, target: string, stats: Stats | undefined, bytes: AsyncIterable<Uint8Array>): Promise<void> {
  const temporary = `${target}.${process.pid}.partial`
  const handle = await asOutput(path, open(temporary, 'w'))
  let closed = false
  try {
    // A replaced file keeps its permissions.
    if (stats !== undefined) await asOutput(path, handle.chmod(stats.mode & 0o777))
    await writeChunks(handle, bytes, path)
    closed = true
    await asOutput(path, handle.close())
    await asOutput(path, rename(temporary, target))
  } catch (error) {
    // Whatever failed, the partial file goes and the first error is the one reported.
    if (!closed) await handle.close().catch(() => {})
    await rm(temporary, { force: true }).catch(() => {})
    throw error
  }
}

/** Writes into `target` as it is: a device or FIFO (through any links). */
async function writeStraight(path: string, target: string, bytes: AsyncIterable<Uint8Array>): Promise<void> {
  const handle = await asOutput(path, open(target, 'w'))
  try {
    await writeChunks(handle, bytes, path)
  } finally {
    await handle.close().catch(() => {})
  }
}

// Small chunks (a TIFF's copied tile payloads) are gathered into one writev of up to 1 MiB;
// 1024 = IOV_MAX on Linux.
const BATCH_BYTES = 1 << 20
const BATCH_CHUNKS = 1024

/** Writes every chunk of `bytes` to `handle`; a chunk may be reused once the next one is asked for. */
async function writeChunks(handle: FileHandle, bytes: AsyncIterable<Uint8Array>, path: string): Promise<void> {
  let batch: Uint8Array[] = []
  let size = 0
  for await (const chunk of bytes) {
    if (chunk.length === 0) continue
    batch.push(chunk)
    size += chunk.length
    if (size >= BATCH_BYTES || batch.length >= BATCH_CHUNKS) {
      await writeAll(handle, batch, path)
      batch = []
      size = 0
    }
  }
  if (batch.length > 0) await writeAll(handle, batch, path)
}

/** Writes `chunks` whole, going on after short writes (a FIFO may take fewer bytes). */
async function writeAll(handle: FileHandle, chunks: Uint8Array[], path: string): Promise<void> {
  let rest = chunks
  while (rest.length > 0) {
    let written: number
    try {
      written = (await handle.writev(rest)).bytesWritten
    } catch (error) {
      throw outputError(path, error)
    }
    if (written === 0) throw new OutputError(`Cannot write ${path}: nothing was written`)
    while (rest.length > 0 && written >= rest[0]!.length) {
      written -= rest[0]!.length
      rest = rest.slice(1)
    }
    if (written > 0) rest = [rest[0]!.subarray(written), ...rest.slice(1)]
  }
}

/** What a system error means for an output. */
const REASONS: Readonly<Record<string, string>> = {
  ENOENT: 'its directory does not exist',
  ENOTDIR: 'a component of its path is not a directory',
  EISDIR: 'it is a directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EFBIG: 'file too large',
  ELOOP: 'too many levels of symbolic links',
  ENXIO: 'no such device or address (a socket, or a FIFO with no reader)',
}

/**
 * The failure of writing `what` (an output path, or "standard output") with the system error
 * `error`, as an OutputError (ERR_OUTPUT); EPIPE (the reader went away) and errors that are not
 * system errors are returned as they are.
 */
export function outputError(what: string, error: unknown): unknown {
  const code = (error as NodeJS.ErrnoException | null)?.code
  if (typeof code !== 'string' || code === 'EPIPE' || !/^E[A-Z0-9]+$/.test(code)) return error
  return new OutputError(`Cannot write ${what}: ${REASONS[code] ?? (error as Error).message} (${code})`, { cause: error })
}

/**
 * Writes every chunk to `stream` (standard output), waiting for it to drain when its buffer is
 * full. Fails with the stream's own error (EPIPE as it is, others as ERR_OUTPUT) as soon as
 * the stream fails or is destroyed: a stream that failed never drains.
 */
export async function pump(bytes: AsyncIterable<Uint8Array>, stream: Writable): Promise<void> {
  for await (const chunk of bytes) {
    throwIfBroken(stream)
    if (!stream.write(chunk)) await drained(stream)
  }
  throwIfBroken(stream)
}

function throwIfBroken(stream: Writable): void {
  if (stream.errored) throw outputError('standard output', stream.errored)
  if (stream.destroyed || stream.writableEnded) throw new OutputError('Cannot write standard output: it was closed')
}

/** Resolves when `stream` drains; rejects if it fails or closes first. */
function drained(stream: Writable): Promise<void> {
  throwIfBroken(stream)
  if (!stream.writableNeedDrain) return Promise.resolve()
  return new Promise((resolve, reject) => {
    const settle = () => {
      stream.off('drain', settle).off('error', settle).off('close', settle)
      try {
        throwIfBroken(stream)
        resolve()
      } catch (error) {
        reject(error)
      }
    }
    stream.on('drain', settle).on('error', settle).on('close', settle)
  })
}

/** The store directory: `--store`, else the default location for `io.env`, resolved against `io.cwd`. */
export async function storeDir(io: CliIo, option: string | undefined): Promise<string> {
  const { defaultStoreDir } = await import('../store/location.js')
  const location = option ?? defaultStoreDir(io.env)
  // s3://BUCKET/PREFIX and memory: are locations, not paths (spec/store.md §1).
  return /^(s3:\/\/|memory:|file:)/.test(location) ? location : resolve(io.cwd, location)
}

/** The `--store <dir>` option every command takes. */
export function storeOption(): Option {
  return new Option(
    '--store <location>',
    'store directory or s3://BUCKET/PREFIX (default: $TESSERA_STORE, else $XDG_DATA_HOME/tessera, else ~/.local/share/tessera)',
  )
}

/** Commander parser of an integer option (a usage error, exit 2, if it is not one). */
export function int(value: string): number {
  if (!/^-?\d+$/.test(value)) throw new CommanderArgumentError(`expected an integer but received ${JSON.stringify(value)}`)
  return Number(value)
}
