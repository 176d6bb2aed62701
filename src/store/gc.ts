/**
 * Garbage collection's store half (spec/store.md §10), beside readers and writers of other
 * processes: mark at generation G (the caller's walk from every pin and reference), copy the
 * live blocks of packs holding dead ones into new packs, then drop the old packs with one log
 * record — after re-checking what commits since G link to. Dropped packs stay on disk until
 * no transaction that began before the drop is alive (leases), so a writer that reused a
 * block in one can still copy it when it commits; then they are purged.
 */
import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import { varint } from 'multiformats'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { StoreError } from '../errors.js'
import { SHA2_256, verifyBlock } from '../format/block.js'
import type { AbortOptions, CollectOptions, CollectResult, KeepBlock } from './interface.js'
import { blockLinks } from './links.js'
import { indexKey, isLive, type Lease, leaseKey, newTxnId, type ObjectBlockStore, packKey, txnOfPack } from './object-store.js'
import { encodePackIndex, type IndexEntry, indexBytes, PackIndex } from './pack-index.js'
import { appendRecord, type LogRecord, readRecords, writeCheckpoint } from './root-log.js'

const LOCK = 'gc.lock'
// Live data copied into one new pack at most.
const GROUP_BYTES = 64 << 20
// Reads of a pack being rewritten span at most this many bytes.
const READ_SPAN = 8 << 20

interface PackPlan {
  readonly name: string
  readonly gen: number
  readonly index: PackIndex
  readonly live: number[]
  liveBytes: number
  dead: number
  deadBytes: number
  size: number
}

/** Runs one collection of `store`: see the module comment. */
export async function collectStore(
  store: ObjectBlockStore,
  mark: (options: AbortOptions) => Promise<KeepBlock>,
  options: CollectOptions = {},
): Promise<CollectResult> {
  const { signal } = options
  signal?.throwIfAborted()
  const driver = store.driver
  const txn = newTxnId()
  await takeLock(store, txn, options.lockTimeout ?? 0)
  const renewal = setInterval(
    () => {
      writeLock(store, txn).catch(() => {})
    },
    Math.max(1000, store.init.leaseMs / 4),
  )
  renewal.unref()
  try {
    const bytesBefore = await store.storedBytes(options)
    // Killed writers' temporaries: never named by the store, invisible to listings.
    await driver.removeStaleTemporaries?.(options)
    await store.refresh(options)
    const snapshot = store.state
    const G = snapshot.gen
    const keep = await mark({ signal })
    options.onPhase?.('marked')

    // Classify every block of every live pack; a block held by several packs lives in the first.
    const sizes = new Map<string, number>()
    for await (const object of driver.list('packs/', options)) sizes.set(object.key, object.size)
    const plans: PackPlan[] = []
    const liveSeen = new Set<string>()
    let keptBlocks = 0
    let keptBytes = 0
    let deletedBlocks = 0
    let deletedBytes = 0
    const deadSeen = new Set<string>()
    for (const [name, gen] of [...snapshot.packs].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      const index = await store.readIndex(name, options)
      const plan: PackPlan = { name, gen, index, live: [], liveBytes: 0, dead: 0, deadBytes: 0, size: sizes.get(packKey(name)) ?? 0 }
      for (let i = 0; i < index.count; i++) {
        if (i % 4096 === 0) signal?.throwIfAborted()
        const { digest, length } = index.entry(i)
        const key = Buffer.from(digest).toString('hex')
        if (!liveSeen.has(key) && keep(multihash(digest))) {
          liveSeen.add(key)
          plan.live.push(i)
          plan.liveBytes += length
          keptBlocks++
          keptBytes += length
        } else {
          plan.dead++
          plan.deadBytes += length
          if (!liveSeen.has(key) && !deadSeen.has(key)) {
            deadSeen.add(key)
            deletedBlocks++
            deletedBytes += length
          }
        }
      }
      plans.push(plan)
    }
    const rewrite = plans.filter((p) => p.dead > 0 && p.live.length > 0)
    const remove = plans.filter((p) => p.live.length === 0)

    // Packs no record names: a dead writer's (its lease lapsed) are deleted; others are left and reported.
    const now = Date.now()
    const leases = await store.leases(options)
    const leaseOf = new Map(leases.map((lease) => [lease.txn, lease]))
    const expired = new Set<string>()
    const orphans = new Set<string>()
    for (const key of sizes.keys()) {
      const name = /^packs\/(.+)\.(pack|idx)$/.exec(key)?.[1]
      if (name === undefined || snapshot.packs.has(name) || snapshot.dropped.has(name)) continue
      const owner = txnOfPack(name)
      const lease = owner === undefined ? undefined : leaseOf.get(owner)
      if (owner === undefined || lease === undefined || isLive(lease, store.init.leaseMs, now)) continue
      expired.add(owner)
      orphans.add(name)
    }
    const orphanBytes = [...orphans].reduce((n, name) => n + (sizes.get(packKey(name)) ?? 0) + (sizes.get(indexKey(name)) ?? 0), 0)
    const result = {
      keptBlocks,
      keptBytes,
      deletedBlocks,
      deletedBytes,
      packsRewritten: rewrite.length,
      packsDeleted: remove.length + orphans.size,
      orphanPacks: orphans.size,
      bytesBefore,
    }
    // The packs the rewrite makes: groups of up to GROUP_BYTES of live data, in name order.
    const groups: PackPlan[][] = []
    let groupBytes = Number.POSITIVE_INFINITY
    for (const plan of rewrite) {
      if (groupBytes >= GROUP_BYTES) {
        groups.push([])
        groupBytes = 0
      }
      groups.at(-1)!.push(plan)
      groupBytes += plan.liveBytes
    }
    if (options.dryRun === true) {
      const objectBytes = (name: string) => (sizes.get(packKey(name)) ?? 0) + (sizes.get(indexKey(name)) ?? 0)
      let saved = orphanBytes + [...remove, ...rewrite].reduce((n, p) => n + objectBytes(p.name), 0)
      for (const group of groups) {
        let blocks = 0
        for (const plan of group) {
          for (const i of plan.live) saved -= sectionBytes(plan.index.length(i))
          blocks += plan.live.length
        }
        saved -= indexBytes(blocks)
      }
      return { ...result, bytesAfter: bytesBefore - saved }
    }

    // Copy the live blocks of partly dead packs into new packs.
    await driver.put(leaseKey(txn), leaseBytes({ txn, base: G, time: Date.now() }), options)
    const added = new Map<string, PackIndex>()
    try {
      for (const group of groups) await copyGroup(store, `${txn}-${added.size + 1}`, group, added, options)
    } catch (error) {
      for (const name of added.keys()) {
        await driver.delete(packKey(name)).catch(() => {})
        await driver.delete(indexKey(name)).catch(() => {})
      }
      await driver.delete(leaseKey(txn)).catch(() => {})
      throw error
    }

    // Drop the old packs with one record, after checking what was committed since G.
    const drop = new Map([...rewrite, ...remove].map((p) => [p.name, p]))
    await store.serialize(async () => {
      if (drop.size === 0 && added.size === 0 && expired.size === 0) return
      let checked = G
      for (;;) {
        await store.refresh(options)
        const records = await readRecords(driver, checked, options)
        if (records === undefined) throw new StoreError('ERR_STORE', 'The root log moved under the collection: run it again')
        for (const record of records) await spare(store, record, keep, G, drop, added, options)
        checked = records.at(-1)?.gen ?? checked
        const record: LogRecord = {
          gen: store.state.gen + 1,
          time: Date.now(),
          base: G,
          txn,
          mark: G,
          ...(added.size > 0 ? { add: [...added.keys()] } : {}),
          ...(drop.size > 0 ? { drop: [...drop.keys()] } : {}),
          ...(expired.size > 0 ? { expire: [...expired] } : {}),
        }
        if (await appendRecord(driver, record, options)) {
          if (!store.adopt(record, added)) await store.refresh(options)
          return
        }
      }
    })
    options.onPhase?.('index-written')
    await driver.delete(leaseKey(txn)).catch(() => {})

    // Delete dead writers' packs, and dropped packs no live transaction can still need.
    for (const name of orphans) {
      await driver.delete(packKey(name))
      await driver.delete(indexKey(name))
    }
    for (const owner of expired) await driver.delete(leaseKey(owner))
    // Leases of writers that died before their first pack, or after their commit: nothing to collect but the lease.
    const unnamed = [...sizes.keys()].map((key) => /^packs\/(.+)\.(?:pack|idx)$/.exec(key)?.[1] ?? '')
    const owners = new Set(unnamed.filter((name) => !store.state.packs.has(name) && !store.state.dropped.has(name)).map(txnOfPack))
    for (const lease of leases) {
      if (lease.txn !== txn && !owners.has(lease.txn) && !isLive(lease, store.init.leaseMs)) await driver.delete(leaseKey(lease.txn))
    }
    await purge(store, txn, options)
    options.onPhase?.('packs-deleted')
    const live = (await store.leases(options)).filter((lease) => isLive(lease, store.init.leaseMs))
    await writeCheckpoint(driver, store.state, Math.min(store.state.gen, ...live.map((lease) => lease.base)), options)
    options.onPhase?.('done')
    return { ...result, bytesAfter: await store.storedBytes(options) }
  } finally {
    clearInterval(renewal)
    await driver.delete(LOCK).catch(() => {})
  }
}

/** Deletes every dropped pack that no live transaction begun before its drop may copy from, with a record saying so. */
async function purge(store: ObjectBlockStore, self: string, options?: AbortOptions): Promise<void> {
  const driver = store.driver
  await store.serialize(async () => {
    for (;;) {
      await store.refresh(options)
      const now = Date.now()
      const live = (await store.leases(options)).filter((lease) => lease.txn !== self && isLive(lease, store.init.leaseMs, now))
      const purged = [...store.state.dropped].filter(([, dropGen]) => !live.some((lease) => lease.base < dropGen)).map(([name]) => name)
      if (purged.length === 0) return
      // Deleted first, recorded after: killed in between, the next collection finds them still
      // dropped and deletes (nothing) again. (Recorded first, a kill would leave files that no
      // record names.) Nobody reads a dropped pack but a rescuing writer, and no live one can.
      for (const name of purged) {
        await driver.delete(packKey(name))
        await driver.delete(indexKey(name))
      }
      const record: LogRecord = { gen: store.state.gen + 1, time: Date.now(), base: store.state.gen, txn: self, purge: purged }
      if (!(await appendRecord(driver, record, options))) continue
      if (!store.adopt(record, new Map())) await store.refresh(options)
      return
    }
  })
}

/**
 * Keeps, among the packs about to be dropped, every one holding a block that `record` (a
 * commit after the mark at G) links to and the mark found dead.
 */
async function spare(
  store: ObjectBlockStore,
  record: LogRecord,
  keep: KeepBlock,
  G: number,
  drop: Map<string, PackPlan>,
  added: ReadonlyMap<string, PackIndex>,
  options?: AbortOptions,
): Promise<void> {
  const roots: CID[] = (record.pins ?? []).map((pin) => CID.parse(pin.cid))
  for (const cid of Object.values(record.refs ?? {})) if (cid !== null) roots.push(CID.parse(cid))
  const seen = new Set<string>()
  const stack = roots
  while (stack.length > 0) {
    const cid = stack.pop()!
    if (cid.multihash.code !== SHA2_256) continue
    const digest = cid.multihash.digest
    const key = Buffer.from(digest).toString('hex')
    if (seen.has(key)) continue
    seen.add(key)
    // Live at G: the mark kept it and everything it links to.
    if (keep(multihash(digest))) continue
    let bytes: Uint8Array | undefined
    const live = store.packOf(digest)
    if (live !== undefined && drop.has(live.pack)) {
      drop.delete(live.pack)
      bytes = await store.readAt(store.findLive(digest)!, options)
    } else if (live !== undefined && live.gen > G && !added.has(live.pack)) {
      bytes = await store.readAt(store.findLive(digest)!, options)
    } else if (live === undefined) {
      for (const [name, plan] of drop) {
        const i = plan.index.find(digest)
        if (i < 0) continue
        drop.delete(name)
        bytes = await store.driver.getRange(packKey(name), plan.index.offset(i), plan.index.length(i), options)
        break
      }
    }
    if (bytes === undefined) continue
    for (const link of blockLinks(cid, bytes)) stack.push(link)
  }
}

/** Writes the live blocks of `group` into a new pack `name` with its index; each block verified as it is copied. */
async function copyGroup(
  store: ObjectBlockStore,
  name: string,
  group: readonly PackPlan[],
  added: Map<string, PackIndex>,
  options?: CollectOptions,
): Promise<void> {
  const driver = store.driver
  const sink = await driver.create(packKey(name), options)
  const entries: IndexEntry[] = []
  try {
    for (const plan of group) {
      const live = plan.live.map((i) => plan.index.entry(i)).sort((a, b) => a.offset - b.offset)
      let at = 0
      while (at < live.length) {
        options?.signal?.throwIfAborted()
        // One read for a run of neighbouring blocks.
        const start = live[at]!.offset
        let end = at
        while (end + 1 < live.length && live[end + 1]!.offset + live[end + 1]!.length - start <= READ_SPAN) end++
        const span = await driver.getRange(packKey(plan.name), start, live[end]!.offset + live[end]!.length - start, options)
        for (let k = at; k <= end; k++) {
          const entry = live[k]!
          const block = span.subarray(entry.offset - start, entry.offset - start + entry.length)
          const cid = CID.createV1(entry.codec, Digest.create(SHA2_256, new Uint8Array(entry.digest)))
          verifyBlock(cid, block)
          const header = varint.encodeTo(
            cid.bytes.length + block.length,
            new Uint8Array(varint.encodingLength(cid.bytes.length + block.length)),
          )
          await sink.write(header)
          await sink.write(cid.bytes)
          entries.push({ digest: entry.digest, offset: sink.length, length: block.length, codec: entry.codec })
          await sink.write(block)
        }
        at = end + 1
      }
    }
    await sink.finish(options)
  } catch (error) {
    await sink.abort()
    throw error
  }
  const bytes = encodePackIndex(entries)
  await driver.put(indexKey(name), bytes, options)
  added.set(name, new PackIndex(bytes))
  options?.onPhase?.('pack-written')
}

async function takeLock(store: ObjectBlockStore, txn: string, timeout: number): Promise<void> {
  const driver = store.driver
  const deadline = Date.now() + timeout
  for (;;) {
    if (await driver.put(LOCK, leaseBytes({ txn, base: 0, time: Date.now() }), { ifAbsent: true })) return
    const bytes = await driver.get(LOCK)
    const holder = bytes === undefined ? undefined : (JSON.parse(new TextDecoder().decode(bytes)) as Lease)
    if (holder !== undefined && isLive(holder, store.init.leaseMs)) {
      if (Date.now() >= deadline) {
        throw new StoreError(
          'ERR_STORE_LOCKED',
          `Another garbage collection of ${driver.location} is running (${holder.host ?? '?'} pid ${holder.pid ?? '?'})`,
        )
      }
      await new Promise((resolve) => setTimeout(resolve, 200))
      continue
    }
    // Its collector died: take the lock over (a rival doing the same loses the create-only put).
    if (holder !== undefined) await driver.delete(LOCK)
  }
}

async function writeLock(store: ObjectBlockStore, txn: string): Promise<void> {
  await store.driver.put(LOCK, leaseBytes({ txn, base: 0, time: Date.now() }))
}

function leaseBytes(lease: Lease): Uint8Array {
  return new TextEncoder().encode(
    `${JSON.stringify({ ...lease, host: hostname(), pid: process.pid, nonce: randomBytes(4).toString('hex') })}\n`,
  )
}

/** Bytes of a pack section holding a block of `length` bytes under a 36-byte CID. */
function sectionBytes(length: number): number {
  return varint.encodingLength(36 + length) + 36 + length
}

function multihash(digest: Uint8Array): Uint8Array {
  const out = new Uint8Array(34)
  out[0] = SHA2_256
  out[1] = 32
  out.set(digest, 2)
  return out
}
