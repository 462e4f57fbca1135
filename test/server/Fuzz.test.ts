/**
 * Goal: no request, however malformed, makes the node answer 5xx, crash, or write part of a
 * refused request.
 * Method: 4,000 seeded random requests (seed logged) — truncated and corrupted JSON, random
 * bytes, type-confused fields, huge and non-finite numbers, deep nesting, odd methods and paths,
 * bad percent-encoding, oversized bodies — with 16 in flight. Every request that targets the
 * sentinel feeds is invalid by construction (one bad item among good ones, or a bad body), so
 * those feeds must still not exist afterwards; the node must still serve a valid append.
 */
import { strict as assert } from "node:assert"
import { afterAll, beforeAll, describe, it } from "vitest"
import { call, startNode, type TestNode } from "./support.js"
import { random } from "../support/random.js"

describe("HTTP fuzz", () => {
  let node: TestNode
  beforeAll(async () => {
    node = await startNode({ bodyLimitBytes: 64 * 1024 })
  })
  afterAll(async () => {
    await node.close()
  })

  it("answers thousands of malformed requests with 4xx only, writes nothing of them, and keeps serving", async () => {
    const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000)
    console.log(`HTTP fuzz seed ${seed}; rerun with FUZZ_SEED=${seed}`)
    const next = random(seed)
    const pick = <T>(values: ReadonlyArray<T>): T => values[Math.floor(next() * values.length)]!
    // Invalid as a nonce and (but for 1.5) as a timestamp; null is not here: it means "absent".
    const badValues: ReadonlyArray<unknown> = [
      "1e999", "-1", "1.5", "\"abc\"", "[]", "{}", "true", "\"-5\"", "\"0x10\"", "340282366920938463463374607431768211456", "\"\"", "9".repeat(400)
    ]
    const goodItem = () => `{"value":${pick(["1", "\"x\"", "{\"a\":[1,2]}", "null"])}}`
    const badItem = () =>
      pick([
        `{"value":1,"nonce":${pick(badValues)}}`,
        // 1.5 ms is a fine timestamp; 2^128 ms is past any date JavaScript can hold.
        `{"value":1,"timestamp":${pick(badValues.filter((value) => value !== "1.5"))}}`,
        "{\"nonce\":1}",
        "17",
        "\"item\"",
        "[1,2]"
      ])
    const sentinelBody = () => {
      // Good items around one bad one: the whole request must be refused.
      const items = Array.from({ length: 1 + Math.floor(next() * 4) }, goodItem)
      items.splice(Math.floor(next() * (items.length + 1)), 0, badItem())
      return `{"items":[${items.join(",")}]}`
    }
    const corrupt = (text: string) => {
      const cut = Math.floor(next() * text.length)
      return pick([text.slice(0, cut), text.slice(0, cut) + "\u0000" + text.slice(cut), text.replace(/[{}[\]]/, ""), text + "}"])
    }
    const garbage = () => Buffer.from(Array.from({ length: Math.floor(next() * 200) }, () => Math.floor(next() * 256))).toString("latin1")
    const deep = () => "[".repeat(5_000) + "]".repeat(5_000)
    const paths = [
      "/v1/feeds/sentinel-%d/append", "/v1/feeds/sentinel-%d/entries", "/v1/feeds/sentinel-%d/entries/%n", "/v1/feeds/sentinel-%d",
      "/v1/feeds", "/v1/entities/feed/sentinel-%d/ask", "/v1/entities/%x/%x/ask", "/v1/feeds/%E0%A4%A/append", "/v1/feeds//append",
      `/v1/feeds/${"y".repeat(600)}/append`, "/v1/%x", "/%x", "/v1/feeds/sentinel-%d/entries?limit=%q&offset=%q&timestamp=%q",
      "/v1/feeds/sentinel-%d/entries?cursor=%x&nonce=%q", "/v1/zsets/%x/add", "/v1/indexes/%x/search?q=%x"
    ]
    const fill = (path: string) =>
      path
        .replace(/%d/g, () => String(Math.floor(next() * 5)))
        .replace(/%n/g, () => pick(["0", "-1", "1.5", "abc", "99999999999999999999", "1"]))
        .replace(/%q/g, () => encodeURIComponent(pick(["", "NaN", "1e999", "-3", "abc", "5", "[]"])))
        .replace(/%x/g, () => encodeURIComponent(garbage().slice(0, 30)) || "x")
    const request = () => {
      if (next() < 0.45) {
        // Aimed at the append route's validation: right method and path, wrong content.
        const body = pick([sentinelBody, sentinelBody, () => corrupt(sentinelBody()), () => `{"items":${pick(["1", "\"x\"", "{}", "null", "[" + "1,".repeat(1_001) + "1]"])}}`])()
        return { method: "POST", path: `/v1/feeds/sentinel-${Math.floor(next() * 5)}/append`, body }
      }
      const method = pick(["GET", "POST", "POST", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
      const path = fill(pick(paths))
      const body = method === "GET" || method === "DELETE" ? undefined : pick([
        sentinelBody, () => corrupt(sentinelBody()), garbage, deep, () => "{\"items\":" + garbage() + "}",
        () => `{"message":${pick(["1", "{}", "{\"_tag\":\"Append\",\"payload\":{\"items\":\"no\"}}", garbage()])}}`,
        () => "x".repeat(70 * 1024)
      ])()
      return { method, path, body }
    }
    const statuses = new Map<number, number>()
    let sent = 0
    const worker = async () => {
      while (sent < 4_000) {
        sent++
        const { method, path, body } = request()
        const answer = await call(node.base, method, path, body)
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1)
        assert.ok(answer.status < 500, `${method} ${path} ${String(body).slice(0, 200)} answered ${answer.status}: ${answer.text.slice(0, 300)}`)
        if (answer.status >= 400) assert.equal(typeof answer.body?.error?.code, "string", `error body of ${method} ${path}: ${answer.text.slice(0, 200)}`)
      }
    }
    await Promise.all(Array.from({ length: 16 }, worker))
    console.log(`statuses: ${JSON.stringify(Object.fromEntries(statuses))}`)
    for (let i = 0; i < 5; i++) {
      const sentinel = await call(node.base, "GET", `/v1/feeds/sentinel-${i}`)
      assert.equal(sentinel.status, 404, `sentinel-${i} was written: ${sentinel.text}`)
    }
    assert.equal((await call(node.base, "GET", "/health")).status, 200)
    const valid = await call(node.base, "POST", "/v1/feeds/after-fuzz/append", { items: [{ value: "still serving" }] })
    assert.equal(valid.status, 200)
  }, 120_000)
})
