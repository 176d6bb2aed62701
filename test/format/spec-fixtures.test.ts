/**
 * spec/format.md §14-15 as a test: the worked example imported by the reference writer gives
 * exactly the CIDs the spec prints. A change here is a format change: update the spec with it.
 */
import { createHash } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { importImage, openImage } from '../../src/image.js'
import { MemoryBlockStore } from '../../src/store/memory.js'

it('reproduces the worked example of spec/format.md byte for byte', async () => {
  const pixels = new Uint8Array(300 * 200 * 3)
  for (let y = 0; y < 200; y++) {
    for (let x = 0; x < 300; x++) {
      const at = (y * 300 + x) * 3
      pixels[at] = x % 256
      pixels[at + 1] = y % 256
      pixels[at + 2] = (x ^ y) % 256
    }
  }
  expect(createHash('sha256').update(pixels).digest('hex')).toBe('6180391463e6c30f06c251dd01a64a018de3fbf79245f971f5fbc81441f67835')
  const dir = await mkdtemp(join(tmpdir(), 'tessera-spec-'))
  try {
    const path = join(dir, 'example.ppm')
    await writeFile(path, Buffer.concat([Buffer.from('P6\n300 200\n255\n'), pixels]))
    const store = new MemoryBlockStore()
    const { cid } = await importImage(store, path, { tileSize: 256, pyramid: true, workers: 0 })
    expect(cid.toString()).toBe('bafyreic2z6zbeskovvtptgzwuxn46msb2hanxtkf2x6grohsw43fk3vysm')
    const image = await openImage(store, cid)
    expect(image.manifest.levels.map((level) => level.rows.map(String))).toEqual([
      ['bafyreif36lnrpisspuyjr4nyvsldubprmzpxzed2j4aqfliz675fettouy'],
      ['bafyreibwtk2m5gpam3enatohbfbi2dx6274d4mhjidvecb754tzljtfrua'],
    ])
    const level0 = await image.reader.tileRow(0, 0)
    const level1 = await image.reader.tileRow(1, 0)
    expect([...level0.tiles, ...level1.tiles].map(String)).toEqual([
      'bafkreiaufuoxxemn2ucfpfr27kqtqwsvkuet6yjqeeu3djynic5swesf2u',
      'bafkreihpchtp7bkpjgbitwqlszprha7hugqfarfklbtvsmummrp4txi2da',
      'bafkreihjhby24emmg7fxpa4dxxfed5izlxn3yexzpl64rxbongqytzpzqq',
    ])
    expect([...level0.lengths, ...level1.lengths]).toEqual([7491, 2788, 3470])
    expect(store.blocks.size).toBe(6)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
