// The server of one bench:window pass, in its own process so that the load generator does not
// share its event loop; the parent asks for the cache's counters over IPC. Plain JavaScript
// over the build (dist/).
import { createServer } from '../../dist/http/server.js'
import { openStore, TileCache } from '../../dist/image.js'

const [location, cached] = process.argv.slice(2)
const store = await openStore(location)
const tileCache = cached === 'cache' ? new TileCache() : undefined
const app = await createServer({ store, ...(tileCache ? { tileCache } : { tileCacheBytes: 0 }) })
await app.listen({ host: '127.0.0.1', port: 0 })
process.on('message', () => process.send({ stats: tileCache?.stats }))
process.send({ port: app.server.address().port })
