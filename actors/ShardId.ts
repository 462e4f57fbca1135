/**
 * Addressing: which shard an entity lives on. `shard = murmur3_32(utf8(type) ++ 0x00 ++ utf8(id))
 * mod shardCount`, MurmurHash3 x86 32-bit with seed 0 — a published, stable function that any
 * process (or another language) computes the same way. Shards are numbered 0..shardCount-1 and
 * each one is one store partition, named by its decimal number.
 */

const encoder = new TextEncoder()

/** MurmurHash3 (x86, 32-bit) of `bytes` with `seed`, as an unsigned integer. */
export const murmur3 = (bytes: Uint8Array, seed = 0): number => {
  const c1 = 0xcc9e2d51
  const c2 = 0x1b873593
  let h = seed >>> 0
  const blocks = bytes.length & ~3
  for (let i = 0; i < blocks; i += 4) {
    let k = bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24)
    k = Math.imul(k, c1)
    k = (k << 15) | (k >>> 17)
    k = Math.imul(k, c2)
    h ^= k
    h = (h << 13) | (h >>> 19)
    h = (Math.imul(h, 5) + 0xe6546b64) | 0
  }
  const tail = bytes.length & 3
  if (tail > 0) {
    let k = 0
    if (tail === 3) k ^= bytes[blocks + 2]! << 16
    if (tail >= 2) k ^= bytes[blocks + 1]! << 8
    k ^= bytes[blocks]!
    k = Math.imul(k, c1)
    k = (k << 15) | (k >>> 17)
    k = Math.imul(k, c2)
    h ^= k
  }
  h ^= bytes.length
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** The shard of entity `id` of type `type` among `shardCount` shards. */
export const shardOf = (type: string, id: string, shardCount: number): number =>
  murmur3(encoder.encode(`${type}\u0000${id}`)) % shardCount

/** The store partition that holds a shard's data. */
export const partitionOf = (shard: number): string => String(shard)
