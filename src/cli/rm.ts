/** `tessera rm SPEC...`: unpin images, remove dataset entries or whole datasets (the library decides which). */
import type { Command } from 'commander'
import { command, withStore } from './command.js'
import type { CliIo } from './main.js'
import { storeOption } from './output.js'

/** The `rm` command. */
export function rmCommand(io: CliIo): Command {
  return command(
    io,
    'rm',
    'drop references: NAME (a dataset), NAME/path (entries, one new version per dataset), CID (unpin an image); tessera gc reclaims the space',
  )
    .argument('<specs...>')
    .addOption(storeOption())
    .option('-r, --recursive', 'NAME/dir removes every entry under dir')
    .action(async (specs: string[], opts) => {
      await withStore(io, opts, async (store) => {
        const { removeSpecifiers } = await import('../dataset/resolve.js')
        for await (const done of removeSpecifiers(store, specs, { recursive: opts.recursive === true })) {
          if (done.kind === 'unpinned') io.stdout.write(`unpinned ${done.cid}\n`)
          else if (done.kind === 'dataset') io.stdout.write(`removed dataset ${done.name} (head was ${done.head})\n`)
          else io.stdout.write(`${done.name}: removed ${done.removed.length} entr${done.removed.length === 1 ? 'y' : 'ies'}\n`)
        }
      })
    })
}
