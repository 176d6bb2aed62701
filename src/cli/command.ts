/**
 * What the command files share: a commander Command wired to `io`, the store opened around
 * an action, an output written to a file or standard output, rows printed as text or JSON.
 */
import { resolve } from 'node:path'
import { Command } from 'commander'
import type { BlockStore } from '../store/interface.js'
import type { CliIo } from './main.js'
import { pump, storeDir, writeFileAtomically } from './output.js'

/**
 * A command that throws instead of exiting and writes to `io`, as main() expects (addCommand()
 * does not pass the program's settings on: commander copies them only in .command()).
 */
export function command(io: CliIo, name: string, description: string): Command {
  return new Command(name)
    .description(description)
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) })
    .showHelpAfterError()
}

/** Runs `fn` on the store `--store` names (by default one that must exist) and its location, closing it after. */
export async function withStore<T>(
  io: CliIo,
  opts: { readonly store?: string },
  fn: (store: BlockStore, location: string) => Promise<T>,
  init: { readonly create?: boolean } = { create: false },
): Promise<T> {
  const { openStore } = await import('../image.js')
  const location = await storeDir(io, opts.store)
  const store = await openStore(location, init)
  try {
    return await fn(store, location)
  } finally {
    await store.close()
  }
}

/** Writes `bytes` to standard output for `-`, else to the file `path` once every byte is there. */
export async function writeOutput(io: CliIo, path: string, bytes: AsyncIterable<Uint8Array>): Promise<void> {
  if (path === '-') await pump(bytes, io.stdout)
  else await writeFileAtomically(resolve(io.cwd, path), bytes)
}

/** Prints `rows` as one JSON array with `json`, else one line each. */
export function printRows<T>(io: CliIo, json: boolean, rows: readonly T[], line: (row: T) => string): void {
  if (json) io.stdout.write(`${JSON.stringify(rows)}\n`)
  else for (const row of rows) io.stdout.write(`${line(row)}\n`)
}

/** A byte count, with a binary unit from 1 KiB on. */
export function bytes(n: number): string {
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let value = n / 1024
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return n < 1024 ? `${n} bytes` : `${n} bytes (${value.toFixed(1)} ${units[unit]})`
}

/** An ISO 8601 time from milliseconds since the epoch. */
export function iso(ms: number): string {
  return new Date(ms).toISOString()
}
