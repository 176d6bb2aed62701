/**
 * Helpers shared by the CLI's commands: where the store is, and how outputs are written
 * (standard output with `-`, else atomically through a `.partial` file).
 */
import { once } from 'node:events'
import { createWriteStream } from 'node:fs'
import { rename, rm } from 'node:fs/promises'
import { resolve } from 'node:path'
import type { Writable } from 'node:stream'
import { InvalidArgumentError as CommanderArgumentError, Option } from 'commander'
import type { CliIo } from './main.js'

/** Writes to `path` only once every byte is there: a failed crop leaves no partial file. */
export async function writeFileAtomically(path: string, bytes: AsyncIterable<Uint8Array>): Promise<void> {
  const temporary = `${path}.${process.pid}.partial`
  const stream = createWriteStream(temporary)
  try {
    await pump(bytes, stream)
    stream.end()
    await once(stream, 'finish')
    await rename(temporary, path)
  } catch (error) {
    // Wait for the stream to close: removing the file while its open is pending would race.
    if (!stream.closed) {
      const closed = once(stream, 'close')
      stream.destroy()
      await closed
    }
    await rm(temporary, { force: true })
    throw error
  }
}

/** Writes every chunk to `stream`, waiting for it to drain when its buffer is full. */
export async function pump(bytes: AsyncIterable<Uint8Array>, stream: Writable): Promise<void> {
  for await (const chunk of bytes) {
    if (!stream.write(chunk)) await once(stream, 'drain')
  }
}

/** The store directory: `--store`, else the default location for `io.env`, resolved against `io.cwd`. */
export async function storeDir(io: CliIo, option: string | undefined): Promise<string> {
  const { defaultStoreDir } = await import('../store/location.js')
  return resolve(io.cwd, option ?? defaultStoreDir(io.env))
}

/** The `--store <dir>` option every command takes. */
export function storeOption(): Option {
  return new Option('--store <dir>', 'store directory (default: $TESSERA_STORE, else $XDG_DATA_HOME/tessera, else ~/.local/share/tessera)')
}

/** Commander parser of an integer option (a usage error, exit 2, if it is not one). */
export function int(value: string): number {
  if (!/^-?\d+$/.test(value)) throw new CommanderArgumentError(`expected an integer but received ${JSON.stringify(value)}`)
  return Number(value)
}
