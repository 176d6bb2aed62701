/** `tessera repair`: rebuild what the packs can tell of a lost root log, lost indexes and damaged packs (spec/store.md §8). */
import type { Command } from 'commander'
import type { RepairReport } from '../dataset/repair.js'
import { IntegrityError } from '../errors.js'
import { command, withStore } from './command.js'
import type { CliIo } from './main.js'
import { storeOption } from './output.js'

/** The `repair` command: exit 0 when everything is whole again, else ERR_INTEGRITY naming what is lost. */
export function repairCommand(io: CliIo): Command {
  return command(
    io,
    'repair',
    'read every pack: rewrite missing or damaged indexes, make packs the root log lost live again, re-pin their images and datasets; report what is lost',
  )
    .addOption(storeOption())
    .option('--dry-run', 'report what would be done, change nothing')
    .option('--json', 'print JSON')
    .action(async (opts) => {
      const onPhase = testKillSwitch(io.env.TESSERA_TEST_KILL_AT)
      const { repair } = await import('../dataset/repair.js')
      const report = await withStore(io, opts, (store) => repair(store, { dryRun: opts.dryRun === true, onPhase }))
      if (opts.json === true) io.stdout.write(`${JSON.stringify(report)}\n`)
      else io.stdout.write(describe(report))
      if (report.lost.length > 0 || report.incomplete.length > 0) {
        if (opts.json !== true) for (const cid of report.lost) io.stderr.write(`${cid}: ERR_NOT_FOUND: lost\n`)
        throw new IntegrityError(
          `${report.lost.length} block(s) lost; ${report.incomplete.length} image(s) or dataset(s) incomplete${report.incomplete.length > 0 ? `: ${report.incomplete.map((root) => root.source).join(', ')}` : ''}`,
        )
      }
    })
}

function describe(report: RepairReport): string {
  const would = report.dryRun ? 'would be ' : ''
  const lines: string[] = []
  if (report.logLost) lines.push('the root log named no pack: it was lost')
  for (const pack of report.packs) {
    if (pack.index === 'ok' && pack.status === 'live' && pack.damage.length === 0) continue
    const what = [
      pack.status === 'recovered' ? `${would}made live` : pack.status === 'empty' ? 'no intact block' : 'live',
      `index ${pack.index}${pack.indexWritten ? ` (${would}rewritten)` : ''}`,
      `${pack.blocks} blocks`,
      ...(pack.damage.length > 0 ? [`damaged at ${pack.damage.map((d) => `${d.offset}+${d.length}`).join(', ')}`] : []),
      ...(pack.lost.length > 0 ? [`${pack.lost.length} lost`] : []),
    ]
    lines.push(`pack ${pack.name}: ${what.join('; ')}`)
  }
  for (const name of report.missingPacks) lines.push(`pack ${name}: missing (named by the root log)`)
  for (const pin of report.pins) lines.push(`pin ${pin.cid} ${JSON.stringify(pin.label)} ${report.dryRun ? '(would be added)' : 'added'}`)
  for (const [name, cid] of Object.entries(report.refs)) lines.push(`ref ${name} -> ${cid} ${report.dryRun ? '(would be set)' : 'set'}`)
  for (const root of report.incomplete) lines.push(`incomplete: ${root.source} (${root.cid}): ${root.missing} block(s) missing`)
  const changed = report.recovered.length + report.indexesWritten.length + report.pins.length + Object.keys(report.refs).length
  lines.push(
    `${report.packs.length} packs read, ${report.blocks} intact blocks; ${report.recovered.length} packs ${would}made live, ${report.indexesWritten.length} indexes ${would}written, ${report.pins.length} pins and ${Object.keys(report.refs).length} references ${would}added; ${report.lost.length} blocks lost${changed === 0 && report.lost.length === 0 ? ' (nothing to repair)' : ''}`,
  )
  return `${lines.join('\n')}\n`
}

/**
 * Crash tests only: `TESSERA_TEST_KILL_AT=phase[:n]` kills the process with SIGKILL the n-th
 * time (default 1st) the repair reaches `phase` (spec/store.md §8).
 */
function testKillSwitch(spec: string | undefined): ((phase: string) => void) | undefined {
  if (spec === undefined || spec === '') return undefined
  const [target, nth] = spec.split(':')
  let left = Number(nth ?? 1)
  return (phase) => {
    if (phase === target && --left === 0) process.kill(process.pid, 'SIGKILL')
  }
}
