/**
 * Dataset and store-maintenance commands (spec/dataset.md): `import DIR... --dataset NAME`
 * (through `importIntoDataset`), `ls`, `datasets`, `log`, `du`, `rm`, `prune`, `gc`,
 * `car export|import`, `verify [--all]`, and the name resolution every command that takes an
 * image uses (`resolveImageArg`). The library is loaded lazily, as in main.ts.
 */
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { resolve } from 'node:path'
import { Command } from 'commander'
import type { Usage } from '../dataset/accounting.js'
import type { DatasetImportProgress } from '../dataset/import.js'
import { InvalidArgumentError, NotFoundError, TesseraError } from '../errors.js'
import type { CID } from '../format/block.js'
import type { BlockStore, CollectPhase } from '../store/interface.js'
import type { CliIo } from './main.js'
import { int, pump, storeDir, storeOption, writeFileAtomically } from './output.js'

/** The image CID a command-line argument names: a CID, or `NAME/path` in a dataset. */
export async function resolveImageArg(store: BlockStore, text: string): Promise<CID> {
  const { resolveImage } = await import('../dataset/dataset.js')
  return resolveImage(store, text)
}

/** Options of `import` that `importIntoDataset` reads (commander's parsed values). */
export interface DatasetImportArgs {
  readonly store?: string
  readonly dataset: string
  readonly prefix?: string
  readonly jobs?: number
  readonly checkpointFiles?: number
  readonly checkpointSeconds?: number
  readonly tileSize: number
  readonly zstdLevel: number
  readonly predictor: string
  readonly pyramid?: boolean
  readonly maxPixels?: number
  readonly workers?: number
  readonly label?: string
}

/**
 * `tessera import DIR... --dataset NAME`: prints the dataset's new head CID; lists files that
 * failed on standard error (`path: CODE: message`) and then fails with the first one's code.
 */
export async function importIntoDataset(io: CliIo, sources: readonly string[], opts: DatasetImportArgs): Promise<void> {
  if (opts.label !== undefined)
    throw new InvalidArgumentError('--label does not apply to --dataset imports: entries are named by their paths')
  const { openStore } = await import('../image.js')
  const { importDataset } = await import('../dataset/import.js')
  const store = await openStore(await storeDir(io, opts.store))
  const progress = progressLine(io)
  try {
    const result = await importDataset(
      store,
      opts.dataset,
      sources.map((source) => resolve(io.cwd, source)),
      {
        tileSize: opts.tileSize,
        zstdLevel: opts.zstdLevel,
        predictor: Number(opts.predictor) as 1 | 2,
        pyramid: opts.pyramid === true,
        ...(opts.maxPixels === undefined ? {} : { maxPixels: opts.maxPixels }),
        ...(opts.workers === undefined ? {} : { workers: opts.workers }),
        ...(opts.prefix === undefined ? {} : { prefix: opts.prefix }),
        ...(opts.jobs === undefined ? {} : { jobs: opts.jobs }),
        ...(opts.checkpointFiles === undefined ? {} : { checkpointFiles: opts.checkpointFiles }),
        ...(opts.checkpointSeconds === undefined ? {} : { checkpointSeconds: opts.checkpointSeconds }),
        ...(progress === undefined ? {} : { onProgress: progress.update }),
        onFailure: (failure) => {
          progress?.clear()
          io.stderr.write(`${failure.path}: ${failure.error.code ?? 'ERR_UNKNOWN'}: ${failure.error.message}\n`)
        },
      },
    )
    progress?.clear()
    const summary = `${result.total} files: ${result.imported} imported, ${result.reused} reused, ${result.unchanged} unchanged, ${result.failed} failed`
    io.stderr.write(`dataset ${opts.dataset}: ${summary}${result.changed ? '' : ' (no new version)'}\n`)
    if (result.head !== undefined) io.stdout.write(`${result.head}\n`)
    const first = result.failures[0]
    if (first !== undefined) {
      throw new TesseraError(
        first.error.code ?? 'ERR_INTEGRITY',
        `${result.failed} of ${result.total} files could not be imported (listed above); the others are in dataset ${opts.dataset}`,
      )
    }
  } finally {
    await store.close()
  }
}

/** The commands of this module, for `program.addCommand`. */
export function datasetCommands(io: CliIo): Command[] {
  return [lsCommand(io), datasetsCommand(io), logCommand(io), duCommand(io), rmCommand(io), pruneCommand(io), gcCommand(io), carCommand(io)]
}

/** A command that throws instead of exiting and writes to `io`, as main() expects. */
function command(io: CliIo, name: string): Command {
  return new Command(name)
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) })
    .showHelpAfterError()
}

/** Opens the store for a command that only reads (or removes). */
async function withStore<T>(
  io: CliIo,
  option: string | undefined,
  fn: (store: BlockStore) => Promise<T>,
  lockTimeout?: number,
): Promise<T> {
  const { openStore } = await import('../image.js')
  const store = await openStore(await storeDir(io, option), { create: false, ...(lockTimeout === undefined ? {} : { lockTimeout }) })
  try {
    return await fn(store)
  } finally {
    await store.close()
  }
}

function lsCommand(io: CliIo): Command {
  return command(io, 'ls')
    .description('list pinned images; with NAME[/path], the entries and directories of a dataset')
    .argument('[spec]', 'NAME, NAME/dir, NAME/path, or a dataset version CID (with /path)')
    .addOption(storeOption())
    .option('-r, --recursive', 'list every entry under the path, not only the top level')
    .option('--json', 'print JSON')
    .action(async (spec: string | undefined, opts) => {
      await withStore(io, opts.store, async (store) => {
        if (spec === undefined) {
          const pins = []
          for await (const pin of store.pins()) pins.push(pin)
          if (opts.json)
            io.stdout.write(`${JSON.stringify(pins.map((p) => ({ cid: p.cid.toString(), added: p.added, label: p.label })))}\n`)
          else for (const pin of pins) io.stdout.write(`${pin.cid}\t${new Date(pin.added).toISOString()}\t${pin.label}\n`)
          return
        }
        const { resolveSpecifier, listDirectory } = await import('../dataset/dataset.js')
        const { iterateEntries, NodeCache } = await import('../dataset/tree.js')
        const resolved = await resolveSpecifier(store, spec)
        if (resolved.kind === 'cid') throw new InvalidArgumentError(`${spec} is a CID: ls lists datasets (NAME[/path]); see tessera info`)
        const rows: unknown[] = []
        const entry = (e: { name: string; image: CID; size: number; mtime: number }) => {
          if (opts.json) rows.push({ name: e.name, image: e.image.toString(), size: e.size, mtime: e.mtime })
          else io.stdout.write(`${e.name}\t${e.image}\t${e.size}\t${new Date(e.mtime).toISOString()}\n`)
        }
        let found = false
        if (resolved.entry !== undefined) {
          entry(resolved.entry)
          found = true
        } else if (opts.recursive) {
          const prefix = resolved.path === undefined ? '' : `${resolved.path}/`
          for await (const e of iterateEntries(new NodeCache(store), resolved.version.entries, { prefix })) {
            entry(e)
            found = true
          }
        } else {
          for await (const item of listDirectory(store, resolved.version, resolved.path)) {
            found = true
            if (item.kind === 'entry') entry(item.entry)
            else if (opts.json) rows.push({ directory: item.name, entries: item.count })
            else io.stdout.write(`${item.name}/\t${item.count} entries\n`)
          }
        }
        if (!found && resolved.path !== undefined) {
          throw new NotFoundError(`No entry or directory ${JSON.stringify(resolved.path)} in dataset ${resolved.name ?? resolved.cid}`)
        }
        if (opts.json) io.stdout.write(`${JSON.stringify(rows)}\n`)
      })
    })
}

function datasetsCommand(io: CliIo): Command {
  return command(io, 'datasets')
    .description('list the datasets: name, entries, last change, head version')
    .addOption(storeOption())
    .option('--json', 'print JSON')
    .action(async (opts) => {
      await withStore(io, opts.store, async (store) => {
        const { listDatasets } = await import('../dataset/dataset.js')
        const rows = []
        for await (const head of listDatasets(store)) {
          const { count, time, checkpoint } = head.version
          rows.push({ name: head.name, entries: count, time, head: head.cid.toString(), interrupted: checkpoint === true })
        }
        if (opts.json) io.stdout.write(`${JSON.stringify(rows)}\n`)
        else {
          for (const row of rows) {
            const flag = row.interrupted ? '\t(interrupted import: run it again to resume)' : ''
            io.stdout.write(`${row.name}\t${row.entries} entries\t${new Date(row.time).toISOString()}\t${row.head}${flag}\n`)
          }
        }
      })
    })
}

function logCommand(io: CliIo): Command {
  return command(io, 'log')
    .description('list the versions of a dataset, newest first')
    .argument('<spec>', 'NAME, or a dataset version CID')
    .addOption(storeOption())
    .option('--json', 'print JSON')
    .action(async (spec: string, opts) => {
      await withStore(io, opts.store, async (store) => {
        const { history } = await import('../dataset/dataset.js')
        const resolved = await datasetArg(store, spec)
        const rows = []
        for await (const { cid, version } of history(store, resolved.cid)) {
          rows.push({
            cid: cid.toString(),
            time: version.time,
            entries: version.count,
            note: version.note,
            checkpoint: version.checkpoint === true,
          })
        }
        if (opts.json) io.stdout.write(`${JSON.stringify(rows)}\n`)
        else {
          for (const row of rows) {
            const note = row.checkpoint ? `${row.note} (checkpoint)` : row.note
            io.stdout.write(`${row.cid}\t${new Date(row.time).toISOString()}\t${row.entries} entries\t${note}\n`)
          }
        }
      })
    })
}

/** A whole dataset named by NAME or version CID (a path is refused). */
async function datasetArg(store: BlockStore, spec: string) {
  const { resolveSpecifier, loadVersion } = await import('../dataset/dataset.js')
  const resolved = await resolveSpecifier(store, spec)
  if (resolved.kind === 'cid') return { cid: resolved.cid, version: await loadVersion(store, resolved.cid), name: undefined }
  if (resolved.path !== undefined) throw new InvalidArgumentError(`Expected a dataset (NAME or version CID) but received ${spec}`)
  return resolved
}

function duCommand(io: CliIo): Command {
  return command(io, 'du')
    .description('dedup accounting: images, pixel bytes, bytes stored per image and in all, tiles, dedup ratio')
    .argument('[datasets...]', 'NAME or dataset version CID (default: every dataset and pinned image)')
    .addOption(storeOption())
    .option('--json', 'print JSON')
    .action(async (specs: string[], opts) => {
      await withStore(io, opts.store, async (store) => {
        const { UsageCounter, storeUsage } = await import('../dataset/accounting.js')
        if (specs.length === 0) {
          const report = await storeUsage(store)
          if (opts.json) {
            io.stdout.write(`${JSON.stringify(report, null, 2)}\n`)
            return
          }
          for (const { name, usage } of report.datasets) io.stdout.write(formatUsage(`dataset ${name}`, usage))
          if (report.pins.entries > 0) io.stdout.write(formatUsage('pinned images', report.pins))
          io.stdout.write(formatUsage('all together', report.total))
          io.stdout.write(`store on disk:     ${bytes(report.storedBytes)} in pack files (tessera gc reclaims what no root reaches)\n`)
          return
        }
        const total = new UsageCounter(store)
        const rows = []
        for (const spec of specs) {
          const resolved = await datasetArg(store, spec)
          const one = new UsageCounter(store)
          await one.addVersion(resolved)
          await total.addVersion(resolved)
          rows.push({ name: resolved.name ?? resolved.cid.toString(), head: resolved.cid.toString(), usage: one.usage() })
        }
        if (opts.json) {
          io.stdout.write(`${JSON.stringify(rows.length === 1 ? rows[0] : { datasets: rows, total: total.usage() }, null, 2)}\n`)
          return
        }
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
    '',
  ].join('\n')
}

function bytes(n: number): string {
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let value = n / 1024
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return n < 1024 ? `${n} bytes` : `${n} bytes (${value.toFixed(1)} ${units[unit]})`
}

function rmCommand(io: CliIo): Command {
  return command(io, 'rm')
    .description(
      'drop references: NAME (a dataset), NAME/path (entries, one new version per dataset), CID (unpin an image); tessera gc reclaims the space',
    )
    .argument('<specs...>')
    .addOption(storeOption())
    .option('-r, --recursive', 'NAME/dir removes every entry under dir')
    .action(async (specs: string[], opts) => {
      await withStore(io, opts.store, async (store) => {
        const { parseSpecifier } = await import('../dataset/names.js')
        const { removeDataset, removeEntries } = await import('../dataset/dataset.js')
        const paths = new Map<string, string[]>()
        const datasets: string[] = []
        const cids: CID[] = []
        // Everything is parsed before anything is removed.
        for (const spec of specs) {
          const parsed = parseSpecifier(spec)
          if (parsed.kind === 'cid') cids.push(parsed.cid)
          else if (parsed.name === undefined)
            throw new InvalidArgumentError(`${spec}: name the dataset, not a version CID, to remove entries`)
          else if (parsed.path === undefined) datasets.push(parsed.name)
          else paths.set(parsed.name, [...(paths.get(parsed.name) ?? []), parsed.path])
        }
        if (cids.length > 0) {
          const pinned = new Set<string>()
          for await (const pin of store.pins()) pinned.add(pin.cid.toString())
          for (const cid of cids) if (!pinned.has(cid.toString())) throw new NotFoundError(`${cid} is not pinned`)
          const writer = await store.begin()
          for (const cid of cids) writer.unpin(cid)
          await writer.commit()
          for (const cid of cids) io.stdout.write(`unpinned ${cid}\n`)
        }
        for (const [name, list] of paths) {
          const removed = await removeEntries(store, name, list, { recursive: opts.recursive === true })
          io.stdout.write(`${name}: removed ${removed.length} entr${removed.length === 1 ? 'y' : 'ies'}\n`)
        }
        for (const name of datasets) {
          const head = await removeDataset(store, name)
          io.stdout.write(`removed dataset ${name} (head was ${head})\n`)
        }
      })
    })
}

function pruneCommand(io: CliIo): Command {
  return command(io, 'prune')
    .description("drop a dataset's older versions (their blocks become garbage for tessera gc)")
    .argument('<name>')
    .addOption(storeOption())
    .option('--keep <n>', 'versions to keep, newest first', int, 1)
    .action(async (name: string, opts) => {
      await withStore(io, opts.store, async (store) => {
        const { pruneHistory } = await import('../dataset/dataset.js')
        const result = await pruneHistory(store, name, opts.keep)
        io.stdout.write(`${result.head}\n`)
        io.stderr.write(`dataset ${name}: dropped ${result.dropped} version(s)\n`)
      })
    })
}

function gcCommand(io: CliIo): Command {
  return command(io, 'gc')
    .description('delete the blocks no pin, dataset (with its history) or reference reaches, and reclaim their disk space')
    .addOption(storeOption())
    .option('--dry-run', 'report what would be deleted, change nothing')
    .option('--lock-timeout <ms>', 'wait this long for another process to release the store', int, 30_000)
    .option('--json', 'print JSON')
    .action(async (opts) => {
      const onPhase = testKillSwitch(io.env.TESSERA_TEST_KILL_AT)
      await withStore(
        io,
        opts.store,
        async (store) => {
          const { collectGarbage } = await import('../dataset/maintenance.js')
          const result = await collectGarbage(store, { dryRun: opts.dryRun === true, ...(onPhase === undefined ? {} : { onPhase }) })
          if (opts.json) {
            io.stdout.write(`${JSON.stringify(result)}\n`)
            return
          }
          const verb = opts.dryRun === true ? 'would delete' : 'deleted'
          io.stdout.write(
            [
              `roots: ${result.roots}; kept ${result.keptBlocks} blocks (${bytes(result.keptBytes)})`,
              `${verb} ${result.deletedBlocks} blocks (${bytes(result.deletedBytes)}); packs: ${result.packsRewritten} rewritten, ${result.packsDeleted} deleted (${result.orphanPacks} orphaned)`,
              `store: ${bytes(result.bytesBefore)} -> ${bytes(result.bytesAfter)}${opts.dryRun === true ? ' (estimate)' : ''}`,
              '',
            ].join('\n'),
          )
        },
        opts.lockTimeout,
      )
    })
}

/**
 * Crash tests only: `TESSERA_TEST_KILL_AT=phase[:n]` kills the process with SIGKILL the n-th
 * time (default 1st) the collection reaches `phase` (spec/store.md §10.3).
 */
function testKillSwitch(spec: string | undefined): ((phase: CollectPhase) => void) | undefined {
  if (spec === undefined || spec === '') return undefined
  const [target, nth] = spec.split(':')
  let left = Number(nth ?? 1)
  return (phase) => {
    if (phase === target && --left === 0) process.kill(process.pid, 'SIGKILL')
  }
}

function carCommand(io: CliIo): Command {
  const car = command(io, 'car').description('CAR (IPFS content archive) export and import')
  car.addCommand(
    command(io, 'export')
      .description('write a CARv1 of an image or dataset (with its history) and every block it reaches')
      .argument('<spec>', 'a CID, NAME (a dataset), NAME/path (an image) or a dataset version CID')
      .addOption(storeOption())
      .requiredOption('-o, --output <path>', 'output file, or - for standard output')
      .action(async (spec: string, opts) => {
        await withStore(io, opts.store, async (store) => {
          const { resolveSpecifier } = await import('../dataset/dataset.js')
          const { exportCar } = await import('../car/export.js')
          const resolved = await resolveSpecifier(store, spec)
          const root = resolved.kind === 'cid' ? resolved.cid : resolved.path === undefined ? resolved.cid : resolved.entry?.image
          if (root === undefined) throw new NotFoundError(`No entry ${JSON.stringify(resolved.kind === 'dataset' ? resolved.path : spec)}`)
          if (!(await store.has(root))) throw new NotFoundError(`Block ${root} not found`)
          const stats = { blocks: 0, bytes: 0 }
          const bytesOut = exportCar(store, root, { stats })
          if (opts.output === '-') await pump(bytesOut, io.stdout)
          else await writeFileAtomically(resolve(io.cwd, String(opts.output)), bytesOut)
          io.stderr.write(`${root}: ${stats.blocks} blocks, ${stats.bytes} bytes\n`)
        })
      }),
  )
  car.addCommand(
    command(io, 'import')
      .description('import a CAR: every block verified against its CID, the DAG complete, or nothing is imported')
      .argument('<file>', 'a CAR file, or - for standard input')
      .addOption(storeOption())
      .option('--name <name>', "name for a dataset root (default: the dataset's recorded name)")
      .option('--label <text>', 'label of the pin for an image root (default: its source file name)')
      .action(async (file: string, opts) => {
        const { openStore } = await import('../image.js')
        const { importCar } = await import('../car/import.js')
        const store = await openStore(await storeDir(io, opts.store))
        try {
          const path = resolve(io.cwd, file)
          if (file !== '-') {
            const stats = await stat(path).catch(() => undefined)
            if (stats === undefined) throw new NotFoundError(`CAR file ${file} does not exist`)
            if (!stats.isFile()) throw new InvalidArgumentError(`${file} is not a regular file`)
          }
          const source = file === '-' ? process.stdin : createReadStream(path)
          const result = await importCar(store, source, {
            ...(opts.name === undefined ? {} : { name: opts.name }),
            ...(opts.label === undefined ? {} : { label: opts.label }),
          })
          for (const root of result.roots) io.stdout.write(`${root.cid}\t${root.kind}\t${root.name}\n`)
          io.stderr.write(`${result.blocks} blocks verified, ${result.newBlocks} new (${result.newBytes} bytes)\n`)
        } finally {
          await store.close()
        }
      }),
  )
  return car
}

/** `verify [SPEC] [--all]`: an image (CID or NAME/path), a dataset (NAME), or everything. */
export function verifyCommand(io: CliIo): Command {
  const verify = command(io, 'verify')
  return verify
    .description('re-hash every block reachable from an image, a dataset (with its history), or with --all every root')
    .argument('[spec]', 'a CID, NAME/path, NAME (a dataset) or a dataset version CID')
    .addOption(storeOption())
    .option('--all', 'verify everything every pin and dataset reaches')
    .action(async (spec: string | undefined, opts) => {
      if ((spec === undefined) === (opts.all !== true)) verify.error('error: expected either a CID or NAME, or --all', { exitCode: 2 })
      await withStore(io, opts.store, async (store) => {
        const { verifyAll, verifyRoots } = await import('../dataset/maintenance.js')
        const { resolveSpecifier } = await import('../dataset/dataset.js')
        let result: { blocks: number; bytes: number; problems: Array<{ cid: string; code: string; message: string }> }
        let what: string
        if (spec === undefined) {
          const all = await verifyAll(store)
          result = all
          what = 'the store'
          io.stdout.write(`${all.roots} roots\n`)
        } else {
          const resolved = await resolveSpecifier(store, spec)
          const version = resolved.kind === 'cid' ? await isDatasetVersion(store, resolved.cid) : false
          if ((resolved.kind === 'cid' && !version) || (resolved.kind === 'dataset' && resolved.entry !== undefined)) {
            const { verifyImage } = await import('../image.js')
            const image = resolved.kind === 'cid' ? resolved.cid : resolved.entry!.image
            result = await verifyImage(store, image)
          } else if (resolved.kind === 'cid') {
            result = await verifyRoots(store, [{ cid: resolved.cid, source: `dataset version ${resolved.cid}` }])
          } else {
            if (resolved.path !== undefined)
              throw new NotFoundError(`No entry ${JSON.stringify(resolved.path)} in dataset ${resolved.name ?? resolved.cid}`)
            result = await verifyRoots(store, [{ cid: resolved.cid, source: `dataset ${resolved.name ?? resolved.cid}` }])
          }
          what = spec
        }
        for (const problem of result.problems) io.stderr.write(`${problem.cid}: ${problem.code}: ${problem.message}\n`)
        if (result.problems.length > 0) {
          throw new TesseraError('ERR_INTEGRITY', `${result.problems.length} bad or missing block(s) under ${what}`)
        }
        io.stdout.write(`ok: ${result.blocks} blocks, ${result.bytes} bytes verified\n`)
      })
    })
}

/** Whether `cid` is a stored dataset version root (else it is taken for an image). */
async function isDatasetVersion(store: BlockStore, cid: CID): Promise<boolean> {
  const { DAG_CBOR, decodeCbor } = await import('../format/block.js')
  const { isVersionValue } = await import('../dataset/codec.js')
  if (cid.code !== DAG_CBOR || !(await store.has(cid))) return false
  try {
    return isVersionValue(decodeCbor(await store.get(cid)))
  } catch {
    return false
  }
}

/** A one-line progress display on standard error when it is a terminal. */
function progressLine(io: CliIo): { update: (p: DatasetImportProgress) => void; clear: () => void } | undefined {
  if ((io.stderr as { isTTY?: boolean }).isTTY !== true) return undefined
  const started = Date.now()
  let shown = false
  return {
    update: (p) => {
      const width = 30
      const filled = p.total === 0 ? width : Math.round((width * p.done) / p.total)
      const seconds = (Date.now() - started) / 1000
      const rate = seconds > 0 ? (p.done / seconds).toFixed(1) : '-'
      io.stderr.write(
        `\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${p.done}/${p.total} files (${p.imported} imported, ${p.reused} reused, ${p.unchanged} unchanged, ${p.failed} failed) ${rate}/s`,
      )
      shown = true
    },
    clear: () => {
      if (shown) io.stderr.write('\r\x1b[K')
      shown = false
    },
  }
}
