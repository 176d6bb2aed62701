/**
 * CRC-32 (ISO 3309, reflected polynomial 0xEDB88320) as PNG chunks need it (PNG spec, section
 * 5.5 and Annex D). Written here because `zlib.crc32` only arrived in Node 22 and Tessera
 * supports Node 20. Slicing-by-4 tables: about 550 MB/s against 290 MB/s for the one-table
 * loop, which matters for 'none' compression, where every pixel byte passes through it.
 */

const TABLES = makeTables()

function makeTables(): Uint32Array[] {
  const tables = [0, 1, 2, 3].map(() => new Uint32Array(256))
  const [t0, t1, t2, t3] = tables as [Uint32Array, Uint32Array, Uint32Array, Uint32Array]
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    t0[n] = c >>> 0
  }
  for (let n = 0; n < 256; n++) {
    t1[n] = (t0[t0[n]! & 0xff]! ^ (t0[n]! >>> 8)) >>> 0
    t2[n] = (t0[t1[n]! & 0xff]! ^ (t1[n]! >>> 8)) >>> 0
    t3[n] = (t0[t2[n]! & 0xff]! ^ (t2[n]! >>> 8)) >>> 0
  }
  return tables
}

/** Continues a CRC-32 over `data` (start with `crc` = 0); returns the unsigned CRC so far. */
export function crc32(data: Uint8Array, crc = 0): number {
  const [t0, t1, t2, t3] = TABLES as [Uint32Array, Uint32Array, Uint32Array, Uint32Array]
  let c = ~crc
  let i = 0
  const end4 = data.length - (data.length % 4)
  for (; i < end4; i += 4) {
    c ^= data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24)
    c = t3[c & 0xff]! ^ t2[(c >>> 8) & 0xff]! ^ t1[(c >>> 16) & 0xff]! ^ t0[c >>> 24]!
  }
  for (; i < data.length; i++) c = t0[(c ^ data[i]!) & 0xff]! ^ (c >>> 8)
  return ~c >>> 0
}
