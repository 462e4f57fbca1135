/**
 * Goal: a nonce's stored bytes are minimal big-endian and read back to the same nonce, on both the
 * number fast paths (up to 2^53-1 written, 48 bits read) and the BigInt paths, and keep order.
 * Method: the boundaries of every path and seeded random nonces of every byte length, checked
 * against a plain BigInt reference; byte order is compared with nonce order.
 */
import { strict as assert } from "node:assert"
import { describe, it } from "vitest"
import * as Nonce from "../../src/feed/internal/nonce.js"
import { random } from "../support/random.js"

/** The minimal big-endian bytes of a nonce, from its hexadecimal digits (not the code's arithmetic). */
const reference = (nonce: bigint): Array<number> => {
  const hex = nonce.toString(16)
  const even = hex.length % 2 === 0 ? hex : `0${hex}`
  return Array.from({ length: even.length / 2 }, (_, i) => parseInt(even.slice(2 * i, 2 * i + 2), 16))
}

describe("nonce bytes", () => {
  it("are minimal big-endian, read back exactly, and sort like the nonces of one length", () => {
    const nonces: Array<bigint> = [0n, 1n, 255n, 256n, 65_535n, 65_536n, 2n ** 48n - 1n, 2n ** 48n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 64n, Nonce.NONCE_MAX]
    const seed = Number(process.env.NONCE_SEED ?? Date.now() % 1_000_000)
    const uniform = random(seed)
    const next = () => Math.floor(uniform() * 2 ** 31)
    for (let bytes = 1; bytes <= 16; bytes++) {
      for (let i = 0; i < 50; i++) {
        let value = BigInt(1 + (next() % 255))
        for (let b = 1; b < bytes; b++) value = (value << 8n) | BigInt(next() % 256)
        nonces.push(value)
      }
    }
    for (const nonce of nonces) {
      const encoded = Nonce.toBytes(nonce)
      assert.deepEqual([...encoded], reference(nonce), `bytes of ${nonce} (NONCE_SEED=${seed})`)
      assert.equal(Nonce.fromBytes(encoded), nonce, `read back ${nonce} (NONCE_SEED=${seed})`)
      const framed = Uint8Array.from([9, ...encoded, 9])
      assert.equal(Nonce.fromBytes(framed, 1, encoded.length), nonce, `read inside a record ${nonce} (NONCE_SEED=${seed})`)
    }
    const sameLength = nonces.filter((nonce) => Nonce.toBytes(nonce).length === 6).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    for (let i = 1; i < sameLength.length; i++) {
      assert.ok(Buffer.compare(Nonce.toBytes(sameLength[i - 1]!), Nonce.toBytes(sameLength[i]!)) <= 0)
    }
  })
})
