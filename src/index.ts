/** Tessera's public API: the image facade and the typed errors. */
export * from './errors.js'
export * from './image.js'
export * from './sample.js'
export { DecodePool } from './crop/decode-pool.js'
