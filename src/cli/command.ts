/**
 * What the command files share: a commander Command wired to `io`, the store opened around
 * an action, an output written to a file or standard output, rows printed as text or JSON.
 */
import { resolve } from 'node:path'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
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
  if (path === '-') await pump(collectingAsWritten(bytes), io.stdout)
  else await writeFileAtomically(resolve(io.cwd, path), collectingAsWritten(bytes))
}

/** Bytes written between two collections of this thread's heap (see collectingAsWritten). */
export const COLLECT_AFTER_BYTES = 16 << 20

/**
 * `bytes`, with a full collection each time COLLECT_AFTER_BYTES more have been taken in chunks
 * of 1 MiB or more (when the next chunk is asked for, the previous ones written). A CLI process
 * that writes large chunks allocates little else, so V8 collects it seldom, and a large export
 * kept ~130 MiB of written bands (22.7 MB each on the benchmark image) alive: peaks fell from
 * 199 to 142 MiB exporting the benchmark image as raw, from 309 to 250 MiB on decode threads,
 * in the same time (bench/README.md, Exports). Small chunks come with enough other allocation
 * for V8's own collections to keep up; counting a sampler's would collect every ~110 samples.
 * V8 exposes `gc` to a new context once the flag is set, as in src/threads.ts.
 */
export async function* collectingAsWritten(
  bytes: AsyncIterable<Uint8Array>,
  collect: () => void = collectGarbage,
): AsyncGenerator<Uint8Array> {
  let pending = 0
  for await (const chunk of bytes) {
    yield chunk
    if (chunk.length >= 1 << 20) pending += chunk.length
    if (pending >= COLLECT_AFTER_BYTES) {
      pending = 0
      collect()
    }
  }
}

let gc: (() => void) | undefined
function collectGarbage(): void {
  if (gc === undefined) {
    setFlagsFromString('--expose-gc')
    gc = runInNewContext('gc') as () => void
  }
  gc()
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
