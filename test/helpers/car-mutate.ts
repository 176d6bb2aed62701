/**
 * A structure-aware mutation of a CAR for the fuzzers (test/car/fuzz.ts, test/stream/fuzz.ts):
 * one dag-cbor block (a manifest, an index block, a dataset node or version) is mutated as bytes,
 * and then the CAR is made consistent again: the block gets the CID of its new bytes, every
 * block that linked to the old CID links to the new one (and so gets a new CID too, up to the
 * root) and the header names the new root. A byte mutation alone is caught by the first hash
 * check; this one reaches the decoders of manifests and indexes with bytes whose hashes hold.
 */
import { varint } from 'multiformats'
import { carHeader } from '../../src/car/export.js'
import { CID, cidOf, DAG_CBOR } from '../../src/format/block.js'
import { readVarint } from '../../src/stream/car-sniff.js'
import { type FuzzInput, mutate } from './fuzz.js'

interface Section {
  cid: CID
  bytes: Uint8Array
}

/** The root and the sections of a CARv1 with one root, as `car export` writes it. */
function parseCar(car: Uint8Array): { root: CID; sections: Section[] } {
  const header = readVarint(car, 0)!
  let at = header.bytes + header.value
  const sections: Section[] = []
  while (at < car.length) {
    const { value: length, bytes: prefix } = readVarint(car, at)!
    const start = at + prefix
    const cid = CID.decodeFirst(car.subarray(start, start + length))[0]
    const cidLength = cid.bytes.length
    sections.push({ cid, bytes: car.slice(start + cidLength, start + length) })
    at = start + length
  }
  // The first section is the root in `car export` order.
  return { root: sections[0]!.cid, sections }
}

function writeCar(root: CID, sections: readonly Section[]): Uint8Array {
  const parts: Uint8Array[] = [carHeader(root)]
  for (const { cid, bytes } of sections) {
    const length = cid.bytes.length + bytes.length
    parts.push(varint.encodeTo(length, new Uint8Array(varint.encodingLength(length))), cid.bytes, bytes)
  }
  return new Uint8Array(Buffer.concat(parts))
}

function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  return Buffer.from(haystack.buffer, haystack.byteOffset, haystack.length).indexOf(needle)
}

/**
 * `car` with one of its dag-cbor blocks mutated (chosen by `next`, mutated as input `i` of `seed`
 * by the shared mutator) and its links, CIDs and header rewritten to match; see the module comment.
 */
export function mutateCarBlock(car: Uint8Array, name: string, seed: number, i: number, next: () => number): FuzzInput {
  const { root, sections } = parseCar(car)
  const structural = sections.filter((s) => s.cid.code === DAG_CBOR)
  const target = structural[Math.floor(next() * structural.length)]!
  const mutated = mutate([{ name, bytes: target.bytes, hot: [[0, target.bytes.length]] }], seed, i)
  // Old CID -> new, bottom up: a changed block changes every block that links to it.
  const renamed = new Map<string, CID>()
  const rename = (section: Section, bytes: Uint8Array) => {
    const cid = cidOf(section.cid.code, bytes)
    const old = section.cid.toString()
    // A mutation that undid itself leaves the block, and what links to it, as they were.
    if (cid.toString() !== old) renamed.set(old, cid)
    section.cid = cid
    section.bytes = bytes
  }
  const copies = sections.map((s) => ({ ...s }))
  rename(copies[sections.indexOf(target)]!, mutated.bytes)
  for (let changed = true; changed; ) {
    changed = false
    for (const section of copies) {
      if (section.cid.code !== DAG_CBOR) continue
      for (const [old, cid] of renamed) {
        const oldBytes = CID.parse(old).bytes
        const at = indexOf(section.bytes, oldBytes)
        if (at < 0) continue
        const bytes = section.bytes.slice()
        for (let from = at; from >= 0; from = indexOf(bytes, oldBytes)) bytes.set(cid.bytes, from)
        rename(section, bytes)
        changed = true
      }
    }
  }
  const newRoot = renamed.get(root.toString()) ?? root
  return { seed: name, ops: [`block ${target.cid}`, ...mutated.ops, 'rehashed'], bytes: writeCar(newRoot, copies) }
}
