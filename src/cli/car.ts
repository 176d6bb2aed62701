/** `tessera car export|import`: CAR files (IPFS content archives) of images and datasets. */
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { resolve } from 'node:path'
import type { Command } from 'commander'
import { InvalidArgumentError, NotFoundError } from '../errors.js'
import { command, withStore, writeOutput } from './command.js'
import type { CliIo } from './main.js'
import { storeOption } from './output.js'

/** The `car` command and its two subcommands. */
export function carCommand(io: CliIo): Command {
  const car = command(io, 'car', 'CAR (IPFS content archive) export and import')
  car.addCommand(
    command(io, 'export', 'write a CARv1 of an image or dataset (with its history) and every block it reaches')
      .argument('<spec>', 'a CID, NAME (a dataset), NAME/path (an image) or a dataset version CID')
      .addOption(storeOption())
      .requiredOption('-o, --output <path>', 'output file, or - for standard output')
      .action(async (spec: string, opts) => {
        const { resolveRoot } = await import('../dataset/resolve.js')
        const { exportCar } = await import('../car/export.js')
        await withStore(io, opts, async (store) => {
          const root = await resolveRoot(store, spec)
          const stats = { blocks: 0, bytes: 0 }
          await writeOutput(io, String(opts.output), exportCar(store, root, { stats }))
          io.stderr.write(`${root}: ${stats.blocks} blocks, ${stats.bytes} bytes\n`)
        })
      }),
  )
  car.addCommand(
    command(io, 'import', 'import a CAR: every block verified against its CID, the DAG complete, or nothing is imported')
      .argument('<file>', 'a CAR file, or - for standard input')
      .addOption(storeOption())
      .option('--name <name>', "name for a dataset root (default: the dataset's recorded name)")
      .option('--label <text>', 'label of the pin for an image root (default: its source file name)')
      .action(async (file: string, opts) => {
        const { importCar } = await import('../car/import.js')
        const path = resolve(io.cwd, file)
        const result = await withStore(
          io,
          opts,
          async (store) => {
            if (file !== '-') {
              const stats = await stat(path).catch(() => undefined)
              if (stats === undefined) throw new NotFoundError(`CAR file ${file} does not exist`)
              if (!stats.isFile()) throw new InvalidArgumentError(`${file} is not a regular file`)
            }
            return importCar(store, file === '-' ? process.stdin : createReadStream(path), { name: opts.name, label: opts.label })
          },
          { create: true },
        )
        for (const root of result.roots) io.stdout.write(`${root.cid}\t${root.kind}\t${root.name}\n`)
        io.stderr.write(`${result.blocks} blocks verified, ${result.newBlocks} new (${result.newBytes} bytes)\n`)
      }),
  )
  return car
}
