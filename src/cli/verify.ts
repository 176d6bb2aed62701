/** `tessera verify SPEC | --all`: re-hash every block an image, a dataset or every root reaches. */
import type { Command } from 'commander'
import { TesseraError } from '../errors.js'
import { command, withStore } from './command.js'
import type { CliIo } from './main.js'
import { storeOption } from './output.js'

/** The `verify` command: the library picks the verifier that fits what SPEC names. */
export function verifyCommand(io: CliIo): Command {
  const verify = command(
    io,
    'verify',
    're-hash every block reachable from an image, a dataset (with its history), or with --all every root',
  )
  return verify
    .argument('[spec]', 'a CID, NAME/path, NAME (a dataset) or a dataset version CID')
    .addOption(storeOption())
    .option('--all', 'verify everything every pin and dataset reaches')
    .action(async (spec: string | undefined, opts) => {
      if ((spec === undefined) === (opts.all !== true)) verify.error('error: expected either a CID or NAME, or --all', { exitCode: 2 })
      const { verifyAll } = await import('../dataset/maintenance.js')
      const { verifySpecifier } = await import('../dataset/resolve.js')
      await withStore(io, opts, async (store) => {
        let result: Awaited<ReturnType<typeof verifySpecifier>>
        if (spec === undefined) {
          const all = await verifyAll(store)
          io.stdout.write(`${all.roots} roots\n`)
          result = all
        } else result = await verifySpecifier(store, spec)
        for (const problem of result.problems) io.stderr.write(`${problem.cid}: ${problem.code}: ${problem.message}\n`)
        if (result.problems.length > 0) {
          throw new TesseraError('ERR_INTEGRITY', `${result.problems.length} bad or missing block(s) under ${spec ?? 'the store'}`)
        }
        io.stdout.write(`ok: ${result.blocks} blocks, ${result.bytes} bytes verified\n`)
      })
    })
}
