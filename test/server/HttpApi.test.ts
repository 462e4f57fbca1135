/**
 * Goal: the node serves HTTP API v1 exactly as `shared/HTTP-API.md` writes it — feeds, errors and
 * their statuses, auth, limits, the entity ask route, metrics, dump and restore.
 * Method: a real node (LevelDB in a temp dir) on a free loopback port, driven with fetch; each
 * answer's status, shape and error code checked against the contract.
 */
import { strict as assert } from "node:assert"
import { afterAll, beforeAll, describe, it } from "vitest"
import { call, callVerbatim, startNode, type TestNode } from "./support.js"

describe("HTTP API v1", () => {
  let node: TestNode
  beforeAll(async () => {
    node = await startNode()
  })
  afterAll(async () => {
    await node.close()
  })

  it("answers health and the cluster of one worker owning every shard", async () => {
    const health = await call(node.base, "GET", "/health")
    assert.deepEqual(health.body, { status: "ok", worker: "node-1" })
    const cluster = await call(node.base, "GET", "/v1/cluster")
    assert.equal(cluster.body.shardCount, 16)
    assert.equal(cluster.body.workers.length, 1)
    assert.deepEqual(Object.keys(cluster.body.workers[0]).sort(), ["address", "id", "lastSeen", "shards", "weight"])
    assert.deepEqual(cluster.body.owners, new Array(16).fill("node-1"))
    assert.equal(cluster.body.epochs.length, 16)
    assert.ok(cluster.body.epochs.every((epoch: unknown) => typeof epoch === "number" && epoch >= 1), "each shard's epoch")
  })

  it("addresses names \".\" and \"..\" as names, not as path steps", async () => {
    for (const [encoded, name] of [["%2E", "."], ["%2E%2E", ".."], [".%2e", ".."]] as const) {
      const append = await callVerbatim(node.base, "POST", `/v1/feeds/${encoded}/append`, { items: [{ value: name }] })
      assert.equal(append.status, 200, `append to ${name}`)
      const page = await callVerbatim(node.base, "GET", `/v1/feeds/${encoded}/entries`)
      assert.deepEqual(page.body.items.map((item: { value: string }) => item.value), name === ".." && encoded === ".%2e" ? ["..", ".."] : [name])
      assert.equal((await callVerbatim(node.base, "GET", `/v1/feeds/${encoded}`)).body.feed, name)
    }
    await callVerbatim(node.base, "POST", "/v1/zsets/dots/add", { members: [{ member: ".", score: 2 }] })
    assert.deepEqual((await callVerbatim(node.base, "GET", "/v1/zsets/dots/score/%2E")).body, { score: 2 })
  })

  it("takes 512-byte names everywhere, two of them in one request included", async () => {
    const name = (letter: string) => letter.repeat(512)
    const index = encodeURIComponent(name("i"))
    const doc = encodeURIComponent(name("d"))
    assert.equal((await call(node.base, "PUT", `/v1/indexes/${index}/docs/${doc}`, { t: "hello" })).status, 200)
    assert.deepEqual((await call(node.base, "GET", `/v1/indexes/${index}/docs/${doc}`)).body, { t: "hello" })
    assert.equal((await call(node.base, "GET", `/v1/indexes/${index}/search?q=hello`)).body.hits[0].id, name("d"))
    const key = encodeURIComponent(name("k"))
    assert.deepEqual((await call(node.base, "POST", `/v1/zsets/${key}/add`, { members: [{ member: name("m"), score: 1 }] })).body, { count: 1 })
    assert.deepEqual((await call(node.base, "GET", `/v1/zsets/${key}/score/${encodeURIComponent(name("m"))}`)).body, { score: 1 })
    const feed = encodeURIComponent(name("f"))
    assert.equal((await call(node.base, "POST", `/v1/feeds/${feed}/append`, { items: [{ value: 1 }] })).status, 200)
    assert.equal((await call(node.base, "POST", `/v1/feeds/${feed}x/append`, { items: [{ value: 1 }] })).status, 400, "513 bytes")
  })

  it("appends, pages, gets, removes and deletes feeds with the contract's shapes", async () => {
    const append = await call(node.base, "POST", "/v1/feeds/match%2F1/append", {
      items: [{ value: { goal: 1 }, nonce: 1, timestamp: 1_000 }, { value: "two", nonce: "2" }, { value: 3, nonce: 1 }]
    })
    assert.equal(append.status, 200)
    assert.equal(append.body.results.length, 3)
    assert.deepEqual(append.body.results[0], { offset: 1, timestamp: 1_000 })
    assert.equal(append.body.results[1].offset, 2)
    assert.deepEqual(append.body.results[2], { duplicate: true })
    const page = await call(node.base, "GET", "/v1/feeds/match%2F1/entries?limit=1")
    assert.deepEqual(page.body.items, [{ offset: 1, timestamp: 1_000, nonce: "1", value: { goal: 1 } }])
    assert.equal(typeof page.body.cursor, "string")
    const next = await call(node.base, "GET", `/v1/feeds/match%2F1/entries?cursor=${page.body.cursor}`)
    assert.deepEqual(next.body.items.map((item: { offset: number }) => item.offset), [2])
    const tail = await call(node.base, "GET", `/v1/feeds/match%2F1/entries?cursor=${next.body.cursor}`)
    assert.deepEqual(tail.body, { items: [], cursor: null })
    const backward = await call(node.base, "GET", "/v1/feeds/match%2F1/entries?order=backward&nonce=1")
    assert.deepEqual(backward.body.items.map((item: { offset: number }) => item.offset), [1])
    assert.equal((await call(node.base, "GET", "/v1/feeds/match%2F1/entries/2")).body.value, "two")
    assert.equal((await call(node.base, "GET", "/v1/feeds/match%2F1/entries/9")).status, 404)
    const metadata = await call(node.base, "GET", "/v1/feeds/match%2F1")
    assert.deepEqual(Object.keys(metadata.body).sort(), ["bytes", "count", "feed", "firstOffset", "lastNonce", "lastOffset", "maxTimestamp", "minTimestamp"])
    assert.equal(metadata.body.feed, "match/1")
    assert.equal(metadata.body.lastNonce, "2")
    assert.deepEqual((await call(node.base, "DELETE", "/v1/feeds/match%2F1/entries/1")).body, { removed: true })
    assert.deepEqual((await call(node.base, "DELETE", "/v1/feeds/match%2F1/entries/1")).body, { removed: false })
    const listed = await call(node.base, "GET", "/v1/feeds?prefix=match%2F")
    assert.deepEqual(listed.body, { feeds: ["match/1"], cursor: null })
    assert.deepEqual((await call(node.base, "DELETE", "/v1/feeds/match%2F1")).body, { deleted: true })
    assert.equal((await call(node.base, "GET", "/v1/feeds/match%2F1")).status, 404)
  })

  it("keeps a nonce above 2^53 sent as a JSON number exact", async () => {
    const big = "340282366920938463463374607431768211455"
    const append = await call(node.base, "POST", "/v1/feeds/big-nonce/append", `{"items":[{"value":1,"nonce":${big}}]}`)
    assert.equal(append.status, 200)
    assert.equal((await call(node.base, "GET", "/v1/feeds/big-nonce")).body.lastNonce, big)
    const over = await call(node.base, "POST", "/v1/feeds/big-nonce/append", `{"items":[{"value":1,"nonce":${big}0}]}`)
    assert.equal(over.status, 400)
    assert.equal(over.body.error.field, "items[0].nonce")
    assert.match(over.body.error.message, /at most 2\^128-1/)
    // An exponent form is the same number: a duplicate of an earlier nonce, a new one above it.
    const written = await call(node.base, "POST", "/v1/feeds/exp-nonce/append", `{"items":[{"value":1,"nonce":1e20},{"value":2,"nonce":100000000000000000000},{"value":3,"nonce":1.00000000000000000001e20}]}`)
    assert.equal(written.status, 200, written.text)
    assert.deepEqual(written.body.results.map((result: { duplicate?: boolean }) => result.duplicate === true), [false, true, false])
    const fraction = await call(node.base, "POST", "/v1/feeds/exp-nonce/append", `{"items":[{"value":4,"nonce":2.5}]}`)
    assert.equal(fraction.status, 400)
    assert.equal(fraction.body.error.field, "items[0].nonce")
  })

  it("answers bad requests with the contract's statuses and error bodies", async () => {
    const cases: Array<[string, string, unknown, number, string, string?]> = [
      ["POST", "/v1/feeds/f/append", "{not json", 400, "MalformedJson"],
      ["POST", "/v1/feeds/f/append", { items: [] }, 400, "InvalidArgument", "items"],
      ["POST", "/v1/feeds/f/append", { items: [{ nonce: 1 }] }, 400, "InvalidArgument", "items[0].value"],
      ["POST", "/v1/feeds/f/append", { items: [{ value: 1, timestamp: "soon" }] }, 400, "InvalidArgument", "items[0].timestamp"],
      ["POST", "/v1/feeds/f/append", "{\"items\":[{\"value\":1,\"timestamp\":1e999}]}", 400, "InvalidArgument", "items[0].timestamp"],
      ["GET", "/v1/feeds/f/entries?limit=0", undefined, 400, "InvalidArgument", "limit"],
      ["GET", "/v1/feeds/f/entries?limit=ten", undefined, 400, "InvalidArgument", "limit"],
      ["GET", "/v1/feeds/f/entries?offset=1&nonce=2", undefined, 400, "InvalidArgument", "nonce"],
      ["GET", "/v1/feeds/f/entries?cursor=AAAA", undefined, 400, "InvalidCursor", "cursor"],
      ["GET", "/v1/feeds/f/entries/abc", undefined, 400, "InvalidArgument", "offset"],
      ["GET", `/v1/feeds/${"x".repeat(513)}`, undefined, 400, "InvalidArgument", "feed"],
      ["GET", "/v1/feeds/%E0%A4%A", undefined, 400, "InvalidArgument", "feed"],
      ["POST", "/v1/feeds//append", { items: [{ value: 1 }] }, 400, "InvalidArgument", "feed"],
      ["GET", "/v1/feeds//entries", undefined, 400, "InvalidArgument", "feed"],
      ["GET", "/v1/nothing", undefined, 404, "NotFound"],
      ["PATCH", "/v1/feeds/f", undefined, 405, "MethodNotAllowed"],
      ["POST", "/v1/entities/nope/1/ask", { message: { _tag: "X" } }, 404, "UnknownEntityType"],
      ["POST", "/v1/entities/feed/f/ask", { message: { _tag: "Nope" } }, 400, "InvalidArgument", "message._tag"],
      ["POST", "/v1/feeds/a%00b/append", { items: [{ value: 1 }] }, 400, "InvalidArgument", "feed"]
    ]
    for (const [method, path, body, status, code, field] of cases) {
      const answer = await call(node.base, method, path, body)
      assert.equal(answer.status, status, `${method} ${path}: ${answer.text}`)
      assert.equal(answer.body.error.code, code, `${method} ${path}`)
      assert.equal(typeof answer.body.error.message, "string")
      if (field !== undefined) assert.equal(answer.body.error.field, field, `${method} ${path}`)
    }
    const old = await call(node.base, "POST", "/v1/feeds/clock/append", { items: [{ value: 1, timestamp: 5_000 }] })
    assert.equal(old.status, 200)
    const stale = await call(node.base, "POST", "/v1/feeds/clock/append", { items: [{ value: 2, timestamp: 4_000 }] })
    assert.equal(stale.status, 409)
    assert.equal(stale.body.error.code, "TimestampTooOld")
    const allow = await call(node.base, "PUT", "/v1/feeds/f/append", {})
    assert.equal(allow.headers.get("allow"), "POST")
  })

  it("refuses a body over the limit with 413 and writes nothing", async () => {
    const huge = { items: [{ value: "x".repeat(1024 * 1024) }] }
    const answer = await call(node.base, "POST", "/v1/feeds/huge/append", huge)
    assert.equal(answer.status, 413)
    assert.equal(answer.body.error.code, "PayloadTooLarge")
    assert.equal((await call(node.base, "GET", "/v1/feeds/huge")).status, 404)
  })

  it("keeps __proto__ and constructor keys as plain data", async () => {
    const value = JSON.parse("{\"__proto__\":{\"polluted\":true},\"constructor\":{\"prototype\":{\"polluted\":true}}}")
    const answer = await call(node.base, "POST", "/v1/feeds/proto/append", { items: [{ value }] })
    assert.equal(answer.status, 200)
    const read = await call(node.base, "GET", "/v1/feeds/proto/entries/1")
    assert.equal(JSON.stringify(read.body.value), JSON.stringify(value))
    assert.equal(({} as { polluted?: boolean }).polluted, undefined)
  })

  it("asks any registered entity type through the generic route", async () => {
    await call(node.base, "POST", "/v1/feeds/via-ask/append", { items: [{ value: 7 }] })
    const answer = await call(node.base, "POST", "/v1/entities/feed/via-ask/ask", { message: { _tag: "Metadata" } })
    assert.equal(answer.status, 200)
    assert.equal(answer.body.reply.count, 1)
    const declared = await call(node.base, "POST", "/v1/entities/feed/missing/ask", { message: { _tag: "Metadata" } })
    assert.equal(declared.status, 404)
    assert.equal(declared.body.error.code, "FeedNotFound")
    // A message only the type's own code sends (a purge of a deleted generation) is refused.
    const purge = await call(node.base, "POST", "/v1/entities/feed/via-ask/ask", { message: { _tag: "Purge", payload: { generation: 1 } } })
    assert.equal(purge.status, 400)
    assert.equal(purge.body.error.field, "message._tag")
    assert.equal((await call(node.base, "GET", "/v1/feeds/via-ask/entries")).body.items.length, 1, "the entry is still there")
    const partition = await call(node.base, "POST", "/v1/entities/search/0:idx/ask", { message: { _tag: "Partition", payload: { definition: {}, request: {} } } })
    assert.equal(partition.status, 400, "a search partition trusts the definition its index sends: not open to asks")
    const batch = await call(node.base, "POST", "/v1/entities/zset/z/ask", { message: { _tag: "Batch", payload: { requests: [{ _tag: "Card" }] } } })
    assert.equal(batch.status, 400, "a zset batch is the coalescing client's, not one caller's")
  })

  it("exports Prometheus metrics for requests, entities, commits and the store", async () => {
    const metrics = await call(node.base, "GET", "/metrics")
    assert.equal(metrics.status, 200)
    for (const name of ["shardfeed_http_requests_total", "shardfeed_http_request_seconds", "shardfeed_entity_messages_total",
      "shardfeed_entity_handler_seconds", "shardfeed_entities_active", "shardfeed_commits_total", "shardfeed_store_operation_seconds"]) {
      assert.ok(metrics.text.includes(name), `metrics include ${name}`)
    }
  })
})

describe("HTTP auth", () => {
  let node: TestNode
  beforeAll(async () => {
    node = await startNode({ token: "s3cret" })
  })
  afterAll(async () => {
    await node.close()
  })

  it("needs the token on every route but /health, as a bearer token or a basic password", async () => {
    assert.equal((await call(node.base, "GET", "/health")).status, 200)
    const refused = await call(node.base, "GET", "/v1/cluster")
    assert.equal(refused.status, 401)
    assert.equal(refused.body.error.code, "Unauthorized")
    assert.equal((await call(node.base, "GET", "/v1/cluster", undefined, { authorization: "Bearer wrong" })).status, 401)
    assert.equal((await call(node.base, "GET", "/v1/cluster", undefined, { authorization: "Bearer s3cret" })).status, 200)
    assert.equal((await call(node.base, "GET", "/v1/cluster", undefined, { authorization: "bearer s3cret" })).status, 200, "the scheme in any case")
    const basic = `Basic ${Buffer.from("anyone:s3cret").toString("base64")}`
    assert.equal((await call(node.base, "GET", "/v1/cluster", undefined, { authorization: basic })).status, 200)
    const dashboard = await call(node.base, "GET", "/dashboard")
    assert.equal(dashboard.status, 401)
    assert.match(dashboard.headers.get("www-authenticate") ?? "", /^Basic/)
    assert.equal((await call(node.base, "GET", "/nowhere")).status, 401, "unknown routes are not probed without the token")
  })

  it("refuses to bind beyond loopback without a token", async () => {
    await assert.rejects(startNode({ host: "0.0.0.0" }), /refusing to listen on 0\.0\.0\.0 without a token/)
  })
})
