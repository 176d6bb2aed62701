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
  // fastify sends again when a streamed body fails before its first byte (the error answer):
  // one watch is enough.
  if (watched.has(res)) return
  watched.add(res)
  if (res.socket === null) res.once('socket', (socket) => watchSocket(res, socket, timeout))
  else watchSocket(res, res.socket, timeout)
}

function watchSocket(res: ServerResponse, socket: unknown, timeout: number): void {
  // fastify's inject() gives a response a stand-in socket with no client to wait for.
  if (!(socket instanceof Socket)) return
  /** Bytes the kernel took: what was written, less what still waits in the stream. */
  const taken = () => socket.bytesWritten - socket.writableLength
  let last = taken()
  let waiting = socket.writableLength > 0
  let unacknowledged: number | undefined
  const interval = Math.max(1, Math.ceil(timeout / 2))
  const timer = setInterval(() => {
    // The bytes taken and the kernel's count are sampled together, in one turn: read apart, the
    // kernel taking more of the body between the two (its buffer refilled) looks like no
    // progress next to a higher tx_queue. (Reading the table on the thread pool did that: the
    // slow-reader test was cut 2 runs in 4 beside other suites.) Read only while bytes wait: a
    // client that keeps up costs nothing here.
    const now = taken()
    const stillWaiting = socket.writableLength > 0
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

const watched = new WeakSet<ServerResponse>()

/**
 * Bytes the kernel holds for `socket` that its peer has not acknowledged: the `tx_queue` of
 * Linux's /proc/net/tcp (or tcp6). Undefined elsewhere, or when the connection is not found
 * there exactly once (matched by its two ports). The table lists every socket of the system:
 * with 4000 connections (9000 lines) the kernel takes ~23 ms to write it, so one reading
 * younger than `maxAge` ms serves every watch (a thousand stalled clients then cost a few
 * reads per check interval, not one each), and it is parsed by position (parseTcpTable).
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
  const held = table.held?.get(portPair(localPort, remotePort))
  return held === undefined || Number.isNaN(held) ? undefined : held
}

const tables = new Map<string, { at: number; held: Map<number, number> | undefined }>()

function portPair(local: number, remote: number): number {
  return local * 65536 + remote
}

function readTable(path: string): Map<number, number> | undefined {
  try {
    return parseTcpTable(readFileSync(path, 'latin1'))
  } catch {
    return undefined
  }
}

/**
 * Linux's /proc/net/tcp or tcp6 as tx_queue by port pair (local * 65536 + remote; NaN where
 * two connections share the ports). Lines are "sl: LOCAL:PORT REMOTE:PORT ST TX:RX ...", the
 * addresses 8 (tcp) or 32 (tcp6) hex digits, ports 4, ST 2 and TX 8: found from the spaces
 * rather than split into fields, which took as long as the kernel's writing (2.5 us a line).
 */
export function parseTcpTable(text: string): Map<number, number> {
  const held = new Map<number, number>()
  for (let at = text.indexOf('\n') + 1; at > 0 && at < text.length; ) {
    const end = text.indexOf('\n', at)
    const lineEnd = end === -1 ? text.length : end
    const colon = text.indexOf(': ', at)
    const local = colon === -1 ? -1 : text.indexOf(' ', colon + 2)
    const remote = local === -1 ? -1 : text.indexOf(' ', local + 1)
    if (colon !== -1 && remote !== -1 && remote + 12 <= lineEnd) {
      const key = portPair(hex(text, local - 4, local), hex(text, remote - 4, remote))
      const queue = hex(text, remote + 4, remote + 12)
      if (!Number.isNaN(key) && !Number.isNaN(queue)) held.set(key, held.has(key) ? Number.NaN : queue)
    }
    at = lineEnd + 1
  }
  return held
}

/** The hex number text[start..end), or NaN if a character there is not a hex digit. */
function hex(text: string, start: number, end: number): number {
  let value = 0
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i)
    const digit = c >= 48 && c <= 57 ? c - 48 : c >= 65 && c <= 70 ? c - 55 : c >= 97 && c <= 102 ? c - 87 : -1
    if (digit < 0) return Number.NaN
    value = value * 16 + digit
  }
  return value
}
