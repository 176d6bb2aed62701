/**
 * Delta tiles at the format level (spec/format.md §6.1): the codec's delta frames, decoded by
 * the zstd command-line tool as an independent reader; the index block's `refs` and its
 * rejection rules, one test each; the version gate; and the worked example of §14.1 byte for
 * byte.
 */
import { execFileSync } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { cborBlock, rawBlock } from '../../src/format/block.js'
import {
  DELTA_FORMAT_VERSION,
  decodeManifest,
  decodeTileRow,
  encodeManifest,
  encodeTileRow,
  FORMAT_VERSION,
  type ImageManifest,
} from '../../src/format/manifest.js'
import { isReferenceContent, TileCoder } from '../../src/format/tile-codec.js'
import { importImage, openImage } from '../../src/image.js'
import { DeltaContext } from '../../src/import/delta.js'
import { MemoryBlockStore } from '../../src/store/memory.js'
import { frameOf } from '../helpers/frames.js'
import { makeImage } from '../helpers/oracle.js'

const shape = { tileSize: 32, channels: 3, bitsPerSample: 8 as const }
const codec = { name: 'zstd' as const, level: 3, predictor: 2 as const }

describe('delta payloads', () => {
  const before = makeImage(32, 32, 3, 8, 1)
  const after = frameOf(before, 2)

  it('round-trip against the reference content, and are much smaller than plain', () => {
    const coder = new TileCoder(shape, codec)
    const reference = coder.content(before.data).slice()
    const content = coder.content(after.data).slice()
    const delta = coder.encodeDelta(content, reference)
    expect(delta.length).toBeLessThan(coder.encode(after.data).length / 4)
    const dictionary = coder.decompress(coder.encode(before.data), new Uint8Array(content.length))
    expect(dictionary).toEqual(reference)
    expect(coder.decode(delta, undefined, dictionary)).toEqual(after.data)
  })

  it('do not decode without their reference, or with another one', () => {
    const coder = new TileCoder(shape, codec)
    const delta = coder.encodeDelta(coder.content(after.data).slice(), coder.content(before.data).slice())
    expect(() => coder.decode(delta)).toThrow(expect.objectContaining({ code: 'ERR_INTEGRITY' }))
    const other = coder.content(makeImage(32, 32, 3, 8, 9).data).slice()
    let decoded: Uint8Array | undefined
    try {
      decoded = coder.decode(delta, undefined, other)
    } catch (error) {
      expect(error).toMatchObject({ code: 'ERR_INTEGRITY' })
    }
    if (decoded !== undefined) expect(decoded).not.toEqual(after.data)
  })

  it('never use content starting with the zstd dictionary magic as a reference', () => {
    const coder = new TileCoder({ tileSize: 16, channels: 1, bitsPerSample: 8 }, { ...codec, predictor: 1 })
    const magic = new Uint8Array(256).fill(7)
    magic.set([0x37, 0xa4, 0x30, 0xec])
    expect(isReferenceContent(magic)).toBe(false)
    expect(isReferenceContent(new Uint8Array(256))).toBe(true)
    expect(() => coder.encodeDelta(new Uint8Array(256), magic)).toThrow(RangeError)
    const delta = coder.encodeDelta(magic, new Uint8Array(256).fill(7))
    expect(() => coder.decode(delta, undefined, magic)).toThrow(expect.objectContaining({ code: 'ERR_INTEGRITY' }))
  })

  it('are read by the zstd tool given the reference content as a dictionary (an independent reader)', async (context) => {
    try {
      execFileSync('zstd', ['--version'])
    } catch {
      context.skip()
    }
    const coder = new TileCoder(shape, codec)
    const reference = coder.content(before.data).slice()
    const content = coder.content(after.data).slice()
    const dir = await mkdtemp(join(tmpdir(), 'tessera-delta-zstd-'))
    try {
      await writeFile(join(dir, 'ref'), reference)
      await writeFile(join(dir, 'delta.zst'), coder.encodeDelta(content, reference))
      execFileSync('zstd', ['-q', '-d', '-D', join(dir, 'ref'), join(dir, 'delta.zst'), '-o', join(dir, 'out')])
      expect(new Uint8Array(await readFile(join(dir, 'out')))).toEqual(content)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

describe('index blocks with refs', () => {
  const a = rawBlock(new Uint8Array([1])).cid
  const b = rawBlock(new Uint8Array([2])).cid
  const c = rawBlock(new Uint8Array([3])).cid
  const bytesOf = (value: unknown) => cborBlock(value).bytes

  it('are written only when a tile of the row is a delta', () => {
    const plain = encodeTileRow({ tiles: [a, b], lengths: [1, 1], refs: [null, null] })
    expect(plain.bytes).toEqual(encodeTileRow({ tiles: [a, b], lengths: [1, 1] }).bytes)
    const delta = encodeTileRow({ tiles: [a, b], lengths: [1, 1], refs: [null, c] })
    expect(decodeTileRow(delta.bytes, 2, DELTA_FORMAT_VERSION).refs).toEqual([null, c])
  })

  it('are refused in a version 1 image', () => {
    const delta = encodeTileRow({ tiles: [a, b], lengths: [1, 1], refs: [null, c] })
    expect(() => decodeTileRow(delta.bytes, 2, FORMAT_VERSION)).toThrow(expect.objectContaining({ code: 'ERR_INTEGRITY' }))
  })

  it('refuse refs of the wrong length', () => {
    const bytes = bytesOf({ tiles: [a, b], lengths: [1, 1], refs: [c] })
    expect(() => decodeTileRow(bytes, 2)).toThrow(expect.objectContaining({ code: 'ERR_INTEGRITY' }))
  })

  it('refuse refs with no delta', () => {
    const bytes = bytesOf({ tiles: [a, b], lengths: [1, 1], refs: [null, null] })
    expect(() => decodeTileRow(bytes, 2)).toThrow(expect.objectContaining({ code: 'ERR_INTEGRITY' }))
  })

  it('refuse a tile that is its own reference', () => {
    const bytes = bytesOf({ tiles: [a, b], lengths: [1, 1], refs: [a, null] })
    expect(() => decodeTileRow(bytes, 2)).toThrow(expect.objectContaining({ code: 'ERR_INTEGRITY' }))
  })

  it('refuse a reference that is not a raw link', () => {
    const root = cborBlock({}).cid
    for (const ref of [root, 'x', 1]) {
      const bytes = bytesOf({ tiles: [a, b], lengths: [1, 1], refs: [ref, null] })
      expect(() => decodeTileRow(bytes, 2)).toThrow(expect.objectContaining({ code: 'ERR_INTEGRITY' }))
    }
  })
})

describe('format versions', () => {
  const manifest = (tessera: number): ImageManifest => ({
    tessera,
    width: 16,
    height: 16,
    colorModel: 'gray',
    channels: 1,
    bitsPerSample: 8,
    tileSize: 16,
    codec,
    levels: [{ width: 16, height: 16, rows: [cborBlock({}).cid] }],
    metadata: {},
  })

  it('reads versions 1 and 2 and refuses later ones, saying why', () => {
    expect(decodeManifest(encodeManifest(manifest(1)).bytes).tessera).toBe(1)
    expect(decodeManifest(encodeManifest(manifest(2)).bytes).tessera).toBe(2)
    expect(() => decodeManifest(encodeManifest(manifest(3)).bytes)).toThrow(/Unsupported format version 3/)
  })
})

it('reproduces the delta worked example of spec/format.md §14.1 byte for byte', async () => {
  const W = 32
  const H = 16
  const frame = (changed: boolean) => {
    const pixels = new Uint8Array(W * H)
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) pixels[y * W + x] = (x * 7 + y * 3) % 256
    if (changed) pixels[5 * W + 20] = 255
    return Buffer.concat([Buffer.from(`P5\n${W} ${H}\n255\n`), pixels])
  }
  const dir = await mkdtemp(join(tmpdir(), 'tessera-spec-delta-'))
  try {
    const store = new MemoryBlockStore()
    const context = new DeltaContext()
    const cids = []
    for (const [i, changed] of [false, true].entries()) {
      const path = join(dir, `f${i}.pgm`)
      await writeFile(path, frame(changed))
      const ticket = context.ticket()
      cids.push((await importImage(store, path, { tileSize: 16, workers: 0, delta: ticket })).cid)
      ticket.end()
    }
    expect(cids.map(String)).toEqual([
      'bafyreia6pirvvb6kcp2o2jzct3qhrxoxvyunpnnqgqpwh3wakw6puaq5au',
      'bafyreichf2opiheug4k5daa6an7wk2wj6u2svidnx5ez6b3wyf4d453bum',
    ])
    const second = await openImage(store, cids[1]!)
    expect(second.manifest.tessera).toBe(2)
    const index = second.manifest.levels[0]!.rows[0]!
    expect(index.toString()).toBe('bafyreigq7pyss5z3ok7k55gtsfeodig5bh2yjvwlml33oq6t2gb6766bx4')
    expect(Buffer.from(await store.get(index)).toString('hex')).toBe(
      'a3647265667382f6d82a582500015512203f500037f587e0873a0489b3980bd0ba9f789307218cf61741f788978557b04e6574696c657382d82a58250001551220a6ccd9123b673b2ab0f7ed6ad42aa86e556154196ac99ef438f991b569b92d00d82a582500015512209e3e3a60bc93d556a851230f1dd719217b7b04ddc2aeb08eb5938bd27d5849b1676c656e677468738218311821',
    )
    const row = await second.reader.tileRow(0, 0)
    expect(row.refs?.map(String)).toEqual([null, 'bafkreib7kaadp5mh4cdtubejwomaxuf2t54jgbzbrt3boqpxrclykv5qjy'].map((v) => v ?? 'null'))
    expect(Buffer.from(await store.get(row.tiles[1]!)).toString('hex')).toBe(
      '28b52ffd600000bd0000407007730776076ba3050027a0f0c02203903190b10cb0',
    )
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
