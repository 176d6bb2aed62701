/**
 * A closed-loop HTTP load generator whose connections are open before the clock starts:
 * `connections` keep-alive sockets, each sending its next request when the last response has
 * ended, for `duration` seconds. Latency is from writing a request to the end of its response.
 *
 * Why not autocannon here: it opens its connections when the measurement starts, and on these
 * machines a burst of 64 connections to a busy server completes its handshakes over seconds
 * (measured with a plain node:http server too: 32 accepted at once, then one every ~250 ms),
 * so the first requests of the late connections, ~2% of a run, set the p99. Here a warm-up
 * round (one request per connection, all at once) opens them first.
 */
import { Agent, request } from 'node:http'
import { quantile } from '../lib.js'

export interface LoadResult {
  readonly requests: number
  readonly perSecond: number
  readonly p50: number
  readonly p99: number
  readonly max: number
  readonly failed: number
  readonly bytes: number
}

export interface LoadOptions {
  readonly base: string
  readonly connections: number
  /** Seconds of measurement. */
  readonly duration: number
  /** The path of each request, in the order they are sent. */
  readonly path: () => string
  /** The warm-up requests' path (default: `path`). */
  readonly warmPath?: () => string
}

function get(agent: Agent, url: string): Promise<{ status: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent }, (res) => {
      let bytes = 0
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

/** Runs the load (see the module comment). */
export async function load(options: LoadOptions): Promise<LoadResult> {
  const { base, connections } = options
  const agent = new Agent({ keepAlive: true, maxSockets: connections, maxFreeSockets: connections })
  try {
    const warm = options.warmPath ?? options.path
    await Promise.all(Array.from({ length: connections }, () => get(agent, `${base}${warm()}`)))
    const latencies: number[] = []
    let failed = 0
    let bytes = 0
    const start = performance.now()
    const end = start + options.duration * 1000
    await Promise.all(
      Array.from({ length: connections }, async () => {
        while (performance.now() < end) {
          const t = performance.now()
          try {
            const response = await get(agent, `${base}${options.path()}`)
            if (response.status >= 400) failed++
            bytes += response.bytes
          } catch {
            failed++
          }
          latencies.push(performance.now() - t)
        }
      }),
    )
    const seconds = (performance.now() - start) / 1000
    latencies.sort((a, b) => a - b)
    return {
      requests: latencies.length,
      perSecond: latencies.length / seconds,
      p50: quantile(latencies, 0.5),
      p99: quantile(latencies, 0.99),
      max: latencies.at(-1) ?? 0,
      failed,
      bytes,
    }
  } finally {
    agent.destroy()
  }
}
