/**
 * The stable hash that places a document on a partition: 32-bit FNV-1a over the UTF-8 bytes of
 * the document id. Stable across processes, versions and platforms (no seed, no host byte
 * order), which is the point: a document must land on the same partition forever.
 */
import { utf8 } from "./codec.js"

const OFFSET_BASIS = 0x811c9dc5
const PRIME = 0x01000193

/** 32-bit FNV-1a of the UTF-8 bytes of `text`, as an unsigned integer. */
export const fnv1a32 = (text: string): number => {
  let hash = OFFSET_BASIS
  for (const byte of utf8(text)) {
    hash ^= byte
    hash = Math.imul(hash, PRIME)
  }
  return hash >>> 0
}
