/**
 * A PNG's integrity, checked apart from its decoding: libpng decodes around some damage with
 * only a warning (a zlib error or a wrong Adler-32 in IDAT, extra image data, a chunk whose CRC
 * fails), which sharp's failOn 'warning' lets through, and libvips then makes up the pixels.
 * Written by hand because no decoder that reports these reliably is at hand: sharp's warnings
 * go to a process-wide queue that whichever pipeline ends next empties.
 *
 * One sequential read: every chunk's CRC (PNG 3rd ed. §5.3), and IDAT's zlib stream inflated to
 * nowhere, which must end exactly at the image data size IHDR implies. Runs on libuv's threads
 * (zlib) while libvips decodes the same file.
 */
import { open } from 'node:fs/promises'
import { crc32, createInflate } from 'node:zlib'
import { CorruptInputError } from '../../errors.js'
import { fullCollection } from '../../threads.js'

/** Bytes read at a time. */
const READ_BYTES = 1 << 20
/** Inflated bytes between two collections. */
const COLLECT_BYTES = 8 << 20
let collect: (() => void) | undefined
const CHANNELS: Readonly<Record<number, number>> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }
/** Adam7: [x0, y0, dx, dy] of each pass. */
const PASSES = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
] as const

/** Bytes of filtered scanlines a PNG of this header holds (filter bytes included). */
export function pngDataBytes(width: number, height: number, bitDepth: number, colorType: number, interlaced: boolean): number {
  const bitsPerPixel = (CHANNELS[colorType] ?? 1) * bitDepth
  const rows = (w: number, h: number) => (w === 0 || h === 0 ? 0 : h * (1 + Math.ceil((w * bitsPerPixel) / 8)))
  if (!interlaced) return rows(width, height)
  let total = 0
  for (const [x0, y0, dx, dy] of PASSES) total += rows(Math.ceil((width - x0) / dx), Math.ceil((height - y0) / dy))
  return total
}

/**
 * Throws CorruptInputError when the PNG at `path` (its signature already seen) has a chunk whose
 * CRC fails, or image data that does not inflate, cleanly, to the size its header implies.
 */
export async function checkPng(path: string | Uint8Array, signal?: AbortSignal): Promise<void> {
  const handle = await open(typeof path === 'string' ? path : Buffer.from(path), 'r')
  const inflate = createInflate({ chunkSize: 1 << 20 })
  let inflated = 0
  let collected = 0
  inflate.on('data', (piece: Buffer) => {
    inflated += piece.length
    // The output is garbage as it comes, 1 MiB at a time: collected every 8 MiB rather than at
    // V8's own 64 MiB trigger, which put 12-30 MiB on an import's peak RSS (bench/README.md).
    if (inflated - collected >= COLLECT_BYTES) {
      collected = inflated
      collect ??= fullCollection()
      collect()
    }
  })
  const ended = new Promise<void>((resolve, reject) => {
    inflate.on('end', resolve)
    inflate.on('error', (error) => reject(new CorruptInputError(`PNG image data does not inflate: ${error.message}`)))
  })
  ended.catch(() => undefined)
  // A window over the file, refilled as parsing moves on: chunks are often 8 KiB (libpng's
  // default IDAT size), too small to read one by one.
  let window = Buffer.alloc(0)
  let windowAt = 8
  let position = 8
  const read = async (length: number): Promise<Buffer> => {
    if (position + length > windowAt + window.length) {
      const keep = window.subarray(position - windowAt)
      const fresh = Buffer.allocUnsafe(Math.max(READ_BYTES, length))
      const { bytesRead } = await handle.read(fresh, 0, fresh.length, windowAt + window.length)
      window = Buffer.concat([keep, fresh.subarray(0, bytesRead)])
      windowAt = position
      if (window.length < length) throw new CorruptInputError(`PNG ends at byte ${position + window.length} inside a chunk (truncated?)`)
    }
    const bytes = window.subarray(position - windowAt, position - windowAt + length)
    position += length
    return bytes
  }
  let pending: Buffer[] = []
  let pendingBytes = 0
  const flush = async (): Promise<void> => {
    // A copy (concat) or a subarray of a window: windows are never reused, so zlib may keep it.
    const data = pending.length === 1 ? pending[0]! : Buffer.concat(pending)
    pending = []
    pendingBytes = 0
    if (data.length > 0 && !inflate.destroyed) await written(inflate, data)
  }
  try {
    let expected: number | undefined
    for (;;) {
      signal?.throwIfAborted()
      const head = await read(8)
      const length = head.readUInt32BE(0)
      const type = head.toString('latin1', 4, 8)
      // Every pixel is in by IEND: a file cut inside it loses nothing (libpng does not read it either).
      if (type === 'IEND') break
      let crc = crc32(head.subarray(4, 8))
      for (let left = length; left > 0; ) {
        const piece = await read(Math.min(left, READ_BYTES))
        crc = crc32(piece, crc)
        if (type === 'IHDR' && expected === undefined && piece.length >= 13) {
          expected = pngDataBytes(piece.readUInt32BE(0), piece.readUInt32BE(4), piece[8]!, piece[9]!, piece[12] === 1)
        }
        if (type === 'IDAT') {
          // Gathered into writes of 1 MiB or more: each write is a job on libuv's pool.
          pending.push(piece)
          pendingBytes += piece.length
          if (pendingBytes >= READ_BYTES) await flush()
        }
        left -= piece.length
      }
      if ((await read(4)).readUInt32BE(0) !== crc >>> 0) throw new CorruptInputError(`PNG ${type} chunk fails its CRC (corrupt)`)
    }
    await flush()
    inflate.end()
    await ended
    if (inflated !== expected) {
      throw new CorruptInputError(`PNG image data inflates to ${inflated} bytes; its header implies ${expected ?? 'no IHDR'}`)
    }
  } finally {
    inflate.destroy()
    await handle.close()
  }
}

/** Writes `data` and waits until zlib has inflated it (one piece in flight bounds the memory); rejects once it fails. */
function written(inflate: ReturnType<typeof createInflate>, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(new CorruptInputError(`PNG image data does not inflate: ${error.message}`))
    inflate.once('error', onError)
    inflate.write(data, (error) => {
      inflate.off('error', onError)
      if (error) onError(error)
      else resolve()
    })
  })
}
