/** Tessera's public API: the image facade and the typed errors. */

export * from './car/index.js'
export { DecodePool } from './crop/decode-pool.js'
export * from './dataset/index.js'
export * from './errors.js'
export * from './image.js'
export * from './sample.js'
export * from './stream/index.js'
