/**
 * The `tessera` command line. `main(argv, io)` runs one command and returns its exit code:
 * 0 success, 1 a Tessera error (printed as one line with its code), 2 a usage error.
 * Commands load the library lazily so that start-up stays short.
 */
import { resolve } from 'node:path'
import type { Writable } from 'node:stream'
import { Command, CommanderError, Option } from 'commander'
import { InvalidRegionError, TesseraError } from '../errors.js'
import type { Region } from '../format/interface.js'
import { datasetCommands, importIntoDataset, resolveImageArg, verifyCommand } from './dataset.js'
import { int, pump, storeDir, storeOption, writeFileAtomically } from './output.js'
import { sampleCommand } from './sample.js'
import { serveCommand } from './serve.js'

/** Where a CLI run reads and writes. */
export interface CliIo {
  readonly stdout: Writable
  readonly stderr: Writable
  readonly env: NodeJS.ProcessEnv
  readonly cwd: string
}

const FORMATS = ['tiff', 'png', 'npy', 'pam', 'ppm', 'pgm', 'raw'] as const

/** Runs the CLI with `argv` (arguments after the program name). */
export async function main(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  const program = buildProgram(io)
  try {
    await program.parseAsync([...argv], { from: 'user' })
    return 0
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2
    if (error instanceof TesseraError) {
      io.stderr.write(`tessera: ${error.code}: ${error.message}\n`)
      return 1
    }
    if ((error as NodeJS.ErrnoException).code === 'EPIPE') return 0
    if ((error as Error).name === 'AbortError') {
      io.stderr.write('tessera: ERR_ABORTED: the operation was cancelled\n')
      return 1
    }
    io.stderr.write(`tessera: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
    return 1
  }
}

function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() }
}

function buildProgram(io: CliIo): Command {
  const program = new Command('tessera')
    .description('Content-addressed tiled image store: import huge images, crop them losslessly')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) })
    .showHelpAfterError()
  program
    .command('import')
    .description(
      'import image files (PNG, JPEG, TIFF, WebP, PPM/PGM/PAM); prints one CID per file. With --dataset NAME: files and directory trees into a dataset; prints its new version',
    )
    .argument('<files...>')
    .addOption(storeOption())
    .option('--tile-size <n>', 'tile edge in pixels, a multiple of 16', int, 256)
    .option('--zstd-level <n>', 'zstd compression level', int, 3)
    .addOption(new Option('--predictor <n>', 'TIFF predictor: 1 none, 2 horizontal').choices(['1', '2']).default('2'))
    .option('--pyramid', 'also build the downscaled pyramid levels')
    .option('--max-pixels <n>', 'refuse images with more pixels (decompression-bomb guard)', int)
    .option('--label <text>', 'label of the image (default: the file name)')
    .option('--workers <n>', 'compression threads (default: one per core, at most 8; with --dataset, 0 per file)', int)
    .option('--dataset <name>', 'import files and directories (recursively, by extension) into this dataset')
    .option('--prefix <dir>', 'with --dataset: put the entries under this directory')
    .option('--jobs <n>', 'with --dataset: files imported at once (default 2)', int)
    .option('--checkpoint-files <n>', 'with --dataset: commit a version every n files (default 500)', int)
    .option('--checkpoint-seconds <n>', 'with --dataset: ... or every n seconds (default 30)', int)
    .action(async (files: string[], opts) => {
      if (opts.dataset !== undefined) return importIntoDataset(io, files, opts)
      const { openStore, importImage } = await import('../image.js')
      const store = await openStore(await storeDir(io, opts.store))
      try {
        for (const file of files) {
          const progress = progressBar(io, file)
          const result = await importImage(store, resolve(io.cwd, file), {
            tileSize: opts.tileSize,
            zstdLevel: opts.zstdLevel,
            predictor: Number(opts.predictor) as 1 | 2,
            pyramid: opts.pyramid === true,
            ...(opts.maxPixels === undefined ? {} : { maxPixels: opts.maxPixels }),
            ...(opts.label === undefined ? {} : { label: opts.label }),
            ...(opts.workers === undefined ? {} : { workers: opts.workers }),
            ...(progress ? { onProgress: progress.update } : {}),
          }).finally(() => progress?.done())
          io.stdout.write(`${result.cid}\n`)
        }
      } finally {
        await store.close()
      }
    })

  program
    .command('info')
    .description('describe an image: size, channels, depth, tiles, levels, bytes stored')
    .argument('<cid>')
    .addOption(storeOption())
    .option('--json', 'print JSON')
    .action(async (cid: string, opts) => {
      const { openStore, openImage, imageInfo } = await import('../image.js')
      const store = await openStore(await storeDir(io, opts.store), { create: false })
      try {
        const info = await imageInfo(await openImage(store, await resolveImageArg(store, cid)))
        if (opts.json) {
          io.stdout.write(`${JSON.stringify(info, null, 2)}\n`)
          return
        }
        const lines = [
          `cid:        ${info.cid}`,
          `size:       ${info.width} x ${info.height}`,
          `pixels:     ${info.colorModel}, ${info.channels} channel(s), ${info.bitsPerSample}-bit`,
          `tiles:      ${info.tileSize} x ${info.tileSize}, zstd level ${info.codec.level}, predictor ${info.codec.predictor}`,
          ...(info.source ? [`source:     ${info.source.format}${info.source.name ? ` (${info.source.name})` : ''}`] : []),
          ...(info.icc ? [`icc:        ${info.icc}`] : []),
          `levels:     ${info.levels.length}`,
          ...info.levels.map((l, i) => `  ${i}: ${l.width} x ${l.height}, ${l.columns} x ${l.rows} tiles, ${l.tileBytes} bytes`),
          `stored:     ${info.storedBytes} bytes in ${info.blocks} blocks (${ratio(info.storedBytes, info.pixelBytes)} of ${info.pixelBytes} pixel bytes)`,
        ]
        io.stdout.write(`${lines.join('\n')}\n`)
      } finally {
        await store.close()
      }
    })

  const outputOptions = (command: Command) =>
    command
      .addOption(storeOption())
      .requiredOption('-o, --output <path>', 'output file, or - for standard output')
      .addOption(new Option('-f, --format <format>', 'output format (default: from the file extension, else tiff)').choices(FORMATS))
      .option('--level <n>', 'pyramid level (0 = full resolution)', int, 0)
      .addOption(
        new Option('--compression <c>', 'tiff: zstd (default), deflate, none; png: deflate (default), none').choices([
          'zstd',
          'deflate',
          'none',
        ]),
      )
      .option('--stats', 'print the tiles and bytes read to standard error')

  outputOptions(
    program
      .command('crop')
      .description('crop a region of an image losslessly')
      .argument('<cid>')
      .requiredOption('--region <x,y,w,h>', 'region in pixels of the chosen level, origin top-left', parseRegion)
      .option('--clip', 'clip a region that extends past the image instead of failing'),
  ).action(async (cid: string, opts) => {
    await writeImage(io, cid, opts, opts.region as Region)
  })

  outputOptions(program.command('export').description('write a whole image (any level)').argument('<cid>')).action(
    async (cid: string, opts) => {
      await writeImage(io, cid, opts, undefined)
    },
  )

  program.addCommand(verifyCommand(io))

  for (const command of datasetCommands(io)) program.addCommand(command)

  program.addCommand(sampleCommand(io))

  program.addCommand(serveCommand(io))
  return program
}

async function writeImage(io: CliIo, cid: string, opts: Record<string, unknown>, region: Region | undefined): Promise<void> {
  const { openStore, openImage, cropImage, exportImage, emptyStats } = await import('../image.js')
  const output = String(opts.output)
  const format = (opts.format as string | undefined) ?? formatFromPath(output) ?? 'tiff'
  const store = await openStore(await storeDir(io, opts.store as string | undefined), { create: false })
  const stats = emptyStats()
  try {
    const image = await openImage(store, await resolveImageArg(store, cid))
    const options = {
      format: format as (typeof FORMATS)[number],
      level: opts.level as number,
      stats,
      clip: opts.clip === true,
      ...(opts.compression === undefined ? {} : { compression: opts.compression as 'zstd' | 'deflate' | 'none' }),
    }
    const bytes = region === undefined ? await exportImage(image, options) : await cropImage(image, region, options)
    if (output === '-') await pump(bytes, io.stdout)
    else await writeFileAtomically(resolve(io.cwd, output), bytes)
    if (opts.stats) {
      io.stderr.write(
        `tiles read: ${stats.tilesRead}, tile bytes read: ${stats.tileBytesRead}, index blocks read: ${stats.indexBlocksRead}\n`,
      )
    }
  } finally {
    await store.close()
  }
}

function formatFromPath(path: string): string | undefined {
  const match = /\.([a-z]+)$/i.exec(path)
  const ext = match?.[1]?.toLowerCase()
  if (ext === 'tif') return 'tiff'
  if (ext === 'bin') return 'raw'
  return ext !== undefined && (FORMATS as readonly string[]).includes(ext) ? ext : undefined
}

function parseRegion(value: string): Region {
  const parts = value.split(',')
  if (parts.length !== 4 || parts.some((part) => !/^-?\d+$/.test(part.trim()))) {
    throw new InvalidRegionError(`Expected a region as x,y,width,height but received ${JSON.stringify(value)}`)
  }
  const [x, y, width, height] = parts.map(Number) as [number, number, number, number]
  return { x, y, width, height }
}

function ratio(part: number, whole: number): string {
  return whole === 0 ? '-' : `${((100 * part) / whole).toFixed(1)}%`
}

/** A one-line progress bar on standard error when it is a terminal, else nothing. */
function progressBar(io: CliIo, label: string): { update: (done: number, total: number) => void; done: () => void } | undefined {
  if ((io.stderr as { isTTY?: boolean }).isTTY !== true) return undefined
  const started = Date.now()
  return {
    update: (done, total) => {
      const width = 30
      const filled = Math.round((width * done) / total)
      const seconds = ((Date.now() - started) / 1000).toFixed(1)
      io.stderr.write(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} tile rows ${seconds}s`)
    },
    done: () => io.stderr.write('\n'),
  }
}
