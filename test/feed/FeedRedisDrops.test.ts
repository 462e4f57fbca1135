/**
 * Goal: a feed on the Redis store stays exact when Redis drops the node's connection with
 * appends in flight: offsets without gaps, no entry twice, every acknowledged append present,
 * and each item of an append next to its sibling (all-or-nothing).
 * Method: a real node on a Redis of its own (so every connection but the killer's is the
 * node's), eight writers per feed, the node's connections cut again and again; an append that
 * fails has an unknown outcome and is not retried. Then every feed is read back whole.
 */
import { Cause, Exit, ManagedRuntime } from "effect"
import { strict as assert } from "node:assert"
import { describe, it } from "vitest"
import * as RedisStore from "../../persistence/RedisStore.js"
import * as Feed from "../../src/feed/Feed.js"
import { connectionCutter } from "../support/connectionCutter.js"
import { startRedis } from "../support/RedisServer.js"
import { feedNode } from "./support.js"

describe("feeds on the Redis store when connections drop", () => {
  it("keeps every feed exact through repeated connection drops", async () => {
    const redis = await startRedis()
    // Made before the node connects: it cuts only the node's connections.
    const cutter = await connectionCutter(redis)
    const runtime = ManagedRuntime.make(feedNode(RedisStore.layer({ url: redis.url, keyPrefix: "drops" }), 64))
    try {
      const feeds = await runtime.runPromise(Feed.client(Feed.Json))
      const names = ["a", "b", "c"]
      const acknowledged = new Map(names.map((name) => [name, new Set<string>()]))
      const failures: Array<string> = []
      let writing = true
      // Each append holds two items, `w:n` and `w:nb`: all-or-nothing means both or neither.
      const writer = async (feed: string, w: number) => {
        for (let n = 1; writing; n++) {
          const tag = `${w}:${n}`
          const exit = await runtime.runPromiseExit(feeds.append(feed, [{ value: tag }, { value: `${tag}b` }]))
          if (Exit.isSuccess(exit)) acknowledged.get(feed)!.add(tag)
          else {
            failures.push(Cause.pretty(exit.cause))
            await new Promise((resolve) => setTimeout(resolve, 5))
          }
        }
      }
      const writers = names.flatMap((feed) => Array.from({ length: 8 }, (_, w) => writer(feed, w)))
      let drops = 0
      // Bounded: 25 rounds, each cutting the node's connections.
      for (let round = 0; round < 25; round++) {
        await new Promise((resolve) => setTimeout(resolve, 40))
        drops += await cutter.cut()
      }
      await new Promise((resolve) => setTimeout(resolve, 300))
      writing = false
      await Promise.all(writers)
      assert.ok(drops > 0 && failures.length > 0, "connections dropped with appends in flight")
      for (const feed of names) {
        const items: Array<Feed.FeedEntry<unknown>> = []
        let cursor: string | null = null
        // Bounded: a feed holds fewer entries than 1,000 pages of 1,000.
        for (let page = 0; page < 1_000; page++) {
          const got: Feed.Page<unknown> = await runtime.runPromise(feeds.page(feed, cursor === null ? { limit: 1_000 } : { limit: 1_000, cursor }))
          items.push(...got.items)
          cursor = got.cursor
          if (cursor === null || got.items.length < 1_000) break
        }
        const values = items.map((item) => String(item.value))
        assert.deepEqual(items.map((item) => item.offset), items.map((_, i) => i + 1), `${feed}: offsets without gaps`)
        assert.equal(new Set(values).size, values.length, `${feed}: no entry twice`)
        values.forEach((value, i) => {
          if (value.endsWith("b")) assert.equal(values[i - 1], value.slice(0, -1), `${feed}: ${value} right after its sibling`)
          else assert.equal(values[i + 1], `${value}b`, `${feed}: ${value} right before its sibling`)
        })
        const kept = new Set(values)
        for (const tag of acknowledged.get(feed)!) assert.ok(kept.has(tag), `${feed}: acknowledged ${tag} is stored`)
        const metadata = await runtime.runPromise(feeds.metadata(feed))
        assert.equal(metadata.count, items.length, `${feed}: its count matches its entries`)
        assert.equal(metadata.lastOffset, items.length, `${feed}: its last offset matches its entries`)
      }
    } finally {
      cutter.close()
      await runtime.dispose()
      await redis.stop()
    }
  }, 60_000)
})
