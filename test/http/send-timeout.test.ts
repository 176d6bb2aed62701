/**
 * The kernel's table of TCP connections as the send timeout reads it (src/http/send-timeout.ts):
 * tx_queue by port pair, from Linux's layout for IPv4 and IPv6, and from this machine's own table.
 */
import { readFileSync } from 'node:fs'
import { connect, createServer, type Socket } from 'node:net'
import { describe, expect, it } from 'vitest'
import { parseTcpTable } from '../../src/http/send-timeout.js'

const HEADER = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n'
const pair = (local: number, remote: number) => local * 65536 + remote

describe('parseTcpTable', () => {
  it('reads tx_queue by port pair from IPv4 and IPv6 lines, sl of any width', () => {
    const table = parseTcpTable(
      HEADER +
        '   0: 0100007F:444D 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3930442 1 00000000b3503099 100 0 0 10 0\n' +
        '   1: 0100007F:1F90 0100007F:C350 01 0003A000:00000000 01:00000014 00000000  1000        0 3930539 1 0000000080ae33aa 20 4 30 10 -1\n' +
        '10000: 00000000000000000000000001000000:1F91 00000000000000000000000001000000:D431 01 00000FFF:00000000 00:00000000 00000000  1000        0 1 1 0 20 4 30 10 -1\n',
    )
    expect(table.get(pair(0x444d, 0))).toBe(0)
    expect(table.get(pair(0x1f90, 0xc350))).toBe(0x3a000)
    expect(table.get(pair(0x1f91, 0xd431))).toBe(0xfff)
    expect(table.size).toBe(3)
  })

  it('marks ports two connections share, and skips lines it cannot read', () => {
    const line = (queue: string) => `   2: 0100007F:1F90 0100007F:C350 01 ${queue}:00000000 00:00000000 00000000 0 0 1 1 0 20 4 30 10 -1\n`
    const table = parseTcpTable(
      `${HEADER}${line('00000010')}${line('00000020')}   3: garbage\n\n   4: 0100007F:1F90 0100007F:ZZZZ 01 00000001:0`,
    )
    expect(table.get(pair(0x1f90, 0xc350))).toBeNaN()
    expect(table.size).toBe(1)
    expect(parseTcpTable('').size).toBe(0)
  })

  it.runIf(process.platform === 'linux')('finds a live loopback connection in this machine’s table', async () => {
    const server = createServer(() => {})
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as { port: number }).port
    const client = await new Promise<Socket>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => resolve(socket))
    })
    try {
      const table = parseTcpTable(readFileSync('/proc/self/net/tcp', 'latin1'))
      expect(table.get(pair(client.localPort!, port))).toBe(0)
      expect(table.get(pair(port, client.localPort!))).toBe(0)
    } finally {
      client.destroy()
      server.close()
    }
  })
})
