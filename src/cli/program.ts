/** The `tessera` program: its commands, one file each, in the order `tessera --help` lists them. */
import { Command, CommanderError } from 'commander'
import { tesseraVersion } from '../version.js'
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
import { repairCommand } from './repair.js'
import { rmCommand } from './rm.js'
import { sampleCommand } from './sample.js'
import { serveCommand } from './serve.js'
import { verifyCommand } from './verify.js'

const COMMANDS: ReadonlyArray<readonly [string, (io: CliIo) => Command]> = [
  ['import', importCommand],
  ['info', infoCommand],
  ['crop', cropCommand],
  ['export', exportCommand],
  ['verify', verifyCommand],
  ['ls', lsCommand],
  ['datasets', datasetsCommand],
  ['log', logCommand],
  ['du', duCommand],
  ['rm', rmCommand],
  ['prune', pruneCommand],
  ['gc', gcCommand],
  ['repair', repairCommand],
  ['car', carCommand],
  ['sample', sampleCommand],
  ['serve', serveCommand],
]

/**
 * The program, writing to `io`; commands throw instead of exiting (main() maps errors to exit
 * codes). Given the arguments, only the command they name is built: setting up every
 * command's options costs a short command like `crop` a noticeable share of its run.
 */
export function buildProgram(io: CliIo, argv: readonly string[] = []): Command {
  const program = new Command('tessera')
    .description('Content-addressed tiled image store: import huge images, crop them losslessly')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) })
    .showHelpAfterError()
    // As commander's .version(), but the version is read only when asked for.
    .option('-V, --version', 'print the version')
    .on('option:version', () => {
      const version = tesseraVersion()
      io.stdout.write(`${version}\n`)
      throw new CommanderError(0, 'commander.version', version)
    })
  const named = COMMANDS.find(([name]) => name === argv[0])
  // Help, and names that are no command (for commander's suggestions), get them all.
  for (const [, make] of named === undefined ? COMMANDS : [named]) program.addCommand(make(io))
  return program
}
