/**
 * The `tessera` command line. `main(argv, io)` runs one command and returns its exit code:
 * 0 success, 1 a Tessera error (printed as one line with its code), 2 a usage error.
 * Commands (one file each, listed in program.ts) load the library lazily so that start-up stays short.
 */
import type { Writable } from 'node:stream'
import { CommanderError } from 'commander'
import { tesseraCode } from '../errors.js'
import { outputError } from './output.js'
import { buildProgram } from './program.js'

/** Where a CLI run reads and writes. */
export interface CliIo {
  readonly stdout: Writable
  readonly stderr: Writable
  readonly env: NodeJS.ProcessEnv
  readonly cwd: string
}

/** Runs the CLI with `argv` (arguments after the program name). */
export async function main(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  const program = buildProgram(io, argv)
  // A write to a closed pipe (`tessera ls | head`) fails as an 'error' event on the stream,
  // not as a thrown error: unheard, it would end the process with status 1 and a stack. The
  // failure is read from `stdout.errored` instead; standard error's are dropped (nowhere to go).
  const ignore = () => {}
  io.stdout.on('error', ignore)
  io.stderr.on('error', ignore)
  let failure: { error: unknown } | undefined
  try {
    await program.parseAsync([...argv], { from: 'user' })
  } catch (error) {
    failure = { error }
  }
  // A write that fails at once destroys its stream a tick later: let the last one surface.
  await new Promise((resolve) => setImmediate(resolve))
  for (const stream of [io.stdout, io.stderr]) if (!stream.destroyed && stream.writableLength === 0) stream.off('error', ignore)
  if (failure !== undefined) return exitStatus(failure.error, io)
  return io.stdout.errored ? exitStatus(outputError('standard output', io.stdout.errored), io) : 0
}

/**
 * The exit status for `error`, reported on standard error (spec/errors.md, CLI exit status).
 * Tessera errors are known by their code, not their class: one rebuilt from another thread
 * or copy of errors.ts is reported the same.
 */
function exitStatus(error: unknown, io: CliIo): number {
  if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2
  // The reader of the output went away: nothing more is wanted of this command.
  const stdoutError = io.stdout.errored
  if (isEpipe(error) || isEpipe(stdoutError)) return 0
  const code = tesseraCode(error)
  if (code !== undefined) {
    io.stderr.write(`tessera: ${code}: ${(error as Error).message}\n`)
    return 1
  }
  // A failed standard output leaves errors such as ERR_STREAM_DESTROYED behind: report its own.
  if (stdoutError && error !== stdoutError) return exitStatus(outputError('standard output', stdoutError), io)
  if ((error as Error | null)?.name === 'AbortError') {
    io.stderr.write('tessera: ERR_ABORTED: the operation was cancelled\n')
    return 1
  }
  io.stderr.write(`tessera: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
  return 1
}

function isEpipe(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | null | undefined)?.code === 'EPIPE'
}

function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() }
}
