/**
 * The send timeout (spec/http.md §8, `sendTimeout`): a response whose client takes none of its
 * bytes for that long is abandoned, and its connection closed.
 *
 * Why not the socket's idle timer (`res.setTimeout`): it outlives the response. When a client
 * sends its next request before node has seen the previous response finish (it reuses the socket
 * at once), node keeps that timer for the next response, whose preparation (an upload waiting for
 * its import turn) then counts as a stall: bench:soak saw an upload reset, once in ~240. This
 * watch belongs to one response, and counts only bytes that wait for the client.
 */

import { readFileSync } from 'node:fs'
import type { ServerResponse } from 'node:http'
import { Socket } from 'node:net'

/**
 * Destroys `res` when bytes of it have waited for its socket with none taken from one check to
 * the next, `timeout / 2` ms apart: a stalled client is dropped after half to all of `timeout`.
 * A response still being prepared has nothing waiting, and never times out here. A response
 * queued behind another on its connection (pipelined requests) is watched from when it gets
 * the socket.
 *
 * "Taken" is seen two ways. Node reports a write done when the kernel has taken all of it; but
 * once the socket's send buffer is full, the kernel takes more only when half of that buffer
 * has drained (Linux autotunes it up to 4 MiB), so a client reading 64 KiB/s shows no progress
 * for up to 32 s (bench:soak dropped such readers). Where the kernel tells (Linux), the bytes it
 * still holds unacknowledged for the connection shrinking counts as progress too.
 */
export function watchSend(res: ServerResponse, timeout: number): void {
  const socket = res.socket
  if (socket === null) {
    res.once('socket', () => watchSend(res, timeout))
    return
  }
  // fastify's inject() gives a response a stand-in socket with no client to wait for.
  if (!(socket instanceof Socket)) return
  /** Bytes the kernel took: what was written, less what still waits in the stream. */
  const taken = () => socket.bytesWritten - socket.writableLength
  let last = taken()
  let waiting = socket.writableLength > 0
  let unacknowledged: number | undefined
  const interval = Math.max(1, Math.ceil(timeout / 2))
  const timer = setInterval(() => {
    const now = taken()
    const stillWaiting = socket.writableLength > 0
    // Read only while bytes wait: a client that keeps up costs nothing here.
    const held = stillWaiting ? kernelHeld(socket, interval / 8) : undefined
    const acknowledged = held !== undefined && unacknowledged !== undefined && held < unacknowledged
    // Waiting at both checks with nothing taken in between: a whole interval of stall.
    if (waiting && stillWaiting && now === last && !acknowledged) res.destroy()
    last = now
    waiting = stillWaiting
    unacknowledged = held
  }, interval)
  timer.unref()
  res.once('close', () => clearInterval(timer))
}

/**
 * Bytes the kernel holds for `socket` that its peer has not acknowledged: the `tx_queue` of
 * Linux's /proc/net/tcp (or tcp6). Undefined elsewhere, or when the connection is not found
 * there exactly once (matched by its two ports). The table lists every socket of the system and
 * takes 5-12 ms to read with 200-2000 of them, so one reading younger than `maxAge` ms serves
 * every watch (a thousand stalled clients then cost a few reads per check interval, not one each).
 */
function kernelHeld(socket: Socket, maxAge: number): number | undefined {
  const { localPort, remotePort, remoteFamily } = socket
  if (localPort === undefined || remotePort === undefined) return undefined
  const path = remoteFamily === 'IPv6' ? '/proc/self/net/tcp6' : '/proc/self/net/tcp'
  let table = tables.get(path)
  if (table === undefined || performance.now() - table.at > maxAge) {
    table = { at: performance.now(), held: readTable(path) }
    tables.set(path, table)
  }
  const held = table.held?.get(`${localPort}:${remotePort}`)
  return held === undefined || Number.isNaN(held) ? undefined : held
}

const tables = new Map<string, { at: number; held: Map<string, number> | undefined }>()

/** tx_queue by "localPort:remotePort" (NaN where two connections share the ports), or undefined if unreadable. */
function readTable(path: string): Map<string, number> | undefined {
  let text: string
  try {
    text = readFileSync(path, 'latin1')
  } catch {
    return undefined
  }
  const held = new Map<string, number>()
  // "sl local_address rem_address st tx_queue:rx_queue ...", addresses as HEXADDR:HEXPORT.
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/)
    if (fields.length < 5 || !fields[1]!.includes(':') || !fields[2]!.includes(':')) continue
    const port = (address: string) => Number.parseInt(address.slice(address.lastIndexOf(':') + 1), 16)
    const key = `${port(fields[1]!)}:${port(fields[2]!)}`
    held.set(key, held.has(key) ? Number.NaN : Number.parseInt(fields[4]!.split(':')[0]!, 16))
  }
  return held
}
