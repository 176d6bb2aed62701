/**
 * `tessera crop INPUT --region x,y,w,h [--region ...]` and `tessera export SPEC`: regions or a
 * whole image (of any level) in any output format, to files or standard output
 * (spec/outputs.md). INPUT is a stored image (CID or dataset name), or an image file or
 * standard input cropped as it streams, without importing it (spec/outputs.md, Stream cropping).
 */
import { stat } from 'node:fs/promises'
import { resolve } from 'node:path'
import type { Readable } from 'node:stream'
import { type Command, Option } from 'commander'
import type { DecodePool } from '../crop/decode-pool.js'
import { InvalidArgumentError, InvalidRegionError } from '../errors.js'
import type { Region } from '../format/interface.js'
import type { TesseraImage } from '../image.js'
import { peakRssBytes } from '../peak-rss.js'
import { command, withStore, writeOutput } from './command.js'
import type { CliIo } from './main.js'
import { int, storeOption } from './output.js'

const FORMATS = ['tiff', 'png', 'npy', 'pam', 'ppm', 'pgm', 'raw'] as const
type Format = (typeof FORMATS)[number]

const INPUT_HELP = `INPUT is, in this order: - (standard input, cropped as it streams); a CID, or CID/path, of the
store; an existing file (PNG, PNM, TIFF, a Tessera CAR; JPEG, WebP, GIF through libvips),
cropped as it is read, without importing it; else a dataset name (NAME/path) of the store.
With several --region, -o is a pattern ({i}: the region's index from 0, {x} {y} {w} {h}:
its numbers; e.g. crop-{i}.png) or a directory (DIR/crop-{i}.EXT); the input is read once.`

/** The `crop` command. */
export function cropCommand(io: CliIo): Command {
  const crop = command(io, 'crop', 'crop regions of a stored image, an image file or standard input, losslessly')
    .argument('<input>', 'CID, NAME/path, image file, or - for standard input (see below)')
    .requiredOption(
      '--region <x,y,w,h>',
      'region in pixels of the chosen level, origin top-left; repeat for several outputs',
      (value: string, previous: Region[] | undefined) => [...(previous ?? []), parseRegion(value)],
    )
    .option('--clip', 'clip a region that extends past the image instead of failing')
    .addHelpText('after', `\n${INPUT_HELP}`)
  return outputOptions(crop).action((spec: string, opts: CropArgs) => cropAny(io, spec, opts))
}

/** The `export` command. */
export function exportCommand(io: CliIo): Command {
  return outputOptions(command(io, 'export', 'write a whole image (any level)').argument('<cid>')).action((spec: string, opts) =>
    writeImage(io, spec, opts),
  )
}

/** The options crop and export share, in the order help lists them. */
function outputOptions(cmd: Command): Command {
  const compression = new Option('--compression <c>', 'tiff: zstd (default), deflate, none; png: deflate (default), none')
  return cmd
    .addOption(storeOption())
    .requiredOption('-o, --output <path>', 'output file, - for standard output; with several regions a pattern or directory')
    .addOption(new Option('-f, --format <format>', 'output format (default: from the file extension, else tiff)').choices(FORMATS))
    .option('--level <n>', 'pyramid level (0 = full resolution; a stored image or a Tessera CAR)', int, 0)
    .addOption(compression.choices(['zstd', 'deflate', 'none']))
    .option('--stats', 'print what was read (and, for a file or stream, rows decoded and peak memory) to standard error')
}

interface WriteArgs {
  readonly store?: string
  readonly output: string
  readonly format?: Format
  readonly level: number
  readonly compression?: 'zstd' | 'deflate' | 'none'
  readonly stats?: boolean
  readonly clip?: boolean
}

interface CropArgs extends WriteArgs {
  readonly region: readonly Region[]
}

/** Where the input of `crop` comes from (see INPUT_HELP). */
async function inputKind(io: CliIo, spec: string): Promise<'stdin' | 'store' | 'file'> {
  if (spec === '-') return 'stdin'
  const head = spec.split('/')[0]!
  // CID strings (base32, base58btc, base36) are alphanumeric: file names with a dot are not
  // tried, which spares a stream crop loading the facade.
  if (/^[A-Za-z0-9]+$/.test(head)) {
    const { parseCid } = await import('../image.js')
    try {
      parseCid(head)
      return 'store'
    } catch {
      // Not a CID: a file if there is one, else a name.
    }
  }
  const stats = await stat(resolve(io.cwd, spec)).catch(() => undefined)
  return stats !== undefined && !stats.isDirectory() ? 'file' : 'store'
}

async function cropAny(io: CliIo, spec: string, opts: CropArgs): Promise<void> {
  const regions = opts.region
  const kind = await inputKind(io, spec)
  const outputs = await outputPaths(io, opts, regions)
  if (kind === 'store') {
    for (let i = 0; i < regions.length; i++)
      await writeImage(io, spec, { ...opts, output: outputs[i]!.path, format: outputs[i]!.format }, regions[i])
    return
  }
  const { cropStream } = await import('../stream/index.js')
  const stdin = (io as CliIo & { readonly stdin?: Readable }).stdin ?? process.stdin
  const input = kind === 'stdin' ? stdin : resolve(io.cwd, spec)
  const crop = await cropStream(input, regions, {
    format: outputs[0]!.format,
    compression: opts.compression,
    clip: opts.clip === true,
    level: opts.level,
  })
  // Every output at once: they are fed by one pass over the input. The first failure stops the
  // pass, so the others fail too and remove their partial files.
  const results = await Promise.allSettled(
    crop.outputs.map(async (output, i) => {
      try {
        await writeOutput(io, outputs[i]!.path, output.bytes())
      } catch (error) {
        void crop.close(error)
        throw error
      }
    }),
  )
  await crop.done.catch(() => undefined)
  const failed = results.find((result) => result.status === 'rejected')
  if (failed !== undefined) throw failed.reason
  if (opts.stats) {
    const { bytesRead, inputBytes, rowsDecoded, tilesDecoded } = crop.stats
    const of = inputBytes === undefined ? '' : ` of ${inputBytes} (${((100 * bytesRead) / Math.max(1, inputBytes)).toFixed(1)}%)`
    const rss = (peakRssBytes() / 2 ** 20).toFixed(0)
    io.stderr.write(
      `input bytes read: ${bytesRead}${of}, rows decoded: ${rowsDecoded}, tiles decoded: ${tilesDecoded}, peak RSS: ${rss} MiB\n`,
    )
  }
}

/**
 * Each region's output path and format: `-o` itself for one region; with several, `-o` as a
 * pattern ({i} {x} {y} {w} {h}) or a directory. Checked before anything is read.
 */
async function outputPaths(io: CliIo, opts: WriteArgs, regions: readonly Region[]): Promise<Array<{ path: string; format: Format }>> {
  const output = opts.output
  const pattern = /\{[ixywh]\}/.test(output)
  if (regions.length === 1 && !pattern) return [{ path: output, format: await outputFormat(opts.format, output) }]
  if (output === '-')
    throw new InvalidArgumentError(
      'Several regions cannot all go to standard output: give -o a pattern such as crop-{i}.tiff, or a directory',
    )
  let template = output
  if (!pattern) {
    const isDir = output.endsWith('/') || (await stat(resolve(io.cwd, output)).catch(() => undefined))?.isDirectory() === true
    if (!isDir) {
      throw new InvalidArgumentError(
        `With several regions, -o must be a pattern with {i} (e.g. crop-{i}.png) or a directory, not ${output}`,
      )
    }
    const { OUTPUT_FORMATS } = await import('../crop/writers/formats.js')
    template = `${output.replace(/\/+$/, '')}/crop-{i}.${OUTPUT_FORMATS[opts.format ?? 'tiff'].extensions[0]}`
  }
  const format = await outputFormat(opts.format, template)
  const paths = regions.map((r, i) =>
    template.replace(/\{([ixywh])\}/g, (_, key: string) => String({ i, x: r.x, y: r.y, w: r.width, h: r.height }[key])),
  )
  const duplicate = paths.find((path, i) => paths.indexOf(path) !== i)
  if (duplicate !== undefined)
    throw new InvalidArgumentError(`Two regions would both be written to ${duplicate}: add {i} to the -o pattern`)
  return paths.map((path) => ({ path, format }))
}

async function writeImage(io: CliIo, spec: string, opts: WriteArgs, region?: Region): Promise<void> {
  const { openImage, cropImage, exportImage, emptyStats } = await import('../image.js')
  const { resolveImage } = await import('../dataset/dataset.js')
  const stats = emptyStats()
  let threads = 0
  await withStore(io, opts, async (store) => {
    const image = await openImage(store, await resolveImage(store, spec))
    const format = await outputFormat(opts.format, opts.output)
    const decodePool = await poolFor(image, region, opts.level ?? 0, format, opts.compression)
    threads = decodePool?.size ?? 0
    const options = { format, level: opts.level, stats, clip: opts.clip === true, compression: opts.compression, decodePool }
    try {
      await writeOutput(io, opts.output, await (region ? cropImage(image, region, options) : exportImage(image, options)))
    } finally {
      await decodePool?.close()
    }
  })
  if (opts.stats) {
    const { tilesRead, tileBytesRead, indexBlocksRead } = stats
    const decoding = threads === 0 ? '' : `, decoded on ${threads} threads`
    io.stderr.write(`tiles read: ${tilesRead}, tile bytes read: ${tileBytesRead}, index blocks read: ${indexBlocksRead}${decoding}\n`)
  }
}

/**
 * Tiles a crop must touch before its tile rows decode on a thread per core (DecodePool.bands):
 * starting the threads, each opening the store, costs more than it saves on a smaller one.
 */
const POOL_MIN_TILES = 1024

/**
 * Decode threads for a crop (or export, `region` undefined) of `level` that is large enough,
 * unless its writer deflates on every core already (PNG, deflate TIFF): exporting the benchmark
 * image took 2.1-2.6 s instead of 3.0-3.9 as raw, 3.1 instead of 5.0-5.3 as uncompressed TIFF,
 * but as PNG 11.0-11.6 s instead of 11.3-12.3, with 140 MiB more (bench/README.md, Exports).
 */
async function poolFor(
  image: TesseraImage,
  region: Region | undefined,
  level: number,
  format: Format,
  compression: WriteArgs['compression'],
): Promise<DecodePool | undefined> {
  if ((format === 'png' && compression !== 'none') || (format === 'tiff' && compression === 'deflate')) return undefined
  const { width, height } = image.reader.level(level)
  const { x = 0, y = 0, width: w = width, height: h = height } = region ?? {}
  const T = image.manifest.tileSize
  // A tile-aligned zstd TIFF is the stored payloads: nothing to decode.
  if (format === 'tiff' && (compression ?? 'zstd') === 'zstd' && Math.max(x, 0) % T === 0 && Math.max(y, 0) % T === 0) return undefined
  const columns = Math.floor((Math.min(x + w, width) - 1) / T) - Math.floor(Math.max(x, 0) / T) + 1
  const rows = Math.floor((Math.min(y + h, height) - 1) / T) - Math.floor(Math.max(y, 0) / T) + 1
  if (columns <= 0 || rows <= 0 || columns * rows < POOL_MIN_TILES) return undefined
  const { openDecodePool } = await import('../image.js')
  return openDecodePool()
}

/**
 * `-f`, else the format the output's extension names (spec/outputs.md), else tiff. The lossy
 * formats of the table are for browsers (HTTP, IIIF): a path named for one is refused here
 * rather than given TIFF bytes under a .jpg name.
 */
async function outputFormat(given: Format | undefined, path: string): Promise<Format> {
  if (given !== undefined) return given
  // The table itself, not the facade: a stream crop does not load the facade (inputKind).
  const { extensionFormat } = await import('../crop/writers/formats.js')
  const named = extensionFormat(path)
  if (named === undefined) return 'tiff'
  if (!(FORMATS as readonly string[]).includes(named)) {
    throw new InvalidArgumentError(
      `${path} names a ${named} output, which tessera crop and export do not write: their outputs are exact (${named} is for browsers, over HTTP); pass -f/--format to choose one of ${FORMATS.join(', ')}`,
    )
  }
  return named as Format
}

function parseRegion(value: string): Region {
  const parts = value.split(',')
  if (parts.length !== 4 || parts.some((part) => !/^-?\d+$/.test(part.trim()))) {
    throw new InvalidRegionError(`Expected a region as x,y,width,height but received ${JSON.stringify(value)}`)
  }
  const [x, y, width, height] = parts.map(Number) as [number, number, number, number]
  return { x, y, width, height }
}
