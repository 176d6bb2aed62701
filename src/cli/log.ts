/** `tessera log SPEC`: the versions of a dataset, newest first. */
import type { Command } from 'commander'
import { command, iso, printRows, withStore } from './command.js'
import type { CliIo } from './main.js'
import { storeOption } from './output.js'

/** The `log` command. */
export function logCommand(io: CliIo): Command {
  return command(io, 'log', 'list the versions of a dataset, newest first')
    .argument('<spec>', 'NAME, or a dataset version CID')
    .addOption(storeOption())
    .option('--json', 'print JSON')
    .action(async (spec: string, opts) => {
      await withStore(io, opts, async (store) => {
        const { history } = await import('../dataset/dataset.js')
        const { resolveDataset } = await import('../dataset/resolve.js')
        const rows = []
        for await (const { cid, version } of history(store, (await resolveDataset(store, spec)).cid)) {
          const { time, count: entries, note } = version
          rows.push({ cid: cid.toString(), time, entries, note, checkpoint: version.checkpoint === true })
        }
        printRows(io, opts.json === true, rows, (row) => {
          const note = row.checkpoint ? `${row.note} (checkpoint)` : row.note
          return `${row.cid}\t${iso(row.time)}\t${row.entries} entries\t${note}`
        })
      })
    })
}
