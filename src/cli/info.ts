/** `tessera info SPEC`: an image's size, pixels, tiles, levels and bytes stored, as text or JSON. */
import type { Command } from 'commander'
import { command, withStore } from './command.js'
import type { CliIo } from './main.js'
import { storeOption } from './output.js'

/** The `info` command. */
export function infoCommand(io: CliIo): Command {
  return command(io, 'info', 'describe an image: size, channels, depth, tiles, levels, bytes stored')
    .argument('<cid>')
    .addOption(storeOption())
    .option('--json', 'print JSON')
    .action(async (spec: string, opts) => {
      const { openImage, imageInfo } = await import('../image.js')
      const { resolveImage } = await import('../dataset/dataset.js')
      const info = await withStore(io, opts, async (store) => imageInfo(await openImage(store, await resolveImage(store, spec))))
      if (opts.json) {
        io.stdout.write(`${JSON.stringify(info, null, 2)}\n`)
        return
      }
      const { codec, levels, source, storedBytes, pixelBytes } = info
      const lines = [
        `cid:        ${info.cid}`,
        `size:       ${info.width} x ${info.height}`,
        `pixels:     ${info.colorModel}, ${info.channels} channel(s), ${info.bitsPerSample}-bit`,
        `tiles:      ${info.tileSize} x ${info.tileSize}, zstd level ${codec.level}, predictor ${codec.predictor}`,
        ...(source ? [`source:     ${source.format}${source.name ? ` (${source.name})` : ''}`] : []),
        ...(info.icc ? [`icc:        ${info.icc}`] : []),
        `levels:     ${levels.length}`,
        ...levels.map((l, i) => `  ${i}: ${l.width} x ${l.height}, ${l.columns} x ${l.rows} tiles, ${l.tileBytes} bytes`),
        `stored:     ${storedBytes} bytes in ${info.blocks} blocks (${pixelBytes === 0 ? '-' : `${((100 * storedBytes) / pixelBytes).toFixed(1)}%`} of ${pixelBytes} pixel bytes)`,
      ]
      io.stdout.write(`${lines.join('\n')}\n`)
    })
}
