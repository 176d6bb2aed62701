/**
 * `tessera serve`: the HTTP server (spec/http.md) on a store, until SIGINT or SIGTERM. It reads
 * without a lock, so other processes import into, remove from and collect the same store while
 * it serves, and it sees their commits (spec/store.md). Logs are JSON lines (fastify's pino)
 * on standard output.
 */
import { type Command, InvalidArgumentError as CommanderArgumentError, Option } from 'commander'
import { TesseraError } from '../errors.js'
import { command, withStore } from './command.js'
import type { CliIo } from './main.js'
import { storeOption } from './output.js'

/** Test hooks: stop without a signal, learn the address. */
export interface ServeHooks {
  /** Shuts the server down when it fires (in addition to SIGINT and SIGTERM). */
  readonly shutdown?: AbortSignal
  /** Called with the base URL once the server listens. */
  readonly onListening?: (url: string) => void
}

/** In-flight responses get this long to finish after a shutdown signal; then connections are closed. */
const SHUTDOWN_GRACE_MS = 10_000

function int(value: string): number {
  if (!/^\d+$/.test(value)) throw new CommanderArgumentError(`expected a non-negative integer but received ${JSON.stringify(value)}`)
  return Number(value)
}

/** The `serve` command, for `program.addCommand`. */
export function serveCommand(io: CliIo, hooks: ServeHooks = {}): Command {
  return command(io, 'serve', 'serve the store over HTTP: images, tiles, crops, IIIF Image API 3.0, raw blocks and CARs, a viewer')
    .addOption(storeOption())
    .option('--host <address>', 'address to listen on (loopback by default)', '127.0.0.1')
    .option('--port <n>', 'port to listen on (0: any free port)', int, 8080)
    .option('--public-url <url>', 'base URL for absolute links (IIIF ids, redirects) when behind a proxy')
    .option('--concurrency <n>', 'decode/encode jobs at once (default: two per core)', int)
    .option('--max-upload-bytes <n>', 'largest upload body in bytes (default 2^31)', int)
    .option(
      '--tile-cache <MiB>',
      'MiB of decoded tiles kept for the requests that follow (a viewer, overlapping crops); 0: none (default 24)',
      int,
    )
    .addOption(
      new Option('--log-level <level>', 'log level')
        .choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
        .default('info'),
    )
    .action(async (opts) => {
      if (opts.port > 65535) throw new CommanderArgumentError('port must be from 0 to 65535')
      const { createServer } = await import('../http/server.js')
      await withStore(
        io,
        opts,
        async (store, dir) => {
          const app = await createServer({
            store,
            logger: { level: opts.logLevel, stream: io.stdout },
            ...(opts.publicUrl === undefined ? {} : { publicUrl: String(opts.publicUrl) }),
            ...(opts.tileCache === undefined ? {} : { tileCacheBytes: opts.tileCache * 2 ** 20 }),
            limits: {
              ...(opts.concurrency === undefined ? {} : { concurrency: Math.max(1, opts.concurrency) }),
              ...(opts.maxUploadBytes === undefined ? {} : { maxUploadBytes: opts.maxUploadBytes }),
            },
          })
          let url: string
          try {
            url = await app.listen({ host: opts.host, port: opts.port })
          } catch (error) {
            await app.close()
            throw new TesseraError('ERR_LISTEN', `Cannot listen on ${opts.host}:${opts.port}: ${(error as Error).message}`)
          }
          app.log.info({ store: dir, url }, `Tessera serves ${dir}: ${url}/images, ${url}/view/{cid}`)
          hooks.onListening?.(url)
          const listeners: Array<[NodeJS.Signals, () => void]> = []
          const signal = await new Promise<string>((done) => {
            for (const name of ['SIGINT', 'SIGTERM'] as const) {
              const listener = () => done(name)
              listeners.push([name, listener])
              process.once(name, listener)
            }
            hooks.shutdown?.addEventListener('abort', () => done('shutdown'), { once: true })
            if (hooks.shutdown?.aborted) done('shutdown')
          }).finally(() => {
            for (const [name, listener] of listeners) process.removeListener(name, listener)
          })
          app.log.info({ signal }, 'shutting down: no new connections, waiting for responses in flight')
          const force = setTimeout(() => app.server.closeAllConnections(), SHUTDOWN_GRACE_MS)
          try {
            await app.close()
          } finally {
            clearTimeout(force)
          }
          app.log.info('stopped')
        },
        { create: true },
      )
    })
}
