/**
 * The pack store's sweep (spec/store.md §10): given which blocks to keep, delete the others
 * from the index and give their disk space back by rewriting the packs that hold them.
 *
 * Crash safety comes from the order of the steps, each group of packs on its own:
 *   1. copy the group's live sections into a new pack, fsync it and the directory;
 *   2. write ONE LevelDB batch moving the live blocks' locations to the new pack and
 *      deleting the dead blocks' keys;
 *   3. delete the old packs.
 * Killed before 2, the new pack is an orphan (no index entry names it); killed after 2, the
 * old packs are. Either way the index is consistent, and the next collection deletes the
 * orphans. Knows nothing of images: `keep` decides.
 */
import { closeSync, fsyncSync, unlinkSync, writeSync } from 'node:fs'
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { varint } from 'multiformats'
import { IntegrityError } from '../errors.js'
import { verifyBlock } from '../format/block.js'
import type { CollectOptions, CollectResult, KeepBlock } from './interface.js'
import {
  BLOCK_PREFIX,
  decodeLocation,
  encodeLocation,
  type Location,
  packId,
  packPath,
  readPackSections,
  syncDirectory,
} from './pack-file.js'

/** The parts of the index database the sweep uses (a classic-level database). */
export interface IndexDatabase {
  iterator(options: { gte: Uint8Array; lt: Uint8Array }): AsyncIterable<[Uint8Array, Uint8Array]>
  batch(): IndexBatch
}

/** A chained LevelDB batch. */
export interface IndexBatch {
  put(key: Uint8Array, value: Uint8Array): unknown
  del(key: Uint8Array): unknown
  write(options: { sync: boolean }): Promise<void>
}

/** What the sweep needs from the store that runs it. */
export interface SweepContext {
  readonly dir: string
  readonly db: IndexDatabase
  /** Creates the next pack file exclusively, as transactions do. */
  createPack(): Promise<{ id: number; fd: number }>
  /** Closes the store's cached handle of a pack before it is deleted. */
  releasePack(id: number): void
  storedBytes(): Promise<number>
}

interface IndexEntry {
  readonly key: Uint8Array
  readonly location: Location
}

interface PackState {
  readonly id: number
  readonly live: IndexEntry[]
  readonly dead: Uint8Array[]
  liveBytes: number
  /** Bytes the live sections take (varint + 36-byte CID + block), an estimate for other CIDs. */
  liveSectionBytes: number
  fileBytes: number | undefined
}

// A group of packs is rewritten into one new pack of about this much live data, then committed.
const GROUP_BYTES = 64 << 20
const GROUP_BLOCKS = 65_536
const WRITE_BUFFER = 4 << 20
const CID_BYTES = 36

/** Sweeps the pack store in `ctx`: see the module comment. */
export async function collectPacks(ctx: SweepContext, keep: KeepBlock, options: CollectOptions = {}): Promise<CollectResult> {
  const { signal } = options
  const bytesBefore = await ctx.storedBytes()
  const packs = new Map<number, PackState>()
  const state = (id: number): PackState => {
    let pack = packs.get(id)
    if (pack === undefined) {
      pack = { id, live: [], dead: [], liveBytes: 0, liveSectionBytes: 0, fileBytes: undefined }
      packs.set(id, pack)
    }
    return pack
  }
  let keptBlocks = 0
  let keptBytes = 0
  let deletedBlocks = 0
  let deletedBytes = 0
  let scanned = 0
  for await (const [key, value] of ctx.db.iterator({ gte: Uint8Array.of(BLOCK_PREFIX), lt: Uint8Array.of(BLOCK_PREFIX + 1) })) {
    if (++scanned % 4096 === 0) signal?.throwIfAborted()
    const location = decodeLocation(value)
    const pack = state(location.pack)
    if (keep(key.subarray(1))) {
      pack.live.push({ key, location })
      pack.liveBytes += location.length
      pack.liveSectionBytes += varint.encodingLength(CID_BYTES + location.length) + CID_BYTES + location.length
      keptBlocks++
      keptBytes += location.length
    } else {
      pack.dead.push(key)
      deletedBlocks++
      deletedBytes += location.length
    }
  }

  // Every pack file on disk: those no index entry names are orphans (spec/store.md §8).
  const orphans: Array<{ id: number; bytes: number }> = []
  for (const name of await readdir(join(ctx.dir, 'packs'))) {
    const id = packId(name)
    if (id === undefined) continue
    const bytes = (await stat(join(ctx.dir, 'packs', name))).size
    const pack = packs.get(id)
    if (pack === undefined) orphans.push({ id, bytes })
    else pack.fileBytes = bytes
  }
  const rewrite: PackState[] = []
  const remove: PackState[] = []
  // Dead keys of packs whose file is missing: nothing to reclaim on disk, but the keys go.
  const missingDead: Uint8Array[] = []
  for (const pack of [...packs.values()].sort((a, b) => a.id - b.id)) {
    if (pack.fileBytes === undefined) missingDead.push(...pack.dead)
    else if (pack.live.length === 0) remove.push(pack)
    else if (pack.dead.length > 0 || pack.fileBytes > pack.liveSectionBytes) rewrite.push(pack)
  }
  const removedBytes = remove.reduce((n, p) => n + p.fileBytes!, 0) + orphans.reduce((n, o) => n + o.bytes, 0)
  const result = {
    keptBlocks,
    keptBytes,
    deletedBlocks,
    deletedBytes,
    packsRewritten: rewrite.length,
    packsDeleted: remove.length + orphans.length,
    orphanPacks: orphans.length,
    bytesBefore,
  }
  if (options.dryRun === true) {
    const saved = removedBytes + rewrite.reduce((n, p) => n + Math.max(0, p.fileBytes! - p.liveSectionBytes), 0)
    return { ...result, bytesAfter: bytesBefore - saved }
  }

  const packsDir = join(ctx.dir, 'packs')
  let group: PackState[] = []
  let groupBytes = 0
  let groupBlocks = 0
  const flushGroup = async () => {
    if (group.length === 0) return
    signal?.throwIfAborted()
    await rewriteGroup(ctx, group, options)
    group = []
    groupBytes = 0
    groupBlocks = 0
  }
  for (const pack of rewrite) {
    group.push(pack)
    groupBytes += pack.liveBytes
    groupBlocks += pack.live.length
    if (groupBytes >= GROUP_BYTES || groupBlocks >= GROUP_BLOCKS) await flushGroup()
  }
  await flushGroup()

  if (remove.length > 0 || orphans.length > 0 || missingDead.length > 0) {
    signal?.throwIfAborted()
    const batch = ctx.db.batch()
    for (const pack of remove) for (const key of pack.dead) batch.del(key)
    for (const key of missingDead) batch.del(key)
    await batch.write({ sync: true })
    options.onPhase?.('index-written')
    for (const id of [...remove.map((p) => p.id), ...orphans.map((o) => o.id)]) {
      ctx.releasePack(id)
      unlinkSync(packPath(ctx.dir, id))
    }
    syncDirectory(packsDir)
    options.onPhase?.('packs-deleted')
  }
  options.onPhase?.('done')
  return { ...result, bytesAfter: await ctx.storedBytes() }
}

/** Copies the live sections of `group` into one new pack, re-points the index, deletes the old packs. */
async function rewriteGroup(ctx: SweepContext, group: PackState[], options: CollectOptions): Promise<void> {
  const { id, fd } = await ctx.createPack()
  const out = new SectionWriter(fd)
  const moves: Array<{ key: Uint8Array; location: Location }> = []
  try {
    for (const pack of group) {
      const wanted = new Map<number, IndexEntry>()
      for (const entry of pack.live) wanted.set(entry.location.offset, entry)
      for (const section of readPackSections(packPath(ctx.dir, pack.id))) {
        const entry = wanted.get(section.offset)
        if (entry === undefined || section.block.length !== entry.location.length) continue
        if (!sameBytes(section.cid.multihash.bytes, entry.key.subarray(1))) continue
        // Verified as it is copied: a damaged block must not be silently carried over.
        try {
          verifyBlock(section.cid, section.block)
        } catch (cause) {
          throw new IntegrityError(
            `Block ${section.cid} in pack ${pack.id} is damaged: garbage collection stopped; run \`tessera verify --all\``,
            { cause },
          )
        }
        const offset = out.append(section.body, section.cid.bytes.length)
        moves.push({ key: entry.key, location: { pack: id, offset, length: entry.location.length } })
        wanted.delete(section.offset)
      }
      if (wanted.size > 0) {
        throw new IntegrityError(
          `Pack ${pack.id} lacks ${wanted.size} block(s) its index entries name: garbage collection stopped; run \`tessera verify --all\``,
        )
      }
    }
    out.finish()
  } catch (error) {
    out.close()
    unlinkSync(packPath(ctx.dir, id))
    throw error
  }
  const packsDir = join(ctx.dir, 'packs')
  syncDirectory(packsDir)
  options.onPhase?.('pack-written')
  const batch = ctx.db.batch()
  for (const { key, location } of moves) batch.put(key, encodeLocation(location))
  for (const pack of group) for (const key of pack.dead) batch.del(key)
  // The one atomic step: before it the old packs hold every block, after it the new one does.
  await batch.write({ sync: true })
  options.onPhase?.('index-written')
  for (const pack of group) {
    ctx.releasePack(pack.id)
    unlinkSync(packPath(ctx.dir, pack.id))
  }
  syncDirectory(packsDir)
  options.onPhase?.('packs-deleted')
}

/** Appends sections (varint ‖ CID ‖ block) to a new pack through a buffer; fsyncs and closes on finish. */
class SectionWriter {
  readonly #fd: number
  #buffer = Buffer.allocUnsafe(WRITE_BUFFER)
  #buffered = 0
  #written = 0
  #closed = false

  constructor(fd: number) {
    this.#fd = fd
  }

  /** Appends `body` (CID ‖ block) with its length prefix; returns the block's offset in the pack. */
  append(body: Uint8Array, cidLength: number): number {
    const header = varint.encodeTo(body.length, new Uint8Array(varint.encodingLength(body.length)))
    const offset = this.#written + this.#buffered + header.length + cidLength
    this.#push(header)
    this.#push(body)
    return offset
  }

  finish(): void {
    this.#flush()
    fsyncSync(this.#fd)
    this.close()
  }

  close(): void {
    if (this.#closed) return
    this.#closed = true
    closeSync(this.#fd)
  }

  #push(bytes: Uint8Array): void {
    if (bytes.length > this.#buffer.length - this.#buffered) {
      this.#flush()
      if (bytes.length > this.#buffer.length) {
        this.#write(bytes)
        return
      }
    }
    this.#buffer.set(bytes, this.#buffered)
    this.#buffered += bytes.length
  }

  #flush(): void {
    if (this.#buffered === 0) return
    this.#write(this.#buffer.subarray(0, this.#buffered))
    this.#buffered = 0
  }

  #write(bytes: Uint8Array): void {
    let done = 0
    while (done < bytes.length) done += writeSync(this.#fd, bytes, done, bytes.length - done, this.#written + done)
    this.#written += bytes.length
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(b)
}
