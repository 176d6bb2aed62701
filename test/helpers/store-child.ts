/**
 * A store client in a process of its own, for the concurrency tests
 * (test/store/concurrency.test.ts; the client side is StoreChild in test/helpers/processes.ts):
 *
 *   node --import tsx test/helpers/store-child.ts LOCATION
 *
 * opens the store at LOCATION (a directory, s3://BUCKET/PREFIX) and answers requests, one JSON
 * object a line on stdin, with one JSON line each on stdout: `{"id":1,"ok":true,"value":…}` or
 * `{"id":1,"ok":false,"code":"ERR_CONFLICT","message":"…"}`. Requests run as they arrive, not
 * one after another, so a transaction can stay open (named by `txn`) while others run. It
 * exits when stdin closes.
 */
import { createInterface } from 'node:readline'
import { CID } from 'multiformats/cid'
import { importDataset } from '../../src/dataset/import.js'
import { walkBlocks } from '../../src/dataset/walk.js'
import { rawBlock } from '../../src/format/block.js'
import type { BlockWriter } from '../../src/store/interface.js'
import { openStoreAt } from '../../src/store/open.js'

/** The requests, by `op`. */
export type ChildRequest =
  /** Imports each file into `dataset` with its own importDataset call: one version each. Value: the heads. */
  | { op: 'importFiles'; dataset: string; files: string[]; tileSize: number }
  /** Begins transaction `txn`: puts the raw block of `text`, sets reference `name` to it if it is still `expected`. Value: the block's CID. */
  | { op: 'prepareRef'; txn: string; name: string; text: string; expected: string | null }
  /** Sets reference `name` of the open transaction `txn` again, with a new expectation. */
  | { op: 'setRef'; txn: string; name: string; cid: string; expected: string | null }
  /**
   * Begins transaction `txn`: puts every block `root` reaches (read from the store: all of
   * them deduplicated) and sets reference `name` to `root`. Value: blocks put, and how many were new.
   */
  | { op: 'reuse'; txn: string; root: string; name: string }
  /** Commits transaction `txn`. */
  | { op: 'commit'; txn: string }
  /** Aborts transaction `txn`. */
  | { op: 'abort'; txn: string }

const location = process.argv[2]
if (location === undefined) throw new Error('usage: store-child.ts LOCATION')
const store = await openStoreAt(location)
const writers = new Map<string, BlockWriter>()

function writer(txn: string): BlockWriter {
  const found = writers.get(txn)
  if (found === undefined) throw new Error(`No open transaction ${txn}`)
  return found
}

const cidOrNull = (text: string | null) => (text === null ? null : CID.parse(text))

async function handle(request: ChildRequest): Promise<unknown> {
  switch (request.op) {
    case 'importFiles': {
      const heads: string[] = []
      for (const file of request.files) {
        const result = await importDataset(store, request.dataset, [file], { tileSize: request.tileSize })
        if (result.failed > 0) throw result.failures[0]!.error
        heads.push(String(result.head))
      }
      return heads
    }
    case 'prepareRef': {
      const block = rawBlock(new TextEncoder().encode(request.text))
      const txn = await store.begin()
      writers.set(request.txn, txn)
      await txn.put(block.cid, block.bytes)
      txn.setRef(request.name, block.cid, cidOrNull(request.expected))
      return block.cid.toString()
    }
    case 'setRef':
      writer(request.txn).setRef(request.name, CID.parse(request.cid), cidOrNull(request.expected))
      return null
    case 'reuse': {
      const root = CID.parse(request.root)
      const txn = await store.begin()
      writers.set(request.txn, txn)
      let blocks = 0
      let fresh = 0
      for await (const block of walkBlocks(store, [root])) {
        const bytes = block.bytes ?? (await store.get(block.cid))
        blocks++
        if (await txn.put(block.cid, bytes)) fresh++
      }
      txn.setRef(request.name, root)
      return { blocks, fresh }
    }
    case 'commit':
      // A conflict leaves the transaction open (the test may retry it); anything else ends it.
      await writer(request.txn).commit()
      writers.delete(request.txn)
      return null
    case 'abort':
      await writer(request.txn).abort()
      writers.delete(request.txn)
      return null
  }
}

const reply = (message: object) => process.stdout.write(`${JSON.stringify(message)}\n`)
const running = new Set<Promise<void>>()
for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() === '') continue
  const { id, ...request } = JSON.parse(line) as ChildRequest & { id: number }
  const run = handle(request as ChildRequest).then(
    (value) => {
      reply({ id, ok: true, value: value ?? null })
    },
    (error: Error & { code?: string }) => {
      reply({ id, ok: false, code: error.code ?? 'ERR_UNKNOWN', message: error.message })
    },
  )
  running.add(run)
  void run.finally(() => running.delete(run))
}
await Promise.all(running)
for (const txn of writers.values()) await txn.abort()
await store.close()
