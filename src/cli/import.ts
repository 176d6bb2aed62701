/**
 * `tessera import FILE...`: images, one CID per line; with `--dataset NAME`, files and
 * directory trees into a dataset (spec/dataset.md §6), printing its new version. The defaults
 * and their validation are the library's (import/options.ts).
 */
import { resolve } from 'node:path'
import { type Command, Option } from 'commander'
import type { DatasetImportProgress } from '../dataset/import.js'
import { InvalidArgumentError, TesseraError } from '../errors.js'
import {
  AUTO_CODEC,
  DATASET_IMPORT_OPTIONS as DATASET,
  DATASET_DEFAULTS,
  IMPORT_OPTIONS as IMAGE,
  type ImportParameterOptions,
} from '../import/options.js'
import { command, withStore } from './command.js'
import type { CliIo } from './main.js'
import { int, storeOption } from './output.js'

/** The `import` command. */
export function importCommand(io: CliIo): Command {
  return command(
    io,
    'import',
    'import image files (PNG, JPEG, TIFF, WebP, PPM/PGM/PAM); prints one CID per file. With --dataset NAME: files and directory trees into a dataset; prints its new version',
  )
    .argument('<files...>')
    .addOption(storeOption())
    .option(
      '--tile-size <n>',
      `tile edge in pixels, a multiple of 16 (default ${IMAGE.tileSize.default}; with --dataset, ${DATASET_DEFAULTS.tileSize})`,
      int,
    )
    .option(
      '--zstd-level <n>',
      `zstd compression level, or auto: from the image's content (default ${IMAGE.zstdLevel.default}; with --dataset, auto)`,
      intOrAuto,
    )
    .addOption(
      new Option(
        '--predictor <n>',
        `TIFF predictor: 1 none, 2 horizontal, or auto: from the image's content (default ${IMAGE.predictor.default}; with --dataset, auto)`,
      ).choices(['1', '2', 'auto']),
    )
    .option('--pyramid', 'also build the downscaled pyramid levels')
    .option('--max-pixels <n>', 'refuse images with more pixels (decompression-bomb guard)', int)
    .option('--label <text>', 'label of the image (default: the file name)')
    .option('--workers <n>', 'compression threads (default: one per core, at most 8; with --dataset, one pool shared by all files)', int)
    .option('--dataset <name>', 'import files and directories (recursively, by extension) into this dataset')
    .option('--no-deltas', 'with --dataset: store every tile whole, not as a delta against the tile at its place in the files before')
    .option('--prefix <dir>', 'with --dataset: put the entries under this directory')
    .option('--jobs <n>', `with --dataset: files imported at once (default ${DATASET.jobs.default})`, int)
    .option('--checkpoint-files <n>', `with --dataset: commit a version every n files (default ${DATASET.checkpointFiles.default})`, int)
    .option('--checkpoint-seconds <n>', `with --dataset: ... or every n seconds (default ${DATASET.checkpointSeconds.default})`, int)
    .action(async (files: string[], opts) => {
      const { tileSize, zstdLevel, maxPixels, workers } = opts
      const options = {
        tileSize,
        zstdLevel,
        predictor: opts.predictor === undefined || opts.predictor === 'auto' ? opts.predictor : (Number(opts.predictor) as 1 | 2),
        pyramid: opts.pyramid === true,
        maxPixels,
        workers,
      }
      if (opts.dataset !== undefined) return importIntoDataset(io, files, opts, options)
      const { importImage } = await import('../image.js')
      const write = async (store: Parameters<typeof importImage>[0]) => {
        for (const file of files) {
          const line = statusLine(io)
          const onProgress =
            line &&
            ((done: number, total: number) =>
              line.show(`${file} ${bar(done, total)} ${done}/${total} tile rows ${line.seconds().toFixed(1)}s`))
          const result = await importImage(store, resolve(io.cwd, file), { ...options, label: opts.label, onProgress }).finally(() =>
            line?.end(),
          )
          io.stdout.write(`${result.cid}\n`)
        }
      }
      await withStore(io, opts, write, { create: true })
    })
}

/** The options of `import` that only `--dataset` reads (and `--label`, which it refuses). */
interface DatasetArgs {
  readonly store?: string
  readonly dataset: string
  readonly label?: string
  readonly prefix?: string
  readonly jobs?: number
  readonly checkpointFiles?: number
  readonly checkpointSeconds?: number
  /** False with --no-deltas; commander sets true otherwise, which is not the user asking. */
  readonly deltas?: boolean
}

/**
 * `import DIR... --dataset NAME`: prints the dataset's new head CID; lists files that failed on
 * standard error (`path: CODE: message`) and then fails with the first one's code.
 */
async function importIntoDataset(io: CliIo, sources: readonly string[], opts: DatasetArgs, options: ImportParameterOptions): Promise<void> {
  if (opts.label !== undefined)
    throw new InvalidArgumentError('--label does not apply to --dataset imports: entries are named by their paths')
  const { importDataset } = await import('../dataset/import.js')
  const { dataset, prefix, jobs, checkpointFiles, checkpointSeconds } = opts
  const line = statusLine(io)
  const onProgress =
    line &&
    ((p: DatasetImportProgress) => {
      const counts = `${p.imported} imported, ${p.reused} reused, ${p.unchanged} unchanged, ${p.failed} failed`
      const seconds = line.seconds()
      line.show(`${bar(p.done, p.total)} ${p.done}/${p.total} files (${counts}) ${seconds > 0 ? (p.done / seconds).toFixed(1) : '-'}/s`)
    })
  const onFailure = (failure: { path: string; error: Error & { code?: string } }) => {
    line?.clear()
    io.stderr.write(`${failure.path}: ${failure.error.code ?? 'ERR_UNKNOWN'}: ${failure.error.message}\n`)
  }
  const paths = sources.map((source) => resolve(io.cwd, source))
  const result = await withStore(
    io,
    opts,
    (store) =>
      importDataset(store, dataset, paths, {
        ...options,
        ...(opts.deltas === false ? { deltas: false } : {}),
        prefix,
        jobs,
        checkpointFiles,
        checkpointSeconds,
        onProgress,
        onFailure,
      }),
    { create: true },
  )
  line?.clear()
  const summary = `${result.total} files: ${result.imported} imported, ${result.reused} reused, ${result.unchanged} unchanged, ${result.failed} failed`
  io.stderr.write(`dataset ${dataset}: ${summary}${result.changed ? '' : ' (no new version)'}\n`)
  // Say what the import chose where the user did not (DATASET_DEFAULTS), and how to change it.
  const { settings } = result
  const chosen = [
    `tile size ${settings.tileSize}${settings.defaulted.includes('tileSize') ? ' (dataset default; --tile-size to change)' : ''}`,
    `delta tiles ${settings.deltas ? 'on' : 'off'}${settings.defaulted.includes('deltas') ? ' (dataset default; --no-deltas to turn off)' : ''}`,
    `zstd level ${settings.codec.level}${settings.defaulted.includes('zstdLevel') ? ` (dataset default: ${AUTO_CODEC.compressibleLevel} for screen-like images, else ${AUTO_CODEC.level}; --zstd-level to fix)` : ''}`,
    `predictor ${settings.codec.predictor}${settings.defaulted.includes('predictor') ? ' (dataset default: 1 for screen-like images, else the better of 1 and 2; --predictor to fix)' : ''}`,
  ]
  io.stderr.write(`dataset ${dataset}: ${chosen.join(', ')}\n`)
  if (result.head !== undefined) io.stdout.write(`${result.head}\n`)
  const first = result.failures[0]
  if (first !== undefined) {
    const message = `${result.failed} of ${result.total} files could not be imported (listed above); the others are in dataset ${dataset}`
    throw new TesseraError(first.error.code ?? 'ERR_INTEGRITY', message)
  }
}

/** `auto`, or an integer (commander's parser). */
function intOrAuto(value: string): number | 'auto' {
  return value === 'auto' ? value : int(value)
}

/** A status line on standard error, rewritten in place, when it is a terminal. */
function statusLine(io: CliIo) {
  if ((io.stderr as { isTTY?: boolean }).isTTY !== true) return undefined
  const started = Date.now()
  let shown = false
  return {
    seconds: () => (Date.now() - started) / 1000,
    show: (text: string) => {
      io.stderr.write(`\r${text}`)
      shown = true
    },
    /** Erases the line (before other output). */
    clear: () => {
      if (shown) io.stderr.write('\r\x1b[K')
      shown = false
    },
    /** Leaves the line as it is and moves on. */
    end: () => io.stderr.write('\n'),
  }
}

/** `[####......]`, 30 wide: full when there is nothing to do. */
function bar(done: number, total: number): string {
  const filled = total === 0 ? 30 : Math.round((30 * done) / total)
  return `[${'#'.repeat(filled)}${'.'.repeat(30 - filled)}]`
}
