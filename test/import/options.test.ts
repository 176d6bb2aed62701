/** The one table of import defaults and its validator: defaults filled in, one rejection per rule. */
import { describe, expect, it } from 'vitest'
import { DEFAULT_MAX_DECODE_BYTES, DEFAULT_MAX_PIXELS } from '../../src/import/limits.js'
import {
  DATASET_DEFAULTS,
  DATASET_IMPORT_OPTIONS,
  type DatasetImportParameterOptions,
  datasetImportParameters,
  IMPORT_OPTIONS,
  importParameters,
} from '../../src/import/options.js'

describe('importParameters', () => {
  it('fills in the defaults of the table', () => {
    expect(importParameters({})).toEqual({
      tileSize: 256,
      codec: { name: 'zstd', level: 3, predictor: 2 },
      pyramid: false,
      maxPixels: DEFAULT_MAX_PIXELS,
      maxTempBytes: undefined,
      maxDecodeBytes: DEFAULT_MAX_DECODE_BYTES,
      workers: undefined,
    })
    expect(IMPORT_OPTIONS.tileSize.default).toBe(256)
  })

  it('keeps the values given', () => {
    const options = {
      tileSize: 64,
      zstdLevel: 19,
      predictor: 1,
      pyramid: true,
      maxPixels: 100,
      maxTempBytes: 5,
      maxDecodeBytes: 7,
      workers: 0,
    } as const
    expect(importParameters(options)).toEqual({
      tileSize: 64,
      codec: { name: 'zstd', level: 19, predictor: 1 },
      pyramid: true,
      maxPixels: 100,
      maxTempBytes: 5,
      maxDecodeBytes: 7,
      workers: 0,
    })
  })

  it('takes auto for the level and the predictor (chosen per image, import/codec-choice.ts)', () => {
    expect(importParameters({ zstdLevel: 'auto', predictor: 'auto' }).codec).toEqual({ name: 'zstd', level: 'auto', predictor: 'auto' })
    expect(() => importParameters({ zstdLevel: 'fast' as 'auto' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }))
  })

  const rejected: Array<[string, DatasetImportParameterOptions]> = [
    ['a tile size not a multiple of 16', { tileSize: 100 }],
    ['a tile size below 16', { tileSize: 0 }],
    ['a tile size above 4096', { tileSize: 4112 }],
    ['a zstd level of 0', { zstdLevel: 0 }],
    ['a zstd level of 23', { zstdLevel: 23 }],
    ['a fractional zstd level', { zstdLevel: 2.5 }],
    ['predictor 3', { predictor: 3 as 1 }],
    ['-1 workers', { workers: -1 }],
    ['65 workers', { workers: 65 }],
    ['maxTempBytes 0', { maxTempBytes: 0 }],
    ['a fractional maxDecodeBytes', { maxDecodeBytes: 1.5 }],
  ]
  for (const [what, options] of rejected) {
    it(`rejects ${what} (both kinds of import)`, () => {
      expect(() => importParameters(options)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }))
      expect(() => datasetImportParameters(options)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }))
    })
  }
})

describe('datasetImportParameters', () => {
  it('adds the dataset defaults: files in parallel sharing one pool, smaller tiles, deltas; and says which it chose', () => {
    expect(datasetImportParameters({})).toMatchObject({
      tileSize: DATASET_DEFAULTS.tileSize,
      deltas: true,
      codec: { name: 'zstd', level: 'auto', predictor: 'auto' },
      defaulted: ['tileSize', 'deltas', 'zstdLevel', 'predictor'],
      jobs: 2,
      workers: undefined,
      checkpointFiles: 500,
      checkpointSeconds: 30,
    })
    expect(datasetImportParameters({ tileSize: 256, deltas: false, zstdLevel: 3, predictor: 2 })).toMatchObject({
      tileSize: 256,
      deltas: false,
      codec: { name: 'zstd', level: 3, predictor: 2 },
      defaulted: [],
    })
    expect(DATASET_IMPORT_OPTIONS.workers.default).toBe(undefined)
  })

  const rejected: Array<[string, DatasetImportParameterOptions]> = [
    ['0 jobs', { jobs: 0 }],
    ['a checkpoint every 0 files', { checkpointFiles: 0 }],
    ['a checkpoint every -1 seconds', { checkpointSeconds: -1 }],
    ['a fractional number of jobs', { jobs: 1.5 }],
  ]
  for (const [what, options] of rejected) {
    it(`rejects ${what}`, () => {
      expect(() => datasetImportParameters(options)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }))
    })
  }

  it('accepts a checkpoint every 0 seconds (after every file)', () => {
    expect(datasetImportParameters({ checkpointSeconds: 0 }).checkpointSeconds).toBe(0)
  })
})
