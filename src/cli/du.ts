/** `tessera du [SPEC...]`: dedup accounting of datasets, pinned images and the whole store. */
import type { Command } from 'commander'
import type { Usage } from '../dataset/accounting.js'
import { bytes, command, withStore } from './command.js'
import type { CliIo } from './main.js'
import { storeOption } from './output.js'

/** The `du` command. */
export function duCommand(io: CliIo): Command {
  return command(io, 'du', 'dedup accounting: images, pixel bytes, bytes stored per image and in all, tiles, dedup ratio')
    .argument('[datasets...]', 'NAME or dataset version CID (default: every dataset and pinned image)')
    .addOption(storeOption())
    .option('--json', 'print JSON')
    .action(async (specs: string[], opts) => {
      const json = (value: unknown) => io.stdout.write(`${JSON.stringify(value, null, 2)}\n`)
      await withStore(io, opts, async (store) => {
        const { UsageCounter, storeUsage } = await import('../dataset/accounting.js')
        const { resolveDataset } = await import('../dataset/resolve.js')
        if (specs.length === 0) {
          const report = await storeUsage(store)
          if (opts.json) return json(report)
          for (const { name, usage } of report.datasets) io.stdout.write(formatUsage(`dataset ${name}`, usage))
          if (report.pins.entries > 0) io.stdout.write(formatUsage('pinned images', report.pins))
          io.stdout.write(formatUsage('all together', report.total))
          io.stdout.write(`store on disk:     ${bytes(report.storedBytes)} in pack files (tessera gc reclaims what no root reaches)\n`)
          return
        }
        const total = new UsageCounter(store)
        const rows = []
        for (const spec of specs) {
          const resolved = await resolveDataset(store, spec)
          const one = new UsageCounter(store)
          await one.addVersion(resolved)
          await total.addVersion(resolved)
          rows.push({ name: resolved.name ?? resolved.cid.toString(), head: resolved.cid.toString(), usage: one.usage() })
        }
        if (opts.json) return json(rows.length === 1 ? rows[0] : { datasets: rows, total: total.usage() })
        for (const row of rows) io.stdout.write(formatUsage(`dataset ${row.name}`, row.usage))
        if (rows.length > 1) io.stdout.write(formatUsage('all together', total.usage()))
      })
    })
}

function formatUsage(title: string, u: Usage): string {
  const share = u.tiles === 0 ? '-' : `${((100 * u.uniqueTiles) / u.tiles).toFixed(1)}%`
  return [
    `${title}`,
    `  images:          ${u.entries} (${u.images} distinct)`,
    `  source files:    ${bytes(u.sourceBytes)}`,
    `  pixels:          ${bytes(u.pixelBytes)} (level 0, uncompressed)`,
    `  stored apart:    ${bytes(u.perImageBytes)} (sum of each image's own blocks)`,
    `  stored unique:   ${bytes(u.uniqueBytes)} (+ ${bytes(u.indexBytes)} of dataset index)`,
    `  tiles:           ${u.tiles} in all, ${u.uniqueTiles} distinct (${share})`,
    `  dedup ratio:     ${u.dedupRatio.toFixed(2)}x`,
    `  plain tiles:     ${u.plainTiles} distinct, ${bytes(u.plainBytes)}`,
    `  delta tiles:     ${u.deltaTiles} distinct, ${bytes(u.deltaBytes)}${u.deltaTiles === 0 ? '' : `, saving about ${bytes(u.deltaSavedBytes)} (each counted at its reference's size)`}`,
    '',
  ].join('\n')
}
