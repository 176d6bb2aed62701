// The peer for import: sharp (libvips) converting an image to a tiled deflate TIFF with the
// same tile size and predictor, as a user would to make an image croppable.
import sharp from 'sharp'

const [input, output, tile = '256'] = process.argv.slice(2)
await sharp(input, { limitInputPixels: false })
  .tiff({ tile: true, tileWidth: Number(tile), tileHeight: Number(tile), compression: 'deflate', predictor: 'horizontal', bigtiff: true })
  .toFile(output)
