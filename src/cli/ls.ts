/** `tessera ls [SPEC]`: the pinned images, or the entries and directories of (part of) a dataset. */
import type { Command } from 'commander'
import type { DatasetEntry } from '../dataset/interface.js'
import { InvalidArgumentError } from '../errors.js'
import { command, iso, printRows, withStore } from './command.js'
import type { CliIo } from './main.js'
import { storeOption } from './output.js'

/** The `ls` command. */
export function lsCommand(io: CliIo): Command {
  return command(io, 'ls', 'list pinned images; with NAME[/path], the entries and directories of a dataset')
    .argument('[spec]', 'NAME, NAME/dir, NAME/path, or a dataset version CID (with /path)')
    .addOption(storeOption())
    .option('-r, --recursive', 'list every entry under the path, not only the top level')
    .option('--json', 'print JSON')
    .action(async (spec: string | undefined, opts) => {
      await withStore(io, opts, async (store) => {
        if (spec === undefined) {
          const pins = []
          for await (const { cid, added, label } of store.pins()) pins.push({ cid: cid.toString(), added, label })
          printRows(io, opts.json === true, pins, (pin) => `${pin.cid}\t${iso(pin.added)}\t${pin.label}`)
          return
        }
        const { resolveSpecifier } = await import('../dataset/dataset.js')
        const { listEntries } = await import('../dataset/resolve.js')
        const resolved = await resolveSpecifier(store, spec)
        if (resolved.kind === 'cid') throw new InvalidArgumentError(`${spec} is a CID: ls lists datasets (NAME[/path]); see tessera info`)
        const rows: unknown[] = []
        const entry = (e: DatasetEntry) => {
          if (opts.json) rows.push({ name: e.name, image: e.image.toString(), size: e.size, mtime: e.mtime })
          else io.stdout.write(`${e.name}\t${e.image}\t${e.size}\t${iso(e.mtime)}\n`)
        }
        for await (const item of listEntries(store, resolved, { recursive: opts.recursive === true })) {
          if (item.kind === 'entry') entry(item.entry)
          else if (opts.json) rows.push({ directory: item.name, entries: item.count })
          else io.stdout.write(`${item.name}/\t${item.count} entries\n`)
        }
        if (opts.json) io.stdout.write(`${JSON.stringify(rows)}\n`)
      })
    })
}
