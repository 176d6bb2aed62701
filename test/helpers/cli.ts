/** Runs the CLI in process through main(argv, io), capturing its output. */
import { PassThrough } from 'node:stream'
import { main } from '../../src/cli/main.js'

/** What one CLI run returned and printed. */
export interface CliRun {
  readonly code: number
  readonly stdout: Buffer
  readonly stderr: string
}

/** Runs `tessera argv...` on the store `store`, in the directory `cwd`. */
export async function runCli(store: string, cwd: string, argv: readonly string[]): Promise<CliRun> {
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  const out: Buffer[] = []
  const err: Buffer[] = []
  stdout.on('data', (c: Buffer) => out.push(c))
  stderr.on('data', (c: Buffer) => err.push(c))
  const code = await main(argv, { stdout, stderr, env: { TESSERA_STORE: store }, cwd })
  return { code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString() }
}
