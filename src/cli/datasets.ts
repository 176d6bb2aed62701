/** `tessera datasets`: every dataset with its entries, last change and head version. */
import type { Command } from 'commander'
import { command, iso, printRows, withStore } from './command.js'
import type { CliIo } from './main.js'
import { storeOption } from './output.js'

/** The `datasets` command. */
export function datasetsCommand(io: CliIo): Command {
  return command(io, 'datasets', 'list the datasets: name, entries, last change, head version')
    .addOption(storeOption())
    .option('--json', 'print JSON')
    .action(async (opts) => {
      await withStore(io, opts, async (store) => {
        const { listDatasets } = await import('../dataset/dataset.js')
        const rows = []
        for await (const { name, cid, version } of listDatasets(store)) {
          rows.push({ name, entries: version.count, time: version.time, head: cid.toString(), interrupted: version.checkpoint === true })
        }
        printRows(io, opts.json === true, rows, (row) => {
          const flag = row.interrupted ? '\t(interrupted import: run it again to resume)' : ''
          return `${row.name}\t${row.entries} entries\t${iso(row.time)}\t${row.head}${flag}`
        })
      })
    })
}
