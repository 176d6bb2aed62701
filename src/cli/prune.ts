/** `tessera prune NAME --keep N`: drop a dataset's older versions. */
import type { Command } from 'commander'
import { command, withStore } from './command.js'
import type { CliIo } from './main.js'
import { int, storeOption } from './output.js'

/** The `prune` command. */
export function pruneCommand(io: CliIo): Command {
  return command(io, 'prune', "drop a dataset's older versions (their blocks become garbage for tessera gc)")
    .argument('<name>')
    .addOption(storeOption())
    .option('--keep <n>', 'versions to keep, newest first', int, 1)
    .action(async (name: string, opts) => {
      await withStore(io, opts, async (store) => {
        const { pruneHistory } = await import('../dataset/dataset.js')
        const result = await pruneHistory(store, name, opts.keep)
        io.stdout.write(`${result.head}\n`)
        io.stderr.write(`dataset ${name}: dropped ${result.dropped} version(s)\n`)
      })
    })
}
