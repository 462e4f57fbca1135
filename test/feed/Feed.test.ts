/**
 * Goal: feeds under concurrency, at size, with bad input, retention, deletion and listing.
 * Method: real runtimes on the memory store and on LevelDB in temp directories; 50 concurrent
 * appenders checked entry by entry; a million-entry feed sought and paged while the heap is
 * measured; every bad input of the contract checked for its error, its field, and that nothing
 * was written.
 */
import { Effect, Fiber, Layer, Result, Schema } from "effect"
import { strict as assert } from "node:assert"
import { describe, it } from "vitest"
import { KeyValueStore } from "../../persistence/KeyValueStore.js"
import * as LevelStore from "../../persistence/LevelStore.js"
import * as MemoryStore from "../../persistence/MemoryStore.js"
import * as EntityClient from "../../actors/EntityClient.js"
import { EntityRuntime } from "../../actors/EntityRuntime.js"
import { Messenger } from "../../actors/Messenger.js"
import * as Feed from "../../src/feed/Feed.js"
import { tempDir } from "../support/tempDir.js"
import { feedNode } from "./support.js"
import { collectGarbage } from "../support/gc.js"

const run = <A, E>(layer: Layer.Layer<any, any>, effect: Effect.Effect<A, E, any>): Promise<A> =>
  Effect.runPromise(Effect.scoped(Effect.provide(effect, layer)) as Effect.Effect<A, E>)

const MatchEvent = Schema.Union([
  Schema.TaggedStruct("Goal", { minute: Schema.Number, player: Schema.String }),
  Schema.TaggedStruct("Card", { minute: Schema.Number, color: Schema.Literals(["yellow", "red"]) })
])
const MatchFeed = Feed.define("match-events", { entry: MatchEvent })
const Recent = Feed.define("recent", { entry: Schema.Number, retention: { maxEntries: 10 } })

const node = (stores: Layer.Layer<any, any> = MemoryStore.layer) =>
  Layer.mergeAll(Feed.layer(MatchFeed), Feed.layer(Recent)).pipe(Layer.provideMerge(feedNode(stores)))

const failureOf = <A, E>(effect: Effect.Effect<A, E, any>) =>
  Effect.map(Effect.result(effect), (result) => {
    if (Result.isSuccess(result)) throw new Error("expected a failure")
    return result.failure as E & { readonly _tag: string; readonly field?: string }
  })

describe("feeds", () => {
  it("keeps offsets increasing in acknowledgement order for 50 concurrent appenders, and loses no acknowledged entry", async () => {
    await run(node(), Effect.gen(function*() {
      const feeds = yield* Feed.client(Feed.Json)
      const clients = 50
      const perClient = 40
      // Each acknowledgement is numbered as it arrives, across all clients.
      let acknowledged = 0
      const acks = yield* Effect.forEach(Array.from({ length: clients }, (_, client) => client), (client) =>
        Effect.forEach(Array.from({ length: perClient }, (_, seq) => seq), (seq) =>
          Effect.map(
            feeds.append("shared", [{ value: { client, seq }, nonce: seq * clients + client + 1 }]),
            (results) => ({ client, seq, nonce: seq * clients + client + 1, result: results[0]!, arrival: acknowledged++ })
          ), { concurrency: 1 }), { concurrency: "unbounded" })
      const accepted = acks.flat().filter((ack) => "offset" in ack.result)
      const duplicates = acks.flat().filter((ack) => "duplicate" in ack.result)
      for (const ofClient of acks) {
        const offsets = ofClient.flatMap((ack) => ("offset" in ack.result ? [ack.result.offset] : []))
        assert.deepEqual(offsets, [...offsets].sort((a, b) => a - b), "one client's acknowledged offsets only grow")
      }
      const inArrivalOrder = [...accepted].sort((a, b) => a.arrival - b.arrival).map((ack) => (ack.result as { offset: number }).offset)
      for (let i = 1; i < inArrivalOrder.length; i++) {
        assert.ok(inArrivalOrder[i]! > inArrivalOrder[i - 1]!, `offsets strictly increase in acknowledgement order (${inArrivalOrder[i - 1]} then ${inArrivalOrder[i]})`)
      }
      const first = yield* feeds.page("shared", { limit: 1_000 })
      const rest = first.cursor === null ? { items: [] } : yield* feeds.page("shared", { limit: 1_000, cursor: first.cursor })
      const page = { items: [...first.items, ...rest.items] }
      assert.equal(page.items.length, accepted.length, "exactly the acknowledged entries are stored")
      const byOffset = new Map(page.items.map((item) => [item.offset, item]))
      for (const ack of accepted) {
        const offset = (ack.result as { offset: number }).offset
        assert.deepEqual(byOffset.get(offset)?.value, { client: ack.client, seq: ack.seq }, `entry at ${offset}`)
        assert.equal(byOffset.get(offset)?.nonce, String(ack.nonce))
      }
      const nonces = page.items.map((item) => BigInt(item.nonce!))
      assert.ok(nonces.every((nonce, i) => i === 0 || nonce > nonces[i - 1]!), "accepted nonces strictly increase with offsets")
      const storedNonces = new Set(page.items.map((item) => item.nonce))
      for (const ack of duplicates) assert.ok(!storedNonces.has(String(ack.nonce)), "a duplicate was not written")
    }))
  })

  it("coalesces appends that wait behind one in flight, each call keeping its own atomicity and outcome", async () => {
    await run(node(), Effect.gen(function*() {
      // A messenger that counts what it delivers, around the real one.
      const messenger = yield* Messenger
      const tags: Array<string> = []
      const counting = { deliver: (envelope: Parameters<typeof messenger.deliver>[0]) => (tags.push(envelope.tag), messenger.deliver(envelope)) }
      const feeds = yield* Feed.client(Feed.Json).pipe(Effect.provideService(Messenger, counting))
      const calls = Array.from({ length: 200 }, (_, k): ReadonlyArray<Feed.AppendItem<Schema.Json>> =>
        k === 50 ? [{ value: "fine" }, { value: (() => 1) as unknown as Schema.Json }] // a bad value: the whole call writes nothing
          : k === 120 ? [{ value: k, nonce: 1_000 + k, timestamp: 1 }] // older than what is there
          : k === 150 ? [{ value: k, nonce: 1_000 + 149 }] // the nonce of the call before: a duplicate
          : [{ value: k, nonce: 1_000 + k }, { value: `${k}b` }])
      const outcomes = yield* Effect.forEach(calls, (items) => Effect.result(feeds.append("hot", items)), { concurrency: "unbounded" })
      const bad = outcomes[50]!
      assert.ok(Result.isFailure(bad) && bad.failure._tag === "InvalidArgument" && (bad.failure as { field?: string }).field === "items[1].value", JSON.stringify(bad))
      const stale = outcomes[120]!
      assert.ok(Result.isFailure(stale) && stale.failure._tag === "TimestampTooOld" && stale.failure.field === "items[0].timestamp", JSON.stringify(stale))
      assert.deepEqual(outcomes[150], Result.succeed([{ duplicate: true }]))
      // The others are appended in call order, two entries each, with consecutive offsets.
      let expected = 1
      const values: Array<unknown> = []
      outcomes.forEach((outcome, k) => {
        if (k === 50 || k === 120 || k === 150) return
        assert.ok(Result.isSuccess(outcome), `call ${k}: ${JSON.stringify(outcome)}`)
        assert.deepEqual(outcome.success.map((result) => ("offset" in result ? result.offset : -1)), [expected, expected + 1], `call ${k}`)
        expected += 2
        values.push(k, `${k}b`)
      })
      const page = yield* feeds.page("hot", { limit: 1_000 })
      assert.deepEqual(page.items.map((item) => item.value), values)
      assert.ok(tags.includes("AppendBatches"), "waiting calls went together")
      assert.ok(tags.length <= 20, `200 calls took ${tags.length} messages`)

      // Waiting is bounded per feed: past it a call fails at once with MailboxFull, nothing written.
      const many = yield* Effect.forEach(Array.from({ length: 5_000 }, (_, k) => k), (k) => Effect.result(feeds.append("many", [{ value: k }])), { concurrency: "unbounded" })
      const full = many.filter((outcome) => Result.isFailure(outcome))
      assert.ok(full.length > 0 && full.every((outcome) => Result.isFailure(outcome) && outcome.failure._tag === "MailboxFull"), `${full.length} refused`)
      assert.equal((yield* feeds.metadata("many")).count, 5_000 - full.length)

      // A call interrupted while it waits is never sent.
      const first = yield* Effect.forkChild(feeds.append("quiet", [{ value: "first" }]))
      const waiting = yield* Effect.forkChild(feeds.append("quiet", [{ value: "interrupted" }]))
      yield* Effect.yieldNow
      yield* Fiber.interrupt(waiting)
      yield* Fiber.join(first)
      yield* feeds.append("quiet", [{ value: "last" }])
      assert.deepEqual((yield* feeds.page("quiet")).items.map((item) => item.value), ["first", "last"])
    }))
  })

  it("pages and seeks a 1,000,000-entry feed with bounded memory", async () => {
    const directory = tempDir("feed-million")
    await run(node(LevelStore.layer({ directory })), Effect.gen(function*() {
      const feeds = yield* Feed.client(Feed.Json)
      const total = 1_000_000
      const batch = 1_000
      for (let start = 0; start < total; start += batch * 10) {
        yield* Effect.forEach(Array.from({ length: 10 }, (_, i) => start + i * batch), (first) =>
          feeds.append("big", Array.from({ length: batch }, (_, i) => ({
            value: first + i,
            nonce: 10 * (first + i) + 5,
            timestamp: 1_000_000 + Math.floor((first + i) / 3)
          }))), { concurrency: 1, discard: true })
      }
      collectGarbage()
      const before = process.memoryUsage().heapUsed
      for (let probe = 0; probe < 200; probe++) {
        const target = Math.floor(((probe * 7_919) % total)) + 1
        const byTimestamp = yield* feeds.page("big", { timestamp: 1_000_000 + Math.floor((target - 1) / 3), limit: 100 })
        assert.equal(byTimestamp.items[0]!.offset, target - ((target - 1) % 3), "the first entry at that timestamp")
        const byNonce = yield* feeds.page("big", { nonce: String(10 * (target - 1) + 1), limit: 100, order: "backward" })
        // Nonces are 10 × (offset - 1) + 5: the last at or below 10 × (target - 1) + 1 is at target - 1.
        if (target >= 2) assert.equal(byNonce.items[0]!.offset, target - 1)
        else assert.equal(byNonce.items.length, 0)
        const byOffset = yield* feeds.page("big", { offset: target, limit: 100 })
        assert.deepEqual(byOffset.items.map((item) => item.value), Array.from({ length: Math.min(100, total - target + 1) }, (_, i) => target - 1 + i))
      }
      const forward = yield* feeds.page("big", { nonce: "5000005", limit: 3 })
      assert.deepEqual(forward.items.map((item) => item.offset), [500_001, 500_002, 500_003])
      const backward = yield* feeds.page("big", { nonce: "5000004", limit: 2, order: "backward" })
      assert.deepEqual(backward.items.map((item) => item.offset), [500_000, 499_999])
      const metadata = yield* feeds.metadata("big")
      assert.equal(metadata.count, total)
      collectGarbage()
      const growth = process.memoryUsage().heapUsed - before
      assert.ok(growth < 64 * 1024 * 1024, `heap grew by ${Math.round(growth / 1e6)} MB while paging`)
    }))
  }, 300_000)

  it("refuses a feed type whose limits or retention it cannot honour, naming the field", () => {
    assert.throws(() => Feed.define("huge", { entry: Schema.Number, limits: { recordEntriesMax: 70_000 } }), /limits\.recordEntriesMax must be an integer from 1 to 65535/)
    assert.throws(() => Feed.define("tiny", { entry: Schema.Number, limits: { compactRecordsMax: 1 } }), /limits\.compactRecordsMax/)
    assert.throws(() => Feed.define("nan", { entry: Schema.Number, limits: { recordBytesMax: Number.NaN } }), /limits\.recordBytesMax/)
    assert.doesNotThrow(() => Feed.define("fine", { entry: Schema.Number, limits: { recordEntriesMax: 65_535, compactRecordsMax: 2 } }))
    // A negative count would empty the feed, NaN would never trim: both are refused.
    assert.throws(() => Feed.define("negative", { entry: Schema.Number, retention: { maxEntries: -1 } }), /retention\.maxEntries must be a whole number from 1/)
    assert.throws(() => Feed.define("never", { entry: Schema.Number, retention: { maxAgeMillis: Number.NaN } }), /retention\.maxAgeMillis/)
    assert.doesNotThrow(() => Feed.define("kept", { entry: Schema.Number, retention: { maxEntries: 10, maxAgeMillis: 60_000 } }))
  })

  it("ends a page at its byte bound, with a cursor that goes on from there", async () => {
    const Large = Feed.define("large", { entry: Schema.String, limits: { pageBytesMax: 250 } })
    await run(Feed.layer(Large).pipe(Layer.provideMerge(feedNode(MemoryStore.layer))), Effect.gen(function*() {
      const feeds = yield* Feed.client(Large)
      // Each value is 100 bytes of JSON: a page ends with the entry that reaches 250 bytes.
      yield* feeds.append("big-values", Array.from({ length: 10 }, (_, i) => ({ value: String(i).padEnd(98, "x") })))
      const seen: Array<number> = []
      const sizes: Array<number> = []
      let cursor: string | undefined
      for (let pages = 0; pages < 10; pages++) {
        const page = yield* feeds.page("big-values", { limit: 10, ...(cursor === undefined ? {} : { cursor }) })
        if (page.items.length === 0) break
        sizes.push(page.items.length)
        for (const item of page.items) seen.push(item.offset)
        cursor = page.cursor!
      }
      assert.deepEqual(sizes, [3, 3, 3, 1])
      assert.deepEqual(seen, Array.from({ length: 10 }, (_, i) => i + 1))
      assert.equal((yield* feeds.page("big-values", { order: "backward", limit: 10 })).items.length, 3, "backward too")
    }))
    assert.throws(() => Feed.define("unbounded", { entry: Schema.String, limits: { pageBytesMax: 0 } }), /limits\.pageBytesMax/)
  })

  it("refuses every bad input with a typed error naming the field, and writes nothing", async () => {
    await run(node(), Effect.gen(function*() {
      const feeds = yield* Feed.client(Feed.Json)
      const matches = yield* Feed.client(MatchFeed)
      yield* feeds.append("f", [{ value: 1, nonce: 10, timestamp: 5_000 }])
      const expect = (effect: Effect.Effect<unknown, unknown, any>, tag: string, field?: string) =>
        Effect.map(failureOf(effect), (error) => {
          assert.equal(error._tag, tag, `expected ${tag}, got ${JSON.stringify(error)}`)
          if (field !== undefined) assert.equal(error.field, field)
        })
      yield* expect(matches.append("m", [{ value: { _tag: "Goal", minute: "ten" } as never }]), "InvalidArgument", "items[0].value")
      yield* expect(feeds.append("f", [{ value: 2, nonce: -1 }]), "InvalidArgument", "items[0].nonce")
      yield* expect(feeds.append("f", [{ value: 2, nonce: 1.5 }]), "InvalidArgument", "items[0].nonce")
      yield* expect(feeds.append("f", [{ value: 2, nonce: (1n << 128n).toString() }]), "InvalidArgument", "items[0].nonce")
      yield* expect(feeds.append("f", [{ value: 2 }, { value: 3, nonce: "12x" }]), "InvalidArgument", "items[1].nonce")
      yield* expect(feeds.append("f", [{ value: 2, timestamp: Number.POSITIVE_INFINITY }]), "InvalidArgument", "items[0].timestamp")
      yield* expect(feeds.append("f", [{ value: 2, timestamp: -1 }]), "InvalidArgument", "items[0].timestamp")
      yield* expect(feeds.append("f", [{ value: 2, timestamp: 8.64e15 + 1 }]), "InvalidArgument", "items[0].timestamp")
      yield* expect(feeds.append("f", [{ value: 2, timestamp: 6_000 }, { value: 3, timestamp: 4_999 }]), "TimestampTooOld", "items[1].timestamp")
      yield* expect(feeds.append("f", []), "InvalidArgument", "items")
      yield* expect(feeds.append("f", Array.from({ length: 1_001 }, () => ({ value: 0 }))), "InvalidArgument", "items")
      yield* expect(feeds.page("f", { limit: 0 }), "InvalidArgument", "limit")
      yield* expect(feeds.page("f", { limit: 1_001 }), "InvalidArgument", "limit")
      yield* expect(feeds.page("f", { offset: 1, timestamp: 2 }), "InvalidArgument", "timestamp")
      yield* expect(feeds.page("f", { cursor: "not-a-cursor!" }), "InvalidCursor", "cursor")
      const page = yield* feeds.page("f", { limit: 1 })
      const tampered = page.cursor!.slice(0, -2) + (page.cursor!.endsWith("AA") ? "AB" : "AA")
      yield* expect(feeds.page("f", { cursor: tampered }), "InvalidCursor", "cursor")
      yield* feeds.append("other", [{ value: 1 }])
      yield* expect(feeds.page("other", { cursor: page.cursor! }), "InvalidCursor", "cursor")
      // The same id under another feed type, at the same generation, is another feed too.
      const recent = yield* Feed.client(Recent)
      yield* recent.append("f", [{ value: 1 }])
      yield* expect(recent.page("f", { cursor: page.cursor! }), "InvalidCursor", "cursor")
      yield* expect(feeds.append("", [{ value: 1 }]), "InvalidMessage", "id")
      yield* expect(feeds.append("x".repeat(513), [{ value: 1 }]), "InvalidMessage", "id")
      yield* expect(feeds.get("f", 0), "InvalidArgument", "offset")
      yield* expect(feeds.get("f", 99), "EntryNotFound")
      const metadata = yield* feeds.metadata("f")
      assert.deepEqual([metadata.count, metadata.lastNonce, metadata.maxTimestamp], [1, "10", 5_000], "nothing of the refused calls was written")
      const retried = yield* feeds.append("f", [{ value: 9, nonce: 10, timestamp: 1 }])
      assert.deepEqual(retried, [{ duplicate: true }], "a retried item is a duplicate whatever its timestamp")
    }))
  })

  it("trims past the retention in the background", async () => {
    await run(node(), Effect.gen(function*() {
      const recent = yield* Feed.client(Recent)
      for (let i = 1; i <= 50; i++) yield* recent.append("r", [{ value: i }])
      // Trim runs as later messages of the same feed: one more read waits behind them.
      let metadata = yield* recent.metadata("r")
      for (let spin = 0; spin < 100 && metadata.count > 10; spin++) metadata = yield* recent.metadata("r")
      assert.equal(metadata.count, 10)
      assert.equal(metadata.firstOffset, 41)
      const page = yield* recent.page("r", { limit: 100 })
      assert.deepEqual(page.items.map((item) => item.value), Array.from({ length: 10 }, (_, i) => 41 + i))
    }))
  })

  it("ages out the entries of a feed that is only read, no longer appended to", async () => {
    const clock = { now: 1_000 }
    const Quiet = Feed.define("quiet", { entry: Schema.Number, retention: { maxAgeMillis: 1_000 }, clock: () => clock.now })
    await run(Feed.layer(Quiet).pipe(Layer.provideMerge(feedNode(MemoryStore.layer))), Effect.gen(function*() {
      const feeds = yield* Feed.client(Quiet)
      yield* feeds.append("q", [{ value: 1 }, { value: 2 }])
      clock.now += 500
      yield* feeds.append("q", [{ value: 3 }])
      clock.now += 1_000
      // No append from now on: reads alone start the trim (it runs behind them).
      let page = yield* feeds.page("q", { limit: 10 })
      for (let spin = 0; spin < 100 && page.items.length > 1; spin++) page = yield* feeds.page("q", { limit: 10 })
      assert.deepEqual(page.items.map((item) => item.value), [3], "the two entries older than a second are gone")
      assert.equal((yield* feeds.metadata("q")).count, 1)
    }))
  })

  it("compacts records written one item per commit, in bounded steps, with every read unchanged and across a restart", async () => {
    const Trickle = Feed.define("trickle", { entry: Schema.Number, limits: { recordEntriesMax: 16, compactRecordsMax: 10 } })
    const directory = tempDir("feed-compact")
    const trickleNode = () => Feed.layer(Trickle).pipe(Layer.provideMerge(feedNode(LevelStore.layer({ directory }))))
    const recordCount = (id: string) =>
      Effect.gen(function*() {
        const store = yield* KeyValueStore
        const runtime = yield* EntityRuntime
        return (yield* store.scan(String(runtime.shardOf(Trickle.type, id)), `${Trickle.type}.records`, { prefix: Buffer.from(`${id}\u0000`) })).length
      })
    // Everything a reader can see: both directions page by page, every offset, seeks by timestamp and nonce.
    const readAll = (feeds: Feed.FeedClient<number, number>, id: string, last: number) =>
      Effect.gen(function*() {
        const walk = (order: "forward" | "backward") =>
          Effect.gen(function*() {
            const seen: Array<unknown> = []
            let page = yield* feeds.page(id, { order, limit: 7 })
            for (let guard = 0; page.items.length > 0 && guard < 1_000; guard++) {
              seen.push(...page.items)
              page = yield* feeds.page(id, { cursor: page.cursor!, limit: 7 })
            }
            return seen
          })
        const gets = yield* Effect.forEach(Array.from({ length: last + 1 }, (_, i) => i + 1), (offset) =>
          Effect.map(Effect.result(feeds.get(id, offset)), (result) => (Result.isSuccess(result) ? result.success : result.failure._tag)))
        const seeks = yield* Effect.forEach([0, 1_003, 1_050, 1_051, 1_199, 5_000], (timestamp) =>
          Effect.all([feeds.page(id, { timestamp, limit: 3 }), feeds.page(id, { timestamp, limit: 3, order: "backward" })]))
        const nonces = yield* Effect.forEach([1, 7, 101, 399, 1_000], (nonce) =>
          Effect.all([feeds.page(id, { nonce, limit: 3 }), feeds.page(id, { nonce, limit: 3, order: "backward" })]))
        return { forward: yield* walk("forward"), backward: yield* walk("backward"), gets, seeks, nonces, metadata: yield* feeds.metadata(id) }
      })
    const untilDone = (feeds: Feed.FeedClient<number, number>, id: string) =>
      Effect.gen(function*() {
        let steps = 0
        for (;;) {
          const step = yield* feeds.compact(id)
          steps++
          if ((step.merged === 0 && !step.more) || steps >= 200) return steps
        }
      })
    const before = await run(trickleNode(), Effect.gen(function*() {
      const feeds = yield* Feed.client(Trickle)
      // One item per acknowledged append: each lands in a commit round of its own, so a record each.
      for (let i = 1; i <= 200; i++) yield* feeds.append("t", [{ value: i, nonce: i * 2, timestamp: 1_000 + Math.floor(i / 2) }])
      for (const offset of [5, 17, 100]) assert.equal(yield* feeds.remove("t", offset), true)
      assert.equal(yield* recordCount("t"), 200, "a record per append before compaction")
      const reads = yield* readAll(feeds, "t", 200)
      const first = yield* feeds.compact("t")
      assert.deepEqual(first, { merged: 9, more: true }, "one step reads 10 records and merges 9 into the first")
      const steps = yield* untilDone(feeds, "t")
      assert.ok(steps < 200, "compaction converges")
      // Offsets 1-199 in runs of 16, then the tail (offset 200) that appends extend.
      assert.equal(yield* recordCount("t"), Math.ceil(199 / 16) + 1)
      assert.deepEqual(yield* readAll(feeds, "t", 200), reads, "compaction changes no answer")
      assert.deepEqual(yield* feeds.compact("t"), { merged: 0, more: false }, "nothing left to merge")
      // The feed goes on: a removal inside a merged record, and more single appends.
      assert.equal(yield* feeds.remove("t", 50), true)
      for (let i = 201; i <= 205; i++) yield* feeds.append("t", [{ value: i, nonce: i * 2, timestamp: 1_200 }])
      yield* untilDone(feeds, "t")
      return yield* readAll(feeds, "t", 205)
    }))
    assert.deepEqual((before.forward as Array<{ offset: number }>).map((entry) => entry.offset),
      Array.from({ length: 205 }, (_, i) => i + 1).filter((offset) => ![5, 17, 50, 100].includes(offset)))
    await run(trickleNode(), Effect.gen(function*() {
      const feeds = yield* Feed.client(Trickle)
      assert.deepEqual(yield* readAll(feeds, "t", 205), before, "the same after a restart")
      // A deleted feed starts a new generation: compaction starts over on its records.
      assert.equal(yield* feeds.delete("t"), true)
      for (let i = 1; i <= 3; i++) yield* feeds.append("t", [{ value: i }])
      assert.deepEqual(yield* feeds.compact("t"), { merged: 1, more: false })
      const page = yield* feeds.page("t", { limit: 10 })
      assert.deepEqual(page.items.map((item) => item.value), [1, 2, 3])
    }))
  })

  it("trims past records holding only tombstones: a tail trimmed whole, a record emptied by removals", async () => {
    const clock = { now: 1_000 }
    const Aging = Feed.define("aging", { entry: Schema.Number, retention: { maxAgeMillis: 1_000 }, clock: () => clock.now })
    await run(Feed.layer(Aging).pipe(Layer.provideMerge(feedNode(MemoryStore.layer))), Effect.gen(function*() {
      const feeds = yield* Feed.client(Aging)
      const entities = yield* EntityClient.make(Aging.entity)
      const trim = (id: string) => entities.ask(id, "Trim")
      // The tail expires whole: a scheduled trim (no append) leaves it as tombstones, and appends go on in new records.
      yield* feeds.append("a", [{ value: 1 }, { value: 2 }])
      clock.now += 5_000
      yield* trim("a")
      assert.equal((yield* feeds.metadata("a")).count, 0)
      yield* feeds.append("a", [{ value: 3 }])
      yield* feeds.append("a", [{ value: 4 }])
      clock.now += 5_000
      yield* trim("a")
      assert.equal((yield* feeds.metadata("a")).count, 0, "entries after a record of tombstones expire too")
      // A first record emptied by removals does not hold retention up either.
      yield* feeds.append("b", [{ value: 1 }, { value: 2 }])
      yield* feeds.append("b", [{ value: 3 }])
      yield* feeds.append("b", [{ value: 4 }])
      for (const offset of [1, 2]) assert.equal(yield* feeds.remove("b", offset), true)
      clock.now += 5_000
      yield* trim("b")
      assert.equal((yield* feeds.metadata("b")).count, 0)
      const records = yield* Effect.gen(function*() {
        const store = yield* KeyValueStore
        const runtime = yield* EntityRuntime
        return (yield* store.scan(String(runtime.shardOf(Aging.type, "b")), `${Aging.type}.records`, { prefix: Buffer.from("b\u0000") })).length
      })
      assert.equal(records, 1, "only the tail remains")
    }))
  })

  it("deletes a feed: gone at once, its cursors refused, its records purged, a new feed starts at 1", async () => {
    await run(node(), Effect.gen(function*() {
      const feeds = yield* Feed.client(Feed.Json)
      yield* feeds.append("d", Array.from({ length: 600 }, (_, i) => ({ value: i })))
      const page = yield* feeds.page("d", { limit: 5 })
      assert.equal(yield* feeds.delete("d"), true)
      assert.equal((yield* failureOf(feeds.metadata("d")))._tag, "FeedNotFound")
      assert.equal((yield* failureOf(feeds.page("d", { cursor: page.cursor! })))._tag, "InvalidCursor")
      assert.equal(yield* feeds.delete("d"), false)
      const again = yield* feeds.append("d", [{ value: "new" }])
      assert.deepEqual(again.map((result) => ("offset" in result ? result.offset : 0)), [1])
      const store = yield* KeyValueStore
      const runtime = yield* EntityRuntime
      const records = yield* store.scan(String(runtime.shardOf("feed", "d")), "feed.records", { prefix: Buffer.from("d\u0000") })
      assert.equal(records.length, 1, "only the new feed's record remains")
      // The live generation is never purged, whoever sends the purge.
      const client = EntityClient.make(Feed.Json.entity)
      const refused = yield* failureOf(Effect.flatMap(client, (entities) => entities.ask("d", "Purge", { generation: 2 })))
      assert.equal((refused as { field?: string }).field, "generation")
      assert.equal((yield* feeds.page("d", {})).items.length, 1, "the new feed's entry is still there")
    }))
  })

  it("lists feeds by prefix and keyspace, page by page", async () => {
    await run(node(), Effect.gen(function*() {
      const feeds = yield* Feed.client(Feed.Json)
      const names = [...Array.from({ length: 25 }, (_, i) => `league/match-${String(i).padStart(2, "0")}`), "users/a", "users/b", "solo"]
      yield* Effect.forEach(names, (name) => feeds.append(name, [{ value: 1 }]), { concurrency: 10, discard: true })
      yield* feeds.append("users/deleted", [{ value: 1 }])
      yield* feeds.delete("users/deleted")
      const seen: Array<string> = []
      let cursor: string | undefined
      for (let round = 0; round < 10; round++) {
        const page: { feeds: ReadonlyArray<string>; cursor: string | null } = yield* Feed.list(Feed.Json, { prefix: "league/", limit: 10, cursor })
        seen.push(...page.feeds)
        if (page.cursor === null) break
        cursor = page.cursor
      }
      assert.deepEqual(seen, names.slice(0, 25))
      const users = yield* Feed.list(Feed.Json, { prefix: "users/" })
      assert.deepEqual(users.feeds, ["users/a", "users/b"], "a deleted feed is not listed")
      const all = yield* Feed.list(Feed.Json, { limit: 1_000 })
      assert.deepEqual(all.feeds, [...names].sort())
      // By keyspace: a named one (with a prefix inside it), and the default one (no slash).
      assert.deepEqual((yield* Feed.list(Feed.Json, { keyspace: "users" })).feeds, ["users/a", "users/b"])
      assert.deepEqual((yield* Feed.list(Feed.Json, { keyspace: "league", prefix: "match-2", limit: 3 })).feeds, names.slice(20, 23))
      assert.deepEqual((yield* Feed.list(Feed.Json, { keyspace: "" })).feeds, ["solo"])
      const refused = yield* Effect.flip(Feed.list(Feed.Json, { keyspace: "a/b" }))
      assert.equal(refused._tag === "InvalidArgument" && refused.field, "keyspace")
    }))
  })

  it("lists the feeds after many deleted ones, however a shard's first records are deleted", async () => {
    await run(node(), Effect.gen(function*() {
      const feeds = yield* Feed.client(Feed.Json)
      const gone = Array.from({ length: 80 }, (_, i) => `a-${String(i).padStart(2, "0")}`)
      const kept = Array.from({ length: 16 }, (_, i) => `b-${String(i).padStart(2, "0")}`)
      yield* Effect.forEach([...gone, ...kept], (name) => feeds.append(name, [{ value: 1 }]), { concurrency: 10, discard: true })
      yield* Effect.forEach(gone, (name) => feeds.delete(name), { concurrency: 10, discard: true })
      const first = yield* Feed.list(Feed.Json, { limit: 5 })
      assert.deepEqual(first.feeds, kept.slice(0, 5))
      const rest = yield* Feed.list(Feed.Json, { limit: 20, cursor: first.cursor! })
      assert.deepEqual(rest.feeds, kept.slice(5))
      assert.equal(rest.cursor, null)
    }))
  })
})
