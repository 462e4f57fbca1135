/**
 * Goal: the ingest bridge parses jobs as configured, appends each feed's jobs in queue order with
 * exactly-once nonces, sends unparsable or refused jobs to BullMQ's failed set with a clear reason
 * without blocking the queue, and lets one consumer hold a queue while another stands by.
 * Method: parser cases without any network; then real BullMQ producers on the test run's private
 * Redis under a random prefix, and a real node (memory store) hosting JSON feeds, read back through
 * the feed client. Crashes are in `DurableCrash.test.ts`.
 */
import { Queue } from "bullmq"
import { Effect, Layer, ManagedRuntime, Schema } from "effect"
import { Cluster, Redis } from "ioredis"
import { strict as assert } from "node:assert"
import { describe, inject, it } from "vitest"
import * as EntityRuntime from "../../actors/EntityRuntime.js"
import { defaults, RuntimeConfig } from "../../actors/RuntimeConfig.js"
import * as MemoryStore from "../../persistence/MemoryStore.js"
import { InvalidArgument } from "../../persistence/StoreError.js"
import * as IngestBridge from "../../src/durable/IngestBridge.js"
import * as IngestParser from "../../src/durable/IngestParser.js"
import * as Feed from "../../src/feed/Feed.js"
import { type ConnectionCutter, connectionCutter } from "../support/connectionCutter.js"
import { type RedisProcess, startRedis, startRedisCluster } from "../support/RedisServer.js"
import { testPrefix } from "./support.js"

const url = inject("redisUrl")
const port = Number(new URL(url).port)

const job = (data: unknown, extra: Partial<IngestParser.JobView> = {}): IngestParser.JobView => ({ name: "score", id: "7", timestamp: 1_700_000_000_000, data, ...extra })

const parsers = (given: Partial<Record<keyof IngestParser.Parsers, string>>): IngestParser.Parsers => {
  const parse = (text: string, role: IngestParser.Role) => {
    const parser = IngestParser.parse(text, role)
    if (parser instanceof InvalidArgument) throw new Error(parser.message)
    return parser
  }
  return {
    keyspace: parse(given.keyspace ?? "None", "keyspace"),
    feed: parse(given.feed ?? "Data(feed)", "feed"),
    nonce: parse(given.nonce ?? "None", "nonce"),
    timestamp: parse(given.timestamp ?? "None", "timestamp"),
    value: parse(given.value ?? "Data", "value")
  }
}

describe("ingest parsers", () => {
  it("parses every parser form and refuses bad ones with the role named", () => {
    assert.deepEqual(IngestParser.parse("Static(match-events)", "keyspace"), IngestParser.Static("match-events"))
    assert.deepEqual(IngestParser.parse("Data(match.id)", "feed"), { _tag: "Data", path: ["match", "id"] })
    assert.deepEqual(IngestParser.parse("Header(x-seq)", "nonce"), IngestParser.Header("x-seq"))
    assert.deepEqual(IngestParser.parse("JobTimestamp", "timestamp"), IngestParser.JobTimestamp)
    assert.deepEqual(IngestParser.parse("Data", "value"), IngestParser.Data())
    const refused = (text: string, role: IngestParser.Role) => {
      const parsed = IngestParser.parse(text, role)
      assert.ok(parsed instanceof InvalidArgument, `${text} as ${role} is refused`)
      assert.equal(parsed.field, role)
    }
    refused("None", "feed")
    refused("JobTimestamp", "feed")
    refused("JobName", "timestamp")
    refused("Static", "feed")
    refused("Data(a..b)", "feed")
    refused("Nonsense(x)", "nonce")
    refused("JobId(3)", "nonce")
  })

  it("finds keyspace, feed, nonce, timestamp and value in a job, or says what is missing", () => {
    const all = parsers({ keyspace: "Static(league)", feed: "Data(match.id)", nonce: "Header(seq)", timestamp: "JobTimestamp", value: "Data(event)" })
    assert.deepEqual(IngestParser.parseJob(all, job({ match: { id: 42 }, headers: { seq: "9" }, event: { goal: 1 } })), {
      feed: "league/42",
      value: { goal: 1 },
      nonce: "9",
      timestamp: 1_700_000_000_000
    })
    assert.deepEqual(IngestParser.parseJob(parsers({ feed: "JobName", nonce: "JobId" }), job({ a: 1 })), { feed: "score", value: { a: 1 }, nonce: "7", timestamp: undefined })
    const missing = IngestParser.parseJob(all, job({ match: {}, headers: { seq: "9" }, event: {} }))
    assert.ok(missing instanceof IngestParser.Unparsable)
    assert.match(missing.reason, /^feed: Data\(match\.id\) found nothing/)
    const slash = IngestParser.parseJob(parsers({ keyspace: "Data(k)" }), job({ k: "a/b", feed: "f" }))
    assert.ok(slash instanceof IngestParser.Unparsable && /contains "\/"/.test(slash.reason))
  })
})

/** A node hosting JSON feeds on the memory store. */
const node = () =>
  Feed.layer(Feed.Json).pipe(
    Layer.provideMerge(EntityRuntime.layerLocal),
    Layer.provideMerge(MemoryStore.layer),
    Layer.provideMerge(Layer.succeed(RuntimeConfig)({ ...defaults, shardCount: 16 }))
  )

/** Options of a bridge from queue `events` to the feed named by a job's `feed`, nonce its `n`, with `tuning`. */
const feedAndNonce = (url: string, prefix: string, tuning: Partial<IngestBridge.IngestOptions>): IngestBridge.IngestOptions => ({
  url,
  queue: "events",
  prefix,
  keyspace: "None",
  feed: "Data(feed)",
  nonce: "Data(n)",
  ...tuning
})

/** A bridge and the node it appends to, for a test's runtime. */
const bridgeNode = (options: IngestBridge.IngestOptions) => IngestBridge.layer(Feed.Json, options).pipe(Layer.provideMerge(node()))

const allEntries = (feed: string) =>
  Effect.gen(function*() {
    const feeds = yield* Feed.client(Feed.Json)
    const out: Array<Feed.FeedEntry<unknown>> = []
    let cursor: string | undefined
    // Bounded: each page moves past up to 1,000 entries of a feed the test wrote.
    for (let page = 0; page < 1_000; page++) {
      const got = yield* Effect.orDie(feeds.page(feed, cursor === undefined ? { limit: 1_000 } : { limit: 1_000, cursor }))
      out.push(...got.items)
      if (got.cursor === null || got.items.length < 1_000) break
      cursor = got.cursor
    }
    return out
  })

const waitFor = async (what: string, check: () => Promise<boolean>, timeoutMillis = 60_000) => {
  const deadline = Date.now() + timeoutMillis
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

/** Waits until nothing of the queue waits or is being worked on. */
const drains = (producer: Queue, timeoutMillis?: number) =>
  waitFor("the queue drains", async () => {
    const counts = await producer.getJobCounts("waiting", "active")
    return counts.waiting === 0 && counts.active === 0
  }, timeoutMillis)

/**
 * Redis may run a fetch and lose only its reply, and ioredis re-sends unanswered commands after
 * reconnecting: the job the first run took would sit in BullMQ's active list, skipped, while
 * later jobs of its feed were appended. Without a takeover after each drop, such jobs never
 * finish (the drain below times out) or, re-queued later, are dropped as duplicates. On a Redis
 * (or Redis Cluster) of its own, every connection but the producer's is the bridge's, and
 * they are cut again and again while jobs wait; then every feed must hold every job
 * once, in queue order.
 */
const ingestThroughDrops = async (redis: RedisProcess) => {
  const clustered = redis.ports.length > 1
  const nodes = redis.ports.map((port) => ({ host: "127.0.0.1", port }))
  const prefix = clustered ? `{${testPrefix("drops")}}` : testPrefix("drops")
  const producer = new Queue("events", { connection: clustered ? new Cluster(nodes, { scaleReads: "master" }) : nodes[0]!, prefix })
  let cutter: ConnectionCutter | undefined
  const runtime = ManagedRuntime.make(bridgeNode(feedAndNonce(redis.url, prefix, { flushIntervalMillis: 2, batchItemsMax: 25, fetchAheadMax: 64, leaseMillis: 2_000 })))
  try {
    const feeds = ["a", "b", "c", "d"]
    const perFeed = 1_500
    const jobs = Array.from({ length: perFeed * feeds.length }, (_, i) => ({ name: "e", data: { feed: feeds[i % feeds.length]!, n: Math.floor(i / feeds.length) + 1 } }))
    for (let start = 0; start < jobs.length; start += 500) await producer.addBulk(jobs.slice(start, start + 500))
    // Made before the bridge starts: it spares the producer's connections.
    cutter = await connectionCutter(redis)
    await runtime.runPromise(Effect.void)
    let drops = 0
    // Bounded: 40 rounds at most, each dropping the bridge's connections while jobs wait.
    for (let round = 0; round < 40 && drops < 12 * redis.ports.length; round++) {
      await new Promise((resolve) => setTimeout(resolve, 15 + (round % 4) * 10))
      if ((await producer.getJobCounts("waiting")).waiting === 0) break
      drops += await cutter.cut()
    }
    assert.ok(drops > 0, "the bridge's connections were dropped while it had jobs to take")
    await drains(producer, 30_000)
    assert.equal((await producer.getJobCounts("failed")).failed, 0)
    for (const feed of feeds) {
      const nonces = (await runtime.runPromise(allEntries(feed))).map((entry) => Number(entry.nonce))
      assert.deepEqual(nonces, Array.from({ length: perFeed }, (_, i) => i + 1), `feed ${feed} holds every job once, in queue order`)
    }
  } finally {
    await runtime.dispose()
    cutter?.close()
    await producer.close()
    await redis.stop()
  }
}

describe("ingest bridge", () => {
  it("appends each feed's jobs in queue order exactly once, and fails bad jobs with a reason without blocking", async () => {
    const prefix = testPrefix("ingest")
    const producer = new Queue("events", { connection: { host: "127.0.0.1", port }, prefix })
    const runtime = ManagedRuntime.make(bridgeNode({
      url,
      queue: "events",
      prefix,
      keyspace: "Static(league)",
      feed: "Data(match)",
      nonce: "Data(seq)",
      timestamp: "Data(at)",
      value: "Data(event)",
      flushIntervalMillis: 20,
      batchItemsMax: 50,
      leaseMillis: 1_000
    }))
    try {
      await runtime.runPromise(Effect.void)
      const matches = 10
      const perMatch = 200
      const jobs = []
      for (let seq = 1; seq <= perMatch; seq++) {
        for (let match = 0; match < matches; match++) jobs.push({ name: "event", data: { match: `m${match}`, seq, at: 1_000 + seq, event: { seq, match } } })
      }
      for (let start = 0; start < jobs.length; start += 500) await producer.addBulk(jobs.slice(start, start + 500))
      // Bad jobs among good ones: no feed field, a negative nonce, a timestamp older than the
      // feed's last, and a re-delivered job (its nonce was appended already).
      await producer.add("event", { seq: 1, at: 1, event: {} })
      await producer.add("event", { match: "m0", seq: -3, at: 5_000, event: {} })
      await producer.add("event", { match: "m1", seq: 10_000, at: 2, event: { late: true } })
      await producer.add("event", { match: "m2", seq: 5, at: 9_000, event: { again: true } })
      await producer.add("event", { match: "m3", seq: perMatch + 1, at: 9_000, event: { seq: perMatch + 1, match: 3 } })
      await waitFor("the queue drains", async () => {
        const counts = await producer.getJobCounts("waiting", "active", "failed")
        return counts.waiting === 0 && counts.active === 0 && counts.failed === 3
      })
      for (let match = 0; match < matches; match++) {
        const entries = await runtime.runPromise(allEntries(`league/m${match}`))
        const expected = Array.from({ length: match === 3 ? perMatch + 1 : perMatch }, (_, i) => String(i + 1))
        assert.deepEqual(entries.map((entry) => entry.nonce), expected, `feed m${match} holds every job once, in queue order`)
        assert.deepEqual(entries.map((entry) => (entry.value as { seq: number }).seq), expected.map(Number))
        assert.equal(entries[entries.length - 1]!.timestamp, match === 3 ? 9_000 : 1_000 + perMatch, "timestamps come from the job")
      }
      const failed = await producer.getFailed(0, 10)
      const reasons = failed.map((one) => one.failedReason).sort()
      assert.equal(reasons.length, 3)
      assert.ok(reasons.some((reason) => /^feed: Data\(match\) found nothing/.test(reason)), reasons.join(" | "))
      assert.ok(reasons.some((reason) => /nonce -3 is not a non-negative integer/.test(reason)), reasons.join(" | "))
      assert.ok(reasons.some((reason) => /TimestampTooOld/.test(reason)), reasons.join(" | "))
      const stats = await runtime.runPromise(Effect.map(IngestBridge.IngestBridge, (bridge) => bridge.stats()))
      assert.equal(stats.holding, true)
    } finally {
      await runtime.dispose()
      await producer.obliterate({ force: true })
      await producer.close()
    }
  })

  it("batches no more items than the feed type takes in one append, and fails a job that does not fit its schema alone", async () => {
    // A feed type of its own: entries { n: number }, at most 10 items per append.
    const Small = Feed.define("small-appends", { entry: Schema.Struct({ n: Schema.Number }), limits: { appendItemsMax: 10 } })
    const prefix = testPrefix("small")
    const producer = new Queue("events", { connection: { host: "127.0.0.1", port }, prefix })
    const runtime = ManagedRuntime.make(IngestBridge.layer(Small, feedAndNonce(url, prefix, { value: "Data(entry)", flushIntervalMillis: 50, leaseMillis: 1_000 })).pipe(
      Layer.provideMerge(Feed.layer(Small)),
      Layer.provideMerge(EntityRuntime.layerLocal),
      Layer.provideMerge(MemoryStore.layer),
      Layer.provideMerge(Layer.succeed(RuntimeConfig)({ ...defaults, shardCount: 16 }))
    ))
    try {
      const jobs = Array.from({ length: 100 }, (_, i) => ({ name: "e", data: { feed: "f", n: i + 1, entry: { n: i + 1 } } }))
      jobs.splice(50, 0, { name: "e", data: { feed: "f", n: 1_000, entry: { n: "not a number" as unknown as number } } })
      // Added before the bridge starts, so its first batches could hold them all.
      await producer.addBulk(jobs)
      await runtime.runPromise(Effect.void)
      await drains(producer)
      const failed = await producer.getFailed(0, 10)
      assert.deepEqual(failed.map((one) => one.data.n), [1_000], "only the job that does not fit the schema fails")
      assert.match(failed[0]!.failedReason, /does not fit the feed's schema/)
      const feeds = await runtime.runPromise(Feed.client(Small))
      const page = await Effect.runPromise(feeds.page("f", { limit: 1_000 }))
      assert.deepEqual(page.items.map((entry) => entry.value.n), Array.from({ length: 100 }, (_, i) => i + 1), "every other job once, in queue order")
    } finally {
      await runtime.dispose()
      await producer.obliterate({ force: true })
      await producer.close()
    }
  })

  it("keeps queue order for jobs with producer-chosen ids, through many small batches", async () => {
    // Custom ids say nothing about order: only the order of the bridge's fetch stream does.
    const prefix = testPrefix("order")
    const producer = new Queue("events", { connection: { host: "127.0.0.1", port }, prefix })
    const runtime = ManagedRuntime.make(bridgeNode(feedAndNonce(url, prefix, { flushIntervalMillis: 1, batchItemsMax: 7, fetchAheadMax: 16, leaseMillis: 1_000 })))
    try {
      const total = 3_000
      const jobs = Array.from({ length: total }, (_, i) => ({
        name: "e",
        data: { feed: i % 3 === 0 ? "left" : "right", n: i + 1 },
        opts: { jobId: `x${Math.random().toString(36).slice(2)}-${i}` }
      }))
      // Added while the bridge already runs, so fetches and completions interleave.
      await runtime.runPromise(Effect.void)
      for (let start = 0; start < total; start += 100) await producer.addBulk(jobs.slice(start, start + 100))
      await drains(producer)
      assert.equal((await producer.getJobCounts("failed")).failed, 0)
      for (const feed of ["left", "right"]) {
        const nonces = (await runtime.runPromise(allEntries(feed))).map((entry) => Number(entry.nonce))
        const expected = jobs.filter((one) => one.data.feed === feed).map((one) => one.data.n)
        assert.deepEqual(nonces, expected, `feed ${feed} in queue order`)
      }
    } finally {
      await runtime.dispose()
      await producer.obliterate({ force: true })
      await producer.close()
    }
  })

  it("skips no job when Redis drops its connections while fetches are in flight", async () => {
    await ingestThroughDrops(await startRedis())
  })

  it("skips no job on a Redis Cluster whose node connections drop while fetches are in flight", async () => {
    await ingestThroughDrops(await startRedisCluster())
  }, 60_000)

  it("takes a queue over past an active job whose data is gone", async () => {
    // The takeover stops at a job it cannot re-queue (to keep the order); one that no longer
    // exists must not stop it for good.
    const prefix = testPrefix("ghost")
    const producer = new Queue("events", { connection: { host: "127.0.0.1", port }, prefix })
    const runtime = ManagedRuntime.make(bridgeNode(feedAndNonce(url, prefix, { flushIntervalMillis: 5, leaseMillis: 1_000 })))
    const admin = new Redis({ host: "127.0.0.1", port, lazyConnect: true })
    try {
      await admin.connect()
      await producer.addBulk(Array.from({ length: 20 }, (_, i) => ({ name: "e", data: { feed: "one", n: i + 1 } })))
      await admin.lpush(`${prefix}:events:active`, "ghost")
      await runtime.runPromise(Effect.void)
      await drains(producer, 30_000)
      assert.deepEqual((await runtime.runPromise(allEntries("one"))).map((entry) => Number(entry.nonce)), Array.from({ length: 20 }, (_, i) => i + 1))
    } finally {
      await runtime.dispose()
      admin.disconnect()
      await producer.obliterate({ force: true })
      await producer.close()
    }
  })

  it("lets one consumer hold a queue; a second takes over when the first stops", async () => {
    const prefix = testPrefix("lease")
    const producer = new Queue("events", { connection: { host: "127.0.0.1", port }, prefix })
    const options = feedAndNonce(url, prefix, { flushIntervalMillis: 10, leaseMillis: 600 })
    const first = ManagedRuntime.make(bridgeNode(options))
    const second = ManagedRuntime.make(bridgeNode(options))
    const holding = (runtime: typeof first) => runtime.runPromise(Effect.map(IngestBridge.IngestBridge, (bridge) => bridge.stats().holding))
    try {
      await first.runPromise(Effect.void)
      await waitFor("the first holds the queue", () => holding(first))
      await second.runPromise(Effect.void)
      await producer.addBulk(Array.from({ length: 100 }, (_, i) => ({ name: "e", data: { feed: "one", n: i + 1 } })))
      await waitFor("the first appends", async () => (await producer.getJobCounts("waiting")).waiting === 0)
      assert.equal(await holding(second), false, "the standby holds nothing")
      await first.dispose()
      await producer.addBulk(Array.from({ length: 100 }, (_, i) => ({ name: "e", data: { feed: "one", n: 101 + i } })))
      await waitFor("the second takes over", () => holding(second))
      await waitFor("the second appends", async () => {
        const counts = await producer.getJobCounts("waiting", "active")
        return counts.waiting === 0 && counts.active === 0
      })
      const entries = await second.runPromise(allEntries("one"))
      // Each runtime has its own memory store: the second holds exactly the jobs it appended.
      assert.deepEqual(entries.map((entry) => Number(entry.nonce)), Array.from({ length: 100 }, (_, i) => 101 + i))
    } finally {
      await first.dispose().catch(() => undefined)
      await second.dispose()
      await producer.obliterate({ force: true })
      await producer.close()
    }
  })
})
