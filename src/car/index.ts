/** CAR interchange (spec/dataset.md §10): the library API. */
export { type CarExportOptions, type CarOptions, type CarPart, type CarPlan, exportCar, planCar } from './export.js'
export { type CarImportOptions, type CarImportResult, importCar } from './import.js'
