/** CAR interchange (spec/dataset.md §10): the library API. */
export { type CarExportOptions, exportCar } from './export.js'
export { type CarImportOptions, type CarImportResult, importCar } from './import.js'
