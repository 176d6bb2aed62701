/**
 * `tessera crop SPEC --region x,y,w,h` and `tessera export SPEC`: a region or a whole image (of
 * any level) in any output format, to a file or standard output (spec/outputs.md).
 */
import { type Command, Option } from 'commander'
import { InvalidRegionError } from '../errors.js'
import type { Region } from '../format/interface.js'
import { command, withStore, writeOutput } from './command.js'
import type { CliIo } from './main.js'
import { int, storeOption } from './output.js'

const FORMATS = ['tiff', 'png', 'npy', 'pam', 'ppm', 'pgm', 'raw'] as const

/** The `crop` command. */
export function cropCommand(io: CliIo): Command {
  const crop = command(io, 'crop', 'crop a region of an image losslessly')
    .argument('<cid>')
    .requiredOption('--region <x,y,w,h>', 'region in pixels of the chosen level, origin top-left', parseRegion)
    .option('--clip', 'clip a region that extends past the image instead of failing')
  return outputOptions(crop).action((spec: string, opts) => writeImage(io, spec, opts))
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
    .requiredOption('-o, --output <path>', 'output file, or - for standard output')
    .addOption(new Option('-f, --format <format>', 'output format (default: from the file extension, else tiff)').choices(FORMATS))
    .option('--level <n>', 'pyramid level (0 = full resolution)', int, 0)
    .addOption(compression.choices(['zstd', 'deflate', 'none']))
    .option('--stats', 'print the tiles and bytes read to standard error')
}

interface WriteArgs {
  readonly store?: string
  readonly output: string
  readonly format?: (typeof FORMATS)[number]
  readonly level: number
  readonly compression?: 'zstd' | 'deflate' | 'none'
  readonly stats?: boolean
  readonly region?: Region
  readonly clip?: boolean
}

async function writeImage(io: CliIo, spec: string, opts: WriteArgs): Promise<void> {
  const { openImage, cropImage, exportImage, emptyStats } = await import('../image.js')
  const { resolveImage } = await import('../dataset/dataset.js')
  const stats = emptyStats()
  await withStore(io, opts, async (store) => {
    const image = await openImage(store, await resolveImage(store, spec))
    const format = opts.format ?? formatFromPath(opts.output) ?? 'tiff'
    const options = { format, level: opts.level, stats, clip: opts.clip === true, compression: opts.compression }
    await writeOutput(io, opts.output, await (opts.region ? cropImage(image, opts.region, options) : exportImage(image, options)))
  })
  if (opts.stats) {
    const { tilesRead, tileBytesRead, indexBlocksRead } = stats
    io.stderr.write(`tiles read: ${tilesRead}, tile bytes read: ${tileBytesRead}, index blocks read: ${indexBlocksRead}\n`)
  }
}

function formatFromPath(path: string): (typeof FORMATS)[number] | undefined {
  const ext = /\.([a-z]+)$/i.exec(path)?.[1]?.toLowerCase()
  if (ext === 'tif') return 'tiff'
  if (ext === 'bin') return 'raw'
  return FORMATS.find((format) => format === ext)
}

function parseRegion(value: string): Region {
  const parts = value.split(',')
  if (parts.length !== 4 || parts.some((part) => !/^-?\d+$/.test(part.trim()))) {
    throw new InvalidRegionError(`Expected a region as x,y,width,height but received ${JSON.stringify(value)}`)
  }
  const [x, y, width, height] = parts.map(Number) as [number, number, number, number]
  return { x, y, width, height }
}
