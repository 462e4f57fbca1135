/**
 * Goal: request bodies keep nonces above 2^53 exact, whatever the whitespace around them, and
 * nothing else in a body changes.
 * Method: seeded random append bodies (nonces of 1 to 40 digits, JSON whitespace around the
 * colon, the word "nonce" inside string values and as a key of values) parsed by `Json.parse`;
 * every nonce of 16 digits or more must come back as its exact decimal string, every shorter
 * one as a number, and every value as written; a "nonce" key that is not an item's is left alone.
 */
import { strict as assert } from "node:assert"
import { describe, it } from "vitest"
import * as Json from "../../src/server/Json.js"
import { random } from "../support/random.js"

describe("request JSON", () => {
  it("quotes exactly the nonce literals of 16 digits or more", () => {
    const seed = Number(process.env.JSON_SEED ?? Date.now() % 1_000_000)
    const next = random(seed)
    const spaces = [" ", "\t", "\n", "\r\n", ""]
    const space = () => spaces[Math.floor(next() * spaces.length)]!
    for (let body = 0; body < 500; body++) {
      const expected: Array<{ nonce: string | number; value: unknown }> = []
      const items: Array<string> = []
      for (let i = 0; i < 1 + Math.floor(next() * 5); i++) {
        const digits = 1 + Math.floor(next() * 40)
        const nonce = String(1 + Math.floor(next() * 9)) + Array.from({ length: digits - 1 }, () => Math.floor(next() * 10)).join("")
        const value = next() < 0.5 ? `"nonce": ${nonce}` : { nonce: Number(nonce.slice(0, 10)), text: "\"nonce\":1234567890123456789" }
        items.push(`{"value":${JSON.stringify(value)},${space()}"nonce"${space()}:${space()}${nonce}${space()}}`)
        expected.push({ nonce: digits >= 16 ? nonce : Number(nonce), value })
      }
      const parsed = Json.parse(`{"items":[${items.join(",")}]}`) as { items: Array<{ nonce: unknown; value: unknown }> }
      assert.deepEqual(parsed.items, expected, `seed ${seed}, body ${body}`)
    }
  })

  it("keeps a nonce exact however its number is written, and leaves fractions to be refused", () => {
    const nonce = (literal: string) => (Json.parse(`{"items":[{"value":1,"nonce": ${literal}}]}`) as { items: Array<{ nonce: unknown }> }).items[0]!.nonce
    assert.equal(nonce("1e20"), "100000000000000000000")
    assert.equal(nonce("1E+20"), "100000000000000000000")
    assert.equal(nonce("12345678901234567.0"), "12345678901234567")
    assert.equal(nonce("1.2345678901234567e16"), "12345678901234567")
    assert.equal(nonce("1000000000000000000000e-2"), "10000000000000000000")
    assert.equal(nonce("340282366920938463463374607431768211455"), "340282366920938463463374607431768211455", "2^128-1")
    // Past 39 digits, above 2^128-1 whatever the digits: 40 of them, never computed.
    assert.equal(nonce("1e999999"), "1" + "0".repeat(39))
    // Short integers parse as numbers, exactly; fractions stay fractions (refused downstream).
    assert.equal(nonce("100e-2"), 1)
    assert.equal(nonce("0.5e1"), 5)
    assert.equal(nonce("1.5"), 1.5)
    assert.equal(nonce("5e-1"), 0.5)
    assert.equal(nonce("123"), 123)
  })

  it("quotes item nonces only: a \"nonce\" key elsewhere keeps its number", () => {
    const big = "12345678901234567890"
    const appended = Json.parse(`{"items":[{"value":{"nonce":${big},"deep":[{"nonce":${big}}]},"nonce":${big}}]}`) as {
      items: Array<{ nonce: unknown; value: { nonce: unknown; deep: Array<{ nonce: unknown }> } }>
    }
    assert.equal(appended.items[0]!.nonce, big)
    assert.equal(appended.items[0]!.value.nonce, Number(big))
    assert.equal(appended.items[0]!.value.deep[0]!.nonce, Number(big))
    // A message's payload (the ask and durable routes) is the other place item nonces are.
    const asked = Json.parse(`{"message":{"_tag":"Append","payload":{"items":[{"value":1,"nonce":${big}}]}}}`) as {
      message: { payload: { items: Array<{ nonce: unknown }> } }
    }
    assert.equal(asked.message.payload.items[0]!.nonce, big)
    // A search document, or an object that is not an item.
    assert.deepEqual(Json.parse(`{"nonce":${big},"t":"x"}`), { nonce: Number(big), t: "x" })
    assert.deepEqual(Json.parse(`{"items":{"nonce":${big}}}`), { items: { nonce: Number(big) } })
  })

  it("leaves bodies without long nonces as they are, and reports malformed JSON", () => {
    const text = "{\"items\":[{\"value\":\"nonce\",\"nonce\":123456789012345}]}"
    assert.equal(Json.quoteLongNonces(text), text)
    assert.ok(Json.parse("{\"items\":[") instanceof Json.MalformedJson)
  })
})
