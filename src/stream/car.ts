/**
 * A Tessera CAR (the CARv1 `tessera car export` writes, spec/dataset.md §10.1; or a CARv2
 * around one) cropped as it streams. The export walks the image's DAG depth first: the root
 * (manifest), then for each level each row's index block followed by that row's tiles, each
 * block once; the ICC profile comes last (dag-cbor orders `levels` before `metadata`). So the
 * crop keeps the manifest and the index blocks of the rows it needs, decodes each needed tile
 * row as soon as its tiles have arrived, and stops after the last one.
 *
 * A tile identical to one sent earlier is not sent again. From a file, every skipped tile's
 * offset is remembered and read back when needed; from a stream, small tiles (the usual
 * repeats: blank areas) are kept up to a budget, and a needed repeat that was not kept is
 * ERR_UNSUPPORTED_FORMAT, asking for the file. Any order works when the CAR holds the index
 * blocks before the tiles (breadth first) too. Blocks that are used are verified against their
 * CIDs; others are skipped unread (a file) or unhashed (a stream).
 *
 * The ICC profile follows the pixels, so outputs of a CAR carry none.
 */
import { decodeBand } from '../crop/decode.js'
import { type BandPlan, planCrop } from '../crop/plan.js'
import { CorruptInputError, InvalidArgumentError, TesseraError, UnsupportedFormatError } from '../errors.js'
import { CID, DAG_CBOR, decodeCbor, MAX_BLOCK_BYTES, RAW, verifyBlock } from '../format/block.js'
import { levelGeometry } from '../format/grid.js'
import type { Band, PixelFormat } from '../format/interface.js'
import { decodeManifest, decodeTileRow, type ImageManifest, type TileRowIndex } from '../format/manifest.js'
import { pixelFormat } from '../format/pixel.js'
import { threadCoder } from '../format/tile-codec.js'
import { checkDimensions } from '../import/decoders/rows.js'
import { readVarint, V2_PRAGMA } from './car-sniff.js'
import type { Delivery, ScanPlan, StreamDecoder, StreamStats } from './interface.js'
import type { ByteSource } from './source.js'

/** Largest CAR header accepted. */
const MAX_HEADER = 1 << 16
/** Longest CID read (a CIDv1 with a sha2-256 digest takes 36 bytes). */
const MAX_CID = 128
/** From a stream, repeated tiles are kept when at most this large... */
const SMALL_TILE = 4096
/** ...up to this many bytes in all. */
const KEEP_BUDGET = 16 << 20

/** The multihash of a CID as a map key (tiles are found by their hash, as the store finds blocks). */
function keyOf(cid: CID): string {
  const bytes = cid.multihash.bytes
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1')
}

/** One block's frame, read up to its CID. */
interface Frame {
  /** Offset of the frame (its varint). */
  readonly at: number
  /** Bytes of the varint and CID. */
  readonly prefix: number
  /** Bytes of the block's data. */
  readonly length: number
  readonly cid: CID
}

/** Reads block frames of a CARv1 body from the source, up to `end`. */
class CarBody {
  readonly #source: ByteSource
  readonly #end: number

  constructor(source: ByteSource, end: number) {
    this.#source = source
    this.#end = end
  }

  /** The next block's frame, the source left at its data; undefined at the end of the CAR. */
  async next(): Promise<Frame | undefined> {
    const at = this.#source.position
    if (at >= this.#end) return undefined
    const head = await this.#source.peek(10 + MAX_CID)
    if (head.length === 0) return undefined
    const varint = readVarint(head, 0)
    if (varint === undefined) throw new CorruptInputError(`CAR block at byte ${at}: the input ends inside its length (truncated?)`)
    let cid: CID
    let rest: Uint8Array
    try {
      // A copy: a CID keeps a view of the bytes it was decoded from.
      ;[cid, rest] = CID.decodeFirst(head.slice(varint.bytes))
    } catch (cause) {
      throw new CorruptInputError(`CAR block at byte ${at} does not start with a CID (corrupt or truncated?)`, { cause })
    }
    const cidBytes = head.length - varint.bytes - rest.length
    const length = varint.value - cidBytes
    if (length < 0 || length > MAX_BLOCK_BYTES) throw new CorruptInputError(`CAR block ${cid} has ${length} bytes`)
    await this.#source.seek(at + varint.bytes + cidBytes, `CAR block ${cid}`)
    return { at, prefix: varint.bytes + cidBytes, length, cid }
  }

  /** The data of the frame the source is at, verified against its CID. */
  async data(frame: Frame): Promise<Uint8Array> {
    // A copy: the source's bytes may be a view of a much larger buffer, and tiles are kept.
    const bytes = (await this.#source.read(frame.length, `CAR block ${frame.cid}`)).slice()
    verifyBlock(frame.cid, bytes)
    return bytes
  }

  /** Skips the data of the frame the source is at. */
  skip(frame: Frame): Promise<void> {
    return this.#source.seek(frame.at + frame.prefix + frame.length, `CAR block ${frame.cid}`)
  }

  /** Reads a block seen earlier, by position (a file), and comes back. */
  async reread(frame: Frame): Promise<Uint8Array> {
    const back = this.#source.position
    await this.#source.seek(frame.at + frame.prefix, `CAR block ${frame.cid}`)
    const bytes = await this.data(frame)
    await this.#source.seek(back, 'CAR')
    return bytes
  }
}

/** Reads the CAR's header and its root (an image manifest); returns the decoder of `level`. */
export async function openCar(source: ByteSource, options: { readonly maxPixels: number; readonly level: number }): Promise<StreamDecoder> {
  let end = Number.POSITIVE_INFINITY
  const pragma = await source.peek(V2_PRAGMA.length)
  if (V2_PRAGMA.every((b, i) => pragma[i] === b)) {
    const header = await source.read(V2_PRAGMA.length + 40, 'CARv2 header')
    const view = new DataView(header.buffer, header.byteOffset + V2_PRAGMA.length + 16, 16)
    const offset = Number(view.getBigUint64(0, true))
    end = offset + Number(view.getBigUint64(8, true))
    await source.seek(offset, 'CARv2 data')
  }
  const head = await source.peek(10)
  const varint = readVarint(head, 0)
  if (varint === undefined || varint.value > MAX_HEADER) throw new CorruptInputError('CAR header is malformed or truncated')
  const headerBytes = (await source.read(varint.bytes + varint.value, 'CAR header')).subarray(varint.bytes)
  let roots: unknown
  try {
    const header = decodeCbor(headerBytes) as { version?: unknown; roots?: unknown }
    if (header.version !== 1) throw new CorruptInputError(`CAR version ${String(header.version)}`)
    roots = header.roots
  } catch (cause) {
    if (cause instanceof CorruptInputError) throw cause
    throw new CorruptInputError('CAR header is not dag-cbor', { cause })
  }
  const root = Array.isArray(roots) && roots.length >= 1 ? CID.asCID(roots[0]) : null
  if (root === null) throw new CorruptInputError('CAR header names no root')
  const body = new CarBody(source, end)
  const first = await body.next()
  if (first === undefined) throw new CorruptInputError('CAR holds no block')
  if (!first.cid.equals(root) || root.code !== DAG_CBOR) {
    throw new UnsupportedFormatError(
      `The CAR does not start with its root ${root}: not a Tessera image export; import it with \`tessera car import\``,
    )
  }
  const rootBytes = await body.data(first)
  let manifest: ImageManifest
  try {
    manifest = decodeManifest(rootBytes)
  } catch (error) {
    if (!(error instanceof TesseraError && error.code === 'ERR_INTEGRITY')) throw error
    throw new UnsupportedFormatError(`The CAR's root ${root} is not a Tessera image (a dataset?): ${error.message}`)
  }
  const { level } = options
  if (!Number.isInteger(level) || level < 0 || level >= manifest.levels.length) {
    throw new InvalidArgumentError(`Level ${level} does not exist: the image has levels 0 to ${manifest.levels.length - 1}`)
  }
  const entry = manifest.levels[level]!
  checkDimensions(entry.width, entry.height, options.maxPixels, 'CAR image')
  return new CarTiles(body, manifest, level, source.seekable)
}

class CarTiles implements StreamDecoder {
  readonly sourceFormat = 'car'
  readonly icc = undefined
  readonly width: number
  readonly height: number
  readonly format: PixelFormat
  readonly tiling: { readonly tileSize: number; readonly predictor: 1 | 2; readonly zstdLevel: number }
  readonly #body: CarBody
  readonly #manifest: ImageManifest
  readonly #level: number
  readonly #seekable: boolean

  constructor(body: CarBody, manifest: ImageManifest, level: number, seekable: boolean) {
    this.#body = body
    this.#manifest = manifest
    this.#level = level
    this.#seekable = seekable
    this.width = manifest.levels[level]!.width
    this.height = manifest.levels[level]!.height
    this.format = pixelFormat(manifest.colorModel, manifest.bitsPerSample)
    this.tiling = { tileSize: manifest.tileSize, predictor: manifest.codec.predictor, zstdLevel: manifest.codec.level }
  }

  async *deliveries(plan: ScanPlan, stats: StreamStats, signal: AbortSignal | undefined): AsyncGenerator<readonly Delivery[]> {
    const manifest = this.#manifest
    const body = this.#body
    const seekable = this.#seekable
    const height = this.height
    const T = manifest.tileSize
    const pixel = manifest.channels * (manifest.bitsPerSample / 8)
    const { columns: across } = levelGeometry(this.width, this.height, T)
    const coder = threadCoder({ tileSize: T, channels: manifest.channels, bitsPerSample: manifest.bitsPerSample }, manifest.codec)
    // Per region, its band of each tile row it touches; the tile rows needed, top to bottom.
    const bands = plan.regions.map((region) => new Map([...planCrop(region, T)].map((band) => [band.row, band] as const)))
    const rows = [...new Set(bands.flatMap((map) => [...map.keys()]))].sort((a, b) => a - b)
    const columns = new Map(rows.map((row) => [row, [...new Set(bands.flatMap((map) => map.get(row)?.slices.map((s) => s.column) ?? []))]]))
    const rowsOfIndex = new Map<string, number[]>()
    manifest.levels[this.#level]!.rows.forEach((cid, row) => {
      if (!columns.has(row)) return
      const key = keyOf(cid)
      rowsOfIndex.set(key, [...(rowsOfIndex.get(key) ?? []), row])
    })

    const indexes = new Map<number, TileRowIndex>()
    /** Tiles of rows whose index has arrived, by key: how many (row, column) places still need them. */
    const wanted = new Map<string, number>()
    const payloads = new Map<string, Uint8Array>()
    /** Small tiles kept for later repeats (a stream); where the tiles passed lie (a file); keys passed (a stream). */
    const kept = new Map<string, Uint8Array>()
    let keptBytes = 0
    const frames = new Map<string, Frame>()
    const passed = new Set<string>()
    const keep = (key: string, bytes: Uint8Array) => {
      if (bytes.length > SMALL_TILE || keptBytes + bytes.length > KEEP_BUDGET || kept.has(key)) return
      kept.set(key, bytes)
      keptBytes += bytes.length
    }
    const tileOf = async (key: string): Promise<Uint8Array | undefined> => {
      const payload = payloads.get(key) ?? kept.get(key)
      if (payload !== undefined) return payload
      const frame = frames.get(key)
      if (frame === undefined) return undefined
      const bytes = await body.reread(frame)
      payloads.set(key, bytes)
      return bytes
    }

    let next = 0
    /** The next needed tile rows whose tiles have all arrived, decoded. */
    async function* ready(): AsyncGenerator<readonly Delivery[]> {
      while (next < rows.length) {
        const row = rows[next]!
        const index = indexes.get(row)
        if (index === undefined) return
        const tiles = new Map<number, Uint8Array>()
        // A delta tile's reference (spec/format.md §6.1), needed with it.
        const references = new Map<number, Uint8Array>()
        for (const column of columns.get(row)!) {
          const payload = await tileOf(keyOf(index.tiles[column]!))
          if (payload === undefined) return
          tiles.set(column, payload)
          const ref = index.refs?.[column] ?? null
          if (ref === null) continue
          const reference = await tileOf(keyOf(ref))
          if (reference === undefined) return
          references.set(column, reference)
        }
        const step: Delivery[] = []
        bands.forEach((map, regionIndex) => {
          const band: BandPlan | undefined = map.get(row)
          if (band === undefined) return
          const data = new Uint8Array(band.height * plan.regions[regionIndex]!.width * pixel)
          decodeBand(
            coder,
            band,
            band.slices.map((slice) => tiles.get(slice.column)!),
            data,
            references.size === 0 ? undefined : band.slices.map((slice) => references.get(slice.column)),
          )
          stats.tilesDecoded += band.slices.length
          step.push({ index: regionIndex, band: { y: band.regionY, height: band.height, data } satisfies Band })
        })
        stats.rowsDecoded += Math.min(T, height - row * T)
        const used = columns.get(row)!.flatMap((column) => {
          const ref = index.refs?.[column] ?? null
          return ref === null ? [index.tiles[column]!] : [index.tiles[column]!, ref]
        })
        for (const cid of used) {
          const key = keyOf(cid)
          const left = (wanted.get(key) ?? 1) - 1
          if (left > 0) {
            wanted.set(key, left)
            continue
          }
          wanted.delete(key)
          const payload = payloads.get(key)
          payloads.delete(key)
          if (payload !== undefined && !seekable) keep(key, payload)
        }
        next++
        yield step
      }
    }

    for (;;) {
      signal?.throwIfAborted()
      const frame = await body.next()
      if (frame === undefined) break
      const key = keyOf(frame.cid)
      const indexRows = frame.cid.code === DAG_CBOR ? rowsOfIndex.get(key) : undefined
      if (indexRows !== undefined) {
        const bytes = await body.data(frame)
        for (const row of indexRows) {
          if (indexes.has(row)) continue
          const index = decodeTileRow(bytes, across, manifest.tessera)
          indexes.set(row, index)
          for (const column of columns.get(row)!) {
            const ref = index.refs?.[column] ?? null
            for (const cid of ref === null ? [index.tiles[column]!] : [index.tiles[column]!, ref]) {
              const tile = keyOf(cid)
              wanted.set(tile, (wanted.get(tile) ?? 0) + 1)
            }
          }
        }
      } else if (frame.cid.code === RAW && wanted.has(key) && !payloads.has(key)) {
        payloads.set(key, await body.data(frame))
        if (seekable) frames.set(key, frame)
      } else if (frame.cid.code === RAW && !seekable && frame.length <= SMALL_TILE && keptBytes + frame.length <= KEEP_BUDGET) {
        keep(key, await body.data(frame))
      } else {
        if (frame.cid.code === RAW) {
          if (seekable) frames.set(key, frame)
          else passed.add(key)
        }
        await body.skip(frame)
      }
      yield* ready()
      if (next === rows.length) return
    }
    // The CAR ended before every needed row was complete: say what is missing.
    const row = rows[next]!
    const index = indexes.get(row)
    if (index === undefined) throw new CorruptInputError(`The CAR ends without the index block of tile row ${row} (truncated?)`)
    for (const column of columns.get(row)!) {
      const key = keyOf(index.tiles[column]!)
      if ((await tileOf(key)) !== undefined) continue
      if (passed.has(key)) {
        throw new UnsupportedFormatError(
          `The CAR refers back to tile ${index.tiles[column]} (row ${row}), sent earlier and too large to keep while streaming: pass the CAR as a file`,
        )
      }
      throw new CorruptInputError(`The CAR ends without tile ${index.tiles[column]} of row ${row} (truncated?)`)
    }
    throw new CorruptInputError(`The CAR ended before tile row ${row}`)
  }

  async close(): Promise<void> {}
}
