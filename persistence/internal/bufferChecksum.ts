/**
 * CRC-32C (Castagnoli), table driven and sliced by 8, for the frames of the persistent buffer.
 *
 * Why this one: CRC-32C detects every burst error up to 32 bits (a torn write is a burst) and is
 * what LevelDB and ext4 use. Measured on this machine over 108-byte frames: 1.15 GB/s sliced by 8,
 * 0.49 GB/s byte by byte, and 0.47 GB/s for the native `zlib.crc32` of Node ≥ 20.15, whose call
 * overhead dominates at this size (it is 5 GB/s on 1 MiB, but frames are small, and it is
 * missing from older Node 20 releases). It does not try to be a cryptographic hash.
 */

const POLYNOMIAL = 0x82f63b78
const SLICES = 8

/** 8 tables of 256 entries: table k maps a byte to its CRC contribution k bytes further on. */
const TABLE: Int32Array = (() => {
  const table = new Int32Array(256 * SLICES)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLYNOMIAL : c >>> 1
    table[n] = c
  }
  for (let n = 0; n < 256; n++) {
    let c = table[n]!
    for (let slice = 1; slice < SLICES; slice++) {
      c = table[c & 0xff]! ^ (c >>> 8)
      table[slice * 256 + n] = c
    }
  }
  return table
})()

/** The CRC-32C of `bytes[start, end)`, as an unsigned 32-bit integer. */
export const crc32c = (bytes: Uint8Array, start: number, end: number): number => {
  const t = TABLE
  let crc = -1
  let i = start
  const end8 = end - ((end - start) & 7)
  // Eight bytes per round: the first four fold into the running CRC, the next four are looked up
  // directly; the `!` reads are safe because every index is below `end`.
  while (i < end8) {
    const word = (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24)) ^ crc
    crc = t[1792 + (word & 0xff)]! ^ t[1536 + ((word >>> 8) & 0xff)]! ^ t[1280 + ((word >>> 16) & 0xff)]! ^
      t[1024 + (word >>> 24)]! ^ t[768 + bytes[i + 4]!]! ^ t[512 + bytes[i + 5]!]! ^ t[256 + bytes[i + 6]!]! ^
      t[bytes[i + 7]!]!
    i += 8
  }
  while (i < end) {
    crc = t[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8)
    i++
  }
  return ~crc >>> 0
}
