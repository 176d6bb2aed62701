/** `tessera gc`: delete the blocks no root reaches and reclaim their space (spec/store.md §10). */
import type { Command } from 'commander'
import type { CollectPhase } from '../store/interface.js'
import { bytes, command, withStore } from './command.js'
import type { CliIo } from './main.js'
import { int, storeOption } from './output.js'

/** The `gc` command. */
export function gcCommand(io: CliIo): Command {
  return command(io, 'gc', 'delete the blocks no pin, dataset (with its history) or reference reaches, and reclaim their disk space')
    .addOption(storeOption())
    .option('--dry-run', 'report what would be deleted, change nothing')
    .option('--lock-timeout <ms>', 'wait this long for another collection of the store to finish', int, 30_000)
    .option('--json', 'print JSON')
    .action(async (opts) => {
      const onPhase = testKillSwitch(io.env.TESSERA_TEST_KILL_AT)
      const dryRun = opts.dryRun === true
      const { collectGarbage } = await import('../dataset/maintenance.js')
      const result = await withStore(io, opts, (store) => collectGarbage(store, { dryRun, onPhase, lockTimeout: opts.lockTimeout }))
      if (opts.json) {
        io.stdout.write(`${JSON.stringify(result)}\n`)
        return
      }
      io.stdout.write(
        [
          `roots: ${result.roots}; kept ${result.keptBlocks} blocks (${bytes(result.keptBytes)})`,
          `${dryRun ? 'would delete' : 'deleted'} ${result.deletedBlocks} blocks (${bytes(result.deletedBytes)}); packs: ${result.packsRewritten} rewritten, ${result.packsDeleted} deleted (${result.orphanPacks} orphaned)`,
          `store: ${bytes(result.bytesBefore)} -> ${bytes(result.bytesAfter)}${dryRun ? ' (estimate)' : ''}`,
          '',
        ].join('\n'),
      )
    })
}

/**
 * Crash tests only: `TESSERA_TEST_KILL_AT=phase[:n]` kills the process with SIGKILL the n-th
 * time (default 1st) the collection reaches `phase` (spec/store.md §10.3).
 */
function testKillSwitch(spec: string | undefined): ((phase: CollectPhase) => void) | undefined {
  if (spec === undefined || spec === '') return undefined
  const [target, nth] = spec.split(':')
  let left = Number(nth ?? 1)
  return (phase) => {
    if (phase === target && --left === 0) process.kill(process.pid, 'SIGKILL')
  }
}
