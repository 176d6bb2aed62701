/**
 * The options of an import: one table of defaults and ranges, one validator, read by the
 * importer, the dataset importer, `tessera import` and the HTTP upload route. The tile size,
 * zstd level, predictor and pyramid decide the tiles' CIDs (spec/format.md).
 */
import { InvalidArgumentError } from '../errors.js'
import { assertTileSize } from '../format/grid.js'
import { DEFAULT_MAX_DECODE_BYTES, DEFAULT_MAX_PIXELS } from './limits.js'

type Rule = { readonly default: number | undefined; readonly min: number; readonly max: number }

/** Options of every import (a tile size is also a multiple of 16; `workers` undefined: one per core, at most 8). */
export const IMPORT_OPTIONS = {
  tileSize: { default: 256, min: 16, max: 4096 },
  zstdLevel: { default: 3, min: 1, max: 22 },
  predictor: { default: 2, min: 1, max: 2 },
  maxPixels: { default: DEFAULT_MAX_PIXELS, min: 1, max: Number.POSITIVE_INFINITY },
  /** Largest temporary file (bytes); undefined: the temp dir's free space less a margin. */
  maxTempBytes: { default: undefined, min: 1, max: Number.POSITIVE_INFINITY },
  maxDecodeBytes: { default: DEFAULT_MAX_DECODE_BYTES, min: 1, max: Number.POSITIVE_INFINITY },
  workers: { default: undefined, min: 0, max: 64 },
} as const satisfies Record<string, Rule>

/**
 * Options of a dataset import beyond those: files at once, compression threads shared by all
 * of them (undefined: one per core, at most 8), checkpoints.
 */
export const DATASET_IMPORT_OPTIONS = {
  jobs: { default: 2, min: 1, max: Number.POSITIVE_INFINITY },
  workers: { default: undefined, min: 0, max: 64 },
  checkpointFiles: { default: 500, min: 1, max: Number.POSITIVE_INFINITY },
  checkpointSeconds: { default: 30, min: 0, max: Number.POSITIVE_INFINITY },
} as const satisfies Record<string, Rule>

/**
 * Defaults a dataset import takes where a single image takes IMPORT_OPTIONS': a dataset is
 * usually a series of similar images (screenshots, frames, scans), so its tiles are smaller
 * (more of them repeat exactly) and stored as deltas against the tile at the same place in
 * the images before (spec/format.md §6.1). Measured in bench/README.md#screenshot-archive.
 */
export const DATASET_DEFAULTS = {
  tileSize: 256,
  deltas: true,
  // Chosen per image from sample tiles (codec-choice.ts): screenshots take predictor 1 and
  // level 9 (13.7 against 18.4 MB for 400 of them), photographs keep predictor 2 and level 3.
  zstdLevel: 'auto',
  predictor: 'auto',
} as const

/** What `auto` chooses between, and how (import/codec-choice.ts). */
export const AUTO_CODEC = {
  /** Tile rows sampled when the whole image is at hand (first, middle, last; codec-choice.ts, sampleRows). */
  sampleRows: 3,
  /** Tiles of each sampled tile row compressed per predictor, spread evenly across it. */
  sampleColumns: 3,
  /** The level of the probe. */
  probeLevel: 1,
  /** A sample compressed by the probe to at most this fraction of its raw bytes is compressible. */
  compressibleRatio: 1 / 8,
  /** The level of compressible content. */
  compressibleLevel: 9,
  /** The level of other content. */
  level: 3,
} as const

/** A zstd level or predictor, or `auto`: chosen per image from its content (import/codec-choice.ts). */
export type Auto = 'auto'

/** The codec parameters of an import: each fixed, or chosen per image. */
export interface CodecSetting {
  readonly name: 'zstd'
  readonly level: number | Auto
  readonly predictor: 1 | 2 | Auto
}

/** The options importParameters reads (undefined: the default). */
export interface ImportParameterOptions {
  readonly tileSize?: number | undefined
  readonly zstdLevel?: number | Auto | undefined
  readonly predictor?: 1 | 2 | Auto | undefined
  readonly pyramid?: boolean | undefined
  readonly maxPixels?: number | undefined
  readonly maxTempBytes?: number | undefined
  readonly maxDecodeBytes?: number | undefined
  readonly workers?: number | undefined
}

/** `options` with the defaults of IMPORT_OPTIONS, validated before any file is read (InvalidArgumentError). */
export function importParameters(options: ImportParameterOptions) {
  const tileSize = options.tileSize ?? IMPORT_OPTIONS.tileSize.default
  assertTileSize(tileSize)
  const level = options.zstdLevel ?? IMPORT_OPTIONS.zstdLevel.default
  if (level !== 'auto' && !inRange(level, IMPORT_OPTIONS.zstdLevel))
    throw new InvalidArgumentError(`Expected a zstd level from 1 to 22 or auto but received ${String(level)}`)
  const predictor = options.predictor ?? IMPORT_OPTIONS.predictor.default
  if (predictor !== 1 && predictor !== 2 && predictor !== 'auto')
    throw new InvalidArgumentError(`Expected predictor 1, 2 or auto but received ${String(predictor)}`)
  const { workers } = options
  if (workers !== undefined && !inRange(workers, IMPORT_OPTIONS.workers))
    throw new InvalidArgumentError(`Expected 0 to 64 workers but received ${workers}`)
  const maxPixels = options.maxPixels ?? IMPORT_OPTIONS.maxPixels.default
  const { maxTempBytes } = options
  const maxDecodeBytes = options.maxDecodeBytes ?? IMPORT_OPTIONS.maxDecodeBytes.default
  for (const [name, value] of [
    ['maxTempBytes', maxTempBytes],
    ['maxDecodeBytes', maxDecodeBytes],
  ] as const) {
    if (value !== undefined && !isByteLimit(value))
      throw new InvalidArgumentError(`Expected positive integer for ${name} but received ${String(value)} of type ${typeof value}`)
  }
  const codec: CodecSetting = { name: 'zstd', level, predictor }
  return {
    tileSize,
    codec,
    pyramid: options.pyramid === true,
    maxPixels,
    maxTempBytes,
    maxDecodeBytes,
    workers,
  }
}

/** A byte limit: a positive safe integer, or Infinity for none. */
function isByteLimit(value: unknown): boolean {
  return typeof value === 'number' && (Number.isSafeInteger(value) || value === Number.POSITIVE_INFINITY) && value >= 1
}

/** The options datasetImportParameters reads. */
export interface DatasetImportParameterOptions extends ImportParameterOptions {
  readonly deltas?: boolean | undefined
  readonly jobs?: number | undefined
  readonly checkpointFiles?: number | undefined
  readonly checkpointSeconds?: number | undefined
}

/** `options` with the defaults of DATASET_IMPORT_OPTIONS, then of IMPORT_OPTIONS, validated (InvalidArgumentError). */
export function datasetImportParameters(options: DatasetImportParameterOptions) {
  const own = {
    jobs: options.jobs ?? DATASET_IMPORT_OPTIONS.jobs.default,
    checkpointFiles: options.checkpointFiles ?? DATASET_IMPORT_OPTIONS.checkpointFiles.default,
    checkpointSeconds: options.checkpointSeconds ?? DATASET_IMPORT_OPTIONS.checkpointSeconds.default,
  }
  for (const [name, n] of Object.entries(own)) {
    const rule = DATASET_IMPORT_OPTIONS[name as keyof typeof own]
    if (!inRange(n, rule)) throw new InvalidArgumentError(`Expected an integer >= ${rule.min} for ${name} but received ${n}`)
  }
  const workers = options.workers ?? DATASET_IMPORT_OPTIONS.workers.default
  const tileSize = options.tileSize ?? DATASET_DEFAULTS.tileSize
  const deltas = options.deltas ?? DATASET_DEFAULTS.deltas
  const zstdLevel = options.zstdLevel ?? DATASET_DEFAULTS.zstdLevel
  const predictor = options.predictor ?? DATASET_DEFAULTS.predictor
  // What the import chose for the caller, to say so (`tessera import --dataset` prints it).
  const defaulted = (Object.keys(DATASET_DEFAULTS) as Array<keyof typeof DATASET_DEFAULTS>).filter((name) => options[name] === undefined)
  return { ...importParameters({ ...options, tileSize, zstdLevel, predictor, workers }), ...own, workers, deltas, defaulted }
}

function inRange(value: number, rule: Rule): boolean {
  return Number.isInteger(value) && value >= rule.min && value <= rule.max
}
