import * as dagCbor from '@ipld/dag-cbor'
import { describe, expect, it } from 'vitest'
import { cborBlock, cidOf, DAG_CBOR, parseCid, RAW, rawBlock, verifyBlock } from '../../src/format/block.js'
import { decodeManifest, decodeTileRow, encodeManifest, encodeTileRow, type ImageManifest } from '../../src/format/manifest.js'

const tile = rawBlock(Uint8Array.of(1, 2, 3)).cid
const row = encodeTileRow({ tiles: [tile, tile], lengths: [3, 3] })

const manifest: ImageManifest = {
  tessera: 1,
  width: 300,
  height: 200,
  colorModel: 'rgb',
  channels: 3,
  bitsPerSample: 8,
  tileSize: 256,
  codec: { name: 'zstd', level: 3, predictor: 2 },
  levels: [{ width: 300, height: 200, rows: [row.cid] }],
  metadata: { source: { format: 'png', name: 'a.png' } },
}

describe('manifest', () => {
  it('round-trips a root and a tile row', () => {
    const root = encodeManifest(manifest)
    expect(root.cid.code).toBe(DAG_CBOR)
    expect(decodeManifest(root.bytes)).toEqual(manifest)
    expect(decodeTileRow(row.bytes, 2)).toEqual({ tiles: [tile, tile], lengths: [3, 3] })
  })

  it('is deterministic: same manifest, same CID', () => {
    expect(encodeManifest({ ...manifest }).cid.equals(encodeManifest(manifest).cid)).toBe(true)
  })

  const rejections: Array<[string, (m: Record<string, unknown>) => void]> = [
    [
      'an unknown version',
      (m) => {
        m.tessera = 3
      },
    ],
    [
      'a zero width',
      (m) => {
        m.width = 0
      },
    ],
    [
      'a fractional height',
      (m) => {
        m.height = 1.5
      },
    ],
    [
      'channels that disagree with the colour model',
      (m) => {
        m.channels = 4
      },
    ],
    [
      '12-bit samples',
      (m) => {
        m.bitsPerSample = 12
      },
    ],
    [
      'a tile size that is not a multiple of 16',
      (m) => {
        m.tileSize = 100
      },
    ],
    [
      'an unknown codec',
      (m) => {
        m.codec = { name: 'lz4', level: 1, predictor: 1 }
      },
    ],
    [
      'a level of the wrong size',
      (m) => {
        m.levels = [{ width: 10, height: 200, rows: [row.cid] }]
      },
    ],
    [
      'a level with a missing row',
      (m) => {
        m.levels = [{ width: 300, height: 200, rows: [] }]
      },
    ],
    [
      'a row link of the wrong codec',
      (m) => {
        m.levels = [{ width: 300, height: 200, rows: [tile] }]
      },
    ],
    [
      'a string where a map belongs',
      (m) => {
        m.metadata = 'x'
      },
    ],
  ]
  for (const [what, mutate] of rejections) {
    it(`rejects ${what} with ERR_INTEGRITY`, () => {
      const value = dagCbor.decode(encodeManifest(manifest).bytes) as Record<string, unknown>
      mutate(value)
      expect(() => decodeManifest(dagCbor.encode(value))).toThrow(expect.objectContaining({ code: 'ERR_INTEGRITY' }))
    })
  }

  it('rejects tile rows with the wrong number of tiles or bad lengths', () => {
    expect(() => decodeTileRow(row.bytes, 3)).toThrow(expect.objectContaining({ code: 'ERR_INTEGRITY' }))
    const bad = cborBlock({ tiles: [tile], lengths: [0] })
    expect(() => decodeTileRow(bad.bytes, 1)).toThrow(expect.objectContaining({ code: 'ERR_INTEGRITY' }))
    expect(() => decodeTileRow(Uint8Array.of(0xff), 1)).toThrow(expect.objectContaining({ code: 'ERR_INTEGRITY' }))
  })
})

describe('blocks', () => {
  it('address raw bytes by sha2-256 CIDv1', () => {
    expect(cidOf(RAW, new Uint8Array()).toString()).toBe('bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku')
  })

  it('detect a flipped bit', () => {
    const block = rawBlock(Uint8Array.of(1, 2, 3))
    expect(() => verifyBlock(block.cid, Uint8Array.of(1, 2, 2))).toThrow(expect.objectContaining({ code: 'ERR_INTEGRITY' }))
  })

  it('refuse manifest blocks over 1 MiB', () => {
    expect(() => cborBlock({ big: new Uint8Array(1 << 20) })).toThrow(expect.objectContaining({ code: 'ERR_LIMIT' }))
  })

  it('parse CIDs and reject garbage with ERR_INVALID_CID', () => {
    expect(parseCid(tile.toString()).equals(tile)).toBe(true)
    for (const bad of ['', 'hello', 'bafy', '../../etc/passwd', 'Q'.repeat(200)]) {
      expect(() => parseCid(bad)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_CID' }))
    }
  })
})
