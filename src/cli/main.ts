/**
 * The `tessera` command line. `main(argv, io)` runs one command and returns its exit code:
 * 0 success, 1 a Tessera error (printed as one line with its code), 2 a usage error.
 * Commands load the library lazily so that start-up stays short.
 */
import { once } from 'node:events'
import { createWriteStream } from 'node:fs'
import { rename, rm } from 'node:fs/promises'
import { resolve } from 'node:path'
import type { Writable } from 'node:stream'
import { Command, InvalidArgumentError as CommanderArgumentError, CommanderError, Option } from 'commander'
import { InvalidRegionError, TesseraError } from '../errors.js'
import type { Region } from '../format/interface.js'

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
  const storeOption = () =>
    new Option('--store <dir>', 'store directory (default: $TESSERA_STORE, else $XDG_DATA_HOME/tessera, else ~/.local/share/tessera)')

  program
    .command('import')
    .description('import image files (PNG, JPEG, TIFF, WebP, PPM/PGM/PAM); prints one CID per file')
    .argument('<files...>')
    .addOption(storeOption())
    .option('--tile-size <n>', 'tile edge in pixels, a multiple of 16', int, 256)
    .option('--zstd-level <n>', 'zstd compression level', int, 3)
    .addOption(new Option('--predictor <n>', 'TIFF predictor: 1 none, 2 horizontal').choices(['1', '2']).default('2'))
    .option('--pyramid', 'also build the downscaled pyramid levels')
    .option('--max-pixels <n>', 'refuse images with more pixels (decompression-bomb guard)', int)
    .option('--label <text>', 'label of the image (default: the file name)')
    .option('--workers <n>', 'compression threads (default: one per core, at most 8)', int)
    .action(async (files: string[], opts) => {
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
        const info = await imageInfo(await openImage(store, cid))
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

  program
    .command('verify')
    .description('re-hash every block reachable from an image')
    .argument('<cid>')
    .addOption(storeOption())
    .action(async (cid: string, opts) => {
      const { openStore, verifyImage } = await import('../image.js')
      const store = await openStore(await storeDir(io, opts.store), { create: false })
      try {
        const result = await verifyImage(store, cid)
        for (const problem of result.problems) io.stderr.write(`${problem.cid}: ${problem.code}: ${problem.message}\n`)
        if (result.problems.length > 0) {
          throw new TesseraError('ERR_INTEGRITY', `${result.problems.length} bad or missing block(s) under ${cid}`)
        }
        io.stdout.write(`ok: ${result.blocks} blocks, ${result.bytes} bytes verified\n`)
      } finally {
        await store.close()
      }
    })

  program
    .command('ls')
    .description('list the images in the store')
    .addOption(storeOption())
    .action(async (opts) => {
      const { openStore } = await import('../image.js')
      const store = await openStore(await storeDir(io, opts.store), { create: false })
      try {
        for await (const pin of store.pins()) io.stdout.write(`${pin.cid}\t${new Date(pin.added).toISOString()}\t${pin.label}\n`)
      } finally {
        await store.close()
      }
    })

  return program
}

async function writeImage(io: CliIo, cid: string, opts: Record<string, unknown>, region: Region | undefined): Promise<void> {
  const { openStore, openImage, cropImage, exportImage, emptyStats } = await import('../image.js')
  const output = String(opts.output)
  const format = (opts.format as string | undefined) ?? formatFromPath(output) ?? 'tiff'
  const store = await openStore(await storeDir(io, opts.store as string | undefined), { create: false })
  const stats = emptyStats()
  try {
    const image = await openImage(store, cid)
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

/** Writes to `path` only once every byte is there: a failed crop leaves no partial file. */
async function writeFileAtomically(path: string, bytes: AsyncIterable<Uint8Array>): Promise<void> {
  const temporary = `${path}.${process.pid}.partial`
  const stream = createWriteStream(temporary)
  try {
    await pump(bytes, stream)
    stream.end()
    await once(stream, 'finish')
    await rename(temporary, path)
  } catch (error) {
    // Wait for the stream to close: removing the file while its open is pending would race.
    if (!stream.closed) {
      const closed = once(stream, 'close')
      stream.destroy()
      await closed
    }
    await rm(temporary, { force: true })
    throw error
  }
}

async function pump(bytes: AsyncIterable<Uint8Array>, stream: Writable): Promise<void> {
  for await (const chunk of bytes) {
    if (!stream.write(chunk)) await once(stream, 'drain')
  }
}

function formatFromPath(path: string): string | undefined {
  const match = /\.([a-z]+)$/i.exec(path)
  const ext = match?.[1]?.toLowerCase()
  if (ext === 'tif') return 'tiff'
  if (ext === 'bin') return 'raw'
  return ext !== undefined && (FORMATS as readonly string[]).includes(ext) ? ext : undefined
}

async function storeDir(io: CliIo, option: string | undefined): Promise<string> {
  const { defaultStoreDir } = await import('../store/location.js')
  return resolve(io.cwd, option ?? defaultStoreDir(io.env))
}

function int(value: string): number {
  if (!/^-?\d+$/.test(value)) throw new CommanderArgumentError(`expected an integer but received ${JSON.stringify(value)}`)
  return Number(value)
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
