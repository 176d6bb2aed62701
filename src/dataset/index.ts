/** Datasets (spec/dataset.md): the library API. */
export { datasetUsage, storeUsage, type Usage, UsageCounter } from './accounting.js'
export {
  commitChanges,
  type DatasetHead,
  datasetHead,
  history,
  listDatasets,
  listDirectory,
  loadVersion,
  pruneHistory,
  type Resolved,
  removeDataset,
  removeEntries,
  resolveImage,
  resolveSpecifier,
  type VersionRef,
} from './dataset.js'
export { type DatasetImportOptions, type DatasetImportResult, importDataset } from './import.js'
export type { DatasetEntry, DatasetVersion } from './interface.js'
export { collectGarbage, type GcResult, storeRoots, unpin, verifyAll, verifyRoots } from './maintenance.js'
export { isDatasetVersion, listEntries, type Removal, removeSpecifiers, resolveDataset, resolveRoot, verifySpecifier } from './resolve.js'
export { getEntry, iterateEntries, NodeCache } from './tree.js'
