/** The `tessera` program: its commands, one file each, in the order `tessera --help` lists them. */
import { Command } from 'commander'
import { carCommand } from './car.js'
import { cropCommand, exportCommand } from './crop.js'
import { datasetsCommand } from './datasets.js'
import { duCommand } from './du.js'
import { gcCommand } from './gc.js'
import { importCommand } from './import.js'
import { infoCommand } from './info.js'
import { logCommand } from './log.js'
import { lsCommand } from './ls.js'
import type { CliIo } from './main.js'
import { pruneCommand } from './prune.js'
import { rmCommand } from './rm.js'
import { sampleCommand } from './sample.js'
import { serveCommand } from './serve.js'
import { verifyCommand } from './verify.js'

const COMMANDS = [
  importCommand,
  infoCommand,
  cropCommand,
  exportCommand,
  verifyCommand,
  lsCommand,
  datasetsCommand,
  logCommand,
  duCommand,
  rmCommand,
  pruneCommand,
  gcCommand,
  carCommand,
  sampleCommand,
  serveCommand,
]

/** The program, writing to `io`; commands throw instead of exiting (main() maps errors to exit codes). */
export function buildProgram(io: CliIo): Command {
  const program = new Command('tessera')
    .description('Content-addressed tiled image store: import huge images, crop them losslessly')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) })
    .showHelpAfterError()
  for (const make of COMMANDS) program.addCommand(make(io))
  return program
}
