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
import type { ServerResponse } from 'node:http'
import { Socket } from 'node:net'

/**
 * Destroys `res` when bytes of it have waited for its socket with none taken from one check to
 * the next, `timeout / 2` ms apart: a stalled client is dropped after half to all of `timeout`.
 * A response still being prepared has nothing waiting, and never times out here. A response
 * queued behind another on its connection (pipelined requests) is watched from when it gets
 * the socket.
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
  const timer = setInterval(
    () => {
      const now = taken()
      const stillWaiting = socket.writableLength > 0
      // Waiting at both checks with nothing taken in between: a whole interval of stall.
      if (waiting && stillWaiting && now === last) res.destroy()
      last = now
      waiting = stillWaiting
    },
    Math.max(1, Math.ceil(timeout / 2)),
  )
  timer.unref()
  res.once('close', () => clearInterval(timer))
}
