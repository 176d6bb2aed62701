/**
 * `tessera sample`: a seeded batch of random crops for machine learning (spec/sample.md), as
 * one NumPy array of shape (count, height, width, channels) or the samples concatenated, with
 * an optional file of the regions drawn.
 */
import { type Command, InvalidArgumentError as CommanderArgumentError, Option } from 'commander'
import { InvalidArgumentError } from '../errors.js'
import type { SampleBatch, SampleFormat } from '../sample.js'
import { command, withStore, writeOutput } from './command.js'
import type { CliIo } from './main.js'
import { int, storeOption } from './output.js'

/** The `sample` command. */
export function sampleCommand(io: CliIo): Command {
  return command(io, 'sample', 'write a seeded batch of random crops: one NumPy array (count, height, width, channels), or raw')
    .argument(
      '<images...>',
      'images to sample from: CIDs, NAME (every entry of a dataset), NAME/path (an entry, or every entry of a directory); chosen uniformly, list one twice to weight it double',
    )
    .addOption(storeOption())
    .requiredOption('--size <n|WxH>', 'sample size in pixels: 224, or 256x128 (width x height)', parseSize)
    .requiredOption('--count <n>', 'number of samples', int)
    .requiredOption('--seed <seed>', 'decimal digits: an integer below 2^32; anything else: a string (hashed)')
    .option('--align', 'draw origins on the tile grid only')
    .option('--level <n>', 'pyramid level to sample (0 = full resolution)', int, 0)
    .requiredOption('-o, --output <path>', 'output file, or - for standard output')
    .addOption(new Option('-f, --format <format>', 'npy or raw (default: from the file extension, else npy)').choices(['npy', 'raw']))
    .option('--regions <path>', 'also write the regions drawn: JSON if the path ends in .json, else CSV')
    .option(
      '--threads <n>',
      'decode threads (default: one per core, at most 8; with --shard i/n, the share of the cores of one of n processes, none when that is one core or less)',
      int,
    )
    .option('--shard <i/n>', 'only samples whose index is i modulo n: n processes with shards 0/n..n-1/n share one batch', parseShard)
    .action(async (cids: string[], opts) => {
      const { openSampleBatch, writeSamples } = await import('../sample.js')
      const output = String(opts.output)
      const format: SampleFormat = opts.format ?? (await batchFormat(output))
      if (output === '-' && opts.regions === '-')
        throw new InvalidArgumentError('The batch and its regions cannot both go to standard output')
      const { DecodePool, shardThreads } = await import('../sample.js')
      await withStore(io, opts, async (store) => {
        // Samples decode on every core (a shard's share of them); a few in flight per thread keep each thread busy.
        const decoder = new DecodePool(opts.threads ?? shardThreads(opts.shard?.count ?? 1))
        try {
          // Every image is opened and checked before the output file is created.
          const batch = await openSampleBatch(store, cids, {
            ...(opts.size as { width: number; height: number }),
            count: opts.count,
            seed: /^\d+$/.test(opts.seed) ? Number(opts.seed) : String(opts.seed),
            align: opts.align === true,
            level: opts.level,
            decoder,
            concurrency: Math.max(1, decoder.size * 3),
            ...(opts.shard === undefined ? {} : { shard: opts.shard }),
          })
          await writeOutput(io, output, writeSamples(batch, format))
          if (opts.regions !== undefined) {
            const path = String(opts.regions)
            await writeOutput(io, path, regionRows(batch, /\.json$/i.test(path) ? 'json' : 'csv'))
          }
        } finally {
          await decoder.close()
        }
      })
    })
}

/** The plan as CSV (`index,cid,x,y,width,height,level` and a header line) or a JSON array. */
async function* regionRows(batch: SampleBatch, kind: 'csv' | 'json'): AsyncGenerator<Uint8Array> {
  const encoder = new TextEncoder()
  let text = kind === 'csv' ? 'index,cid,x,y,width,height,level\n' : '['
  for (const { index, image, region } of batch.plan()) {
    const cid = batch.images[image]!.cid.toString()
    const { x, y, width, height } = region
    text +=
      kind === 'csv'
        ? `${index},${cid},${x},${y},${width},${height},${batch.level}\n`
        : `${index === 0 ? '\n' : ',\n'}  ${JSON.stringify({ index, cid, x, y, width, height, level: batch.level })}`
    if (text.length >= 1 << 16) {
      yield encoder.encode(text)
      text = ''
    }
  }
  yield encoder.encode(kind === 'csv' ? text : `${text}\n]\n`)
}

/** `i/n`, 0 <= i < n. */
function parseShard(value: string): { index: number; count: number } {
  const match = /^(\d+)\/(\d+)$/.exec(value)
  const index = Number(match?.[1])
  const count = Number(match?.[2])
  if (match === null || count < 1 || index >= count)
    throw new CommanderArgumentError(`expected i/n with 0 <= i < n but received ${JSON.stringify(value)}`)
  return { index, count }
}

/** `224` or `256x128` (width x height). */
function parseSize(value: string): { width: number; height: number } {
  const match = /^(\d+)(?:x(\d+))?$/i.exec(value)
  if (match === null) throw new CommanderArgumentError(`expected N or WxH but received ${JSON.stringify(value)}`)
  const width = Number(match[1])
  return { width, height: match[2] === undefined ? width : Number(match[2]) }
}

/**
 * The batch's format from its path: raw for .raw and .bin, else npy. A path named for an image
 * format (.png, .tif, ...) is refused: a batch is one array of many samples, not an image.
 */
async function batchFormat(path: string): Promise<SampleFormat> {
  const { extensionFormat } = await import('../image.js')
  const named = extensionFormat(path)
  if (named === 'raw' || named === 'npy') return named
  if (named !== undefined) {
    throw new InvalidArgumentError(`${path} names a ${named} output, but a batch is one array of samples: npy or raw (-f/--format)`)
  }
  return 'npy'
}
