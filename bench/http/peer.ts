/**
 * The peer of `npm run bench:http`: a sharp-based IIIF server, the `iiif-processor` package
 * (Samvera's node-iiif) behind a minimal node:http wrapper, serving one tiled TIFF, plus a
 * raw/png crop route done with sharp directly, so that it answers the same requests as Tessera.
 *
 *   node --import tsx bench/http/peer.ts --tiff FILE --port N
 *
 * iiif-processor reads its source as a stream, which sharp buffers whole before decoding
 * (the benchmark TIFF is hundreds of MB, per request). A file-based deployment points libvips
 * at the file instead, so that only the tiles under the region are read: the wrapper takes
 * iiif-processor's pipeline (its parsing, page choice, region and size arithmetic) and sets
 * the pipeline's input to the file. The sharp used is iiif-processor's own.
 */
import { createServer } from 'node:http'
import { createRequire } from 'node:module'
import { parseArgs } from 'node:util'
import { Processor } from 'iiif-processor'

const { values } = parseArgs({ options: { tiff: { type: 'string' }, port: { type: 'string', default: '0' } } })
const tiff = values.tiff!
const require = createRequire(createRequire(import.meta.url).resolve('iiif-processor'))
const sharp = require('sharp') as typeof import('sharp').default

// The pages of a pyramidal TIFF (page 0 = full resolution), read once.
const first = await sharp(tiff, { limitInputPixels: false }).metadata()
const dims: Array<{ width: number; height: number }> = []
for (let page = 0; page < (first.pages ?? 1); page++) {
  const meta = await sharp(tiff, { page, limitInputPixels: false }).metadata()
  dims.push({ width: meta.width!, height: meta.height! })
}

const MAX = { width: 8192, height: 8192, area: 2 ** 24 }

/** Runs iiif-processor's pipeline for an image request against the file. */
async function iiif(url: string): Promise<{ status: number; type: string; body: Buffer | string }> {
  const processor = new Processor(
    url,
    async () => {
      throw new Error('not used: the pipeline reads the file')
    },
    { dimensionFunction: async () => dims, max: MAX },
  )
  if (processor.info !== undefined && processor.filename === 'info.json') {
    const info = await processor.infoJson()
    return { status: 200, type: info.contentType, body: info.body as string }
  }
  const pipeline = processor.operations(dims).pipeline() as unknown as {
    options: { input: Record<string, unknown> }
    toBuffer(): Promise<Buffer>
  }
  // sharp reads `input.file` when set, and treats an input with a `buffer` array as a stream.
  pipeline.options.input.file = tiff
  delete pipeline.options.input.buffer
  const body = await pipeline.toBuffer()
  const type =
    { jpg: 'image/jpeg', png: 'image/png', webp: 'image/webp', tif: 'image/tiff' }[processor.format] ?? 'application/octet-stream'
  return { status: 200, type, body }
}

/** A region of page 0 as raw samples or PNG, with sharp. */
async function crop(params: URLSearchParams): Promise<{ status: number; type: string; body: Buffer }> {
  const [left, top, width, height] = (params.get('region') ?? '').split(',').map(Number) as [number, number, number, number]
  const image = sharp(tiff, { limitInputPixels: false }).extract({ left, top, width, height })
  if (params.get('format') === 'png') return { status: 200, type: 'image/png', body: await image.png().toBuffer() }
  return { status: 200, type: 'application/octet-stream', body: await image.raw().toBuffer() }
}

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', `http://${req.headers.host ?? 'localhost'}`)
  const work = url.pathname === '/crop' ? crop(url.searchParams) : iiif(url.toString())
  work.then(
    ({ status, type, body }) => {
      res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) })
      res.end(body)
    },
    (error: { statusCode?: number; message?: string }) => {
      res.writeHead(error.statusCode ?? 500, { 'content-type': 'text/plain' })
      res.end(String(error.message))
    },
  )
})
server.listen(Number(values.port), '127.0.0.1', () => {
  const address = server.address() as { port: number }
  process.stdout.write(`listening http://127.0.0.1:${address.port} (${dims.length} page(s))\n`)
})
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => server.close(() => process.exit(0)))
