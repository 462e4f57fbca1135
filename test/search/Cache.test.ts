/**
 * Goal: memory stays bounded: the postings cache never holds more than its budget, and a query
 * answers correctly whatever was evicted.
 * Method: the LRU cache alone (budget, eviction order, oversized entries); then an index queried
 * over and over through a tiny shared cache, checking its size after every query and the answers
 * against a run with a roomy cache.
 */
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import * as MemoryStore from "../../persistence/MemoryStore.js"
import { LruCache } from "../../src/search/internal/lruCache.js"
import * as SearchPartition from "../../src/search/SearchPartition.js"
import { itEffect } from "../support/itEffect.js"
import { corpusSchema, random, randomCorpus, randomQuery, seedOf } from "./reference.js"
import { load, openIndex } from "./support.js"

describe("bounded cache", () => {
  it("evicts least recently used entries to stay within its budget", () => {
    const cache = new LruCache<string>(100, 60)
    cache.set("a", "a", 40)
    cache.set("b", "b", 40)
    expect(cache.get("a")).toBe("a")
    cache.set("c", "c", 40)
    expect(cache.get("b")).toBeUndefined()
    expect(cache.get("a")).toBe("a")
    expect(cache.bytes).toBeLessThanOrEqual(100)
    cache.set("big", "big", 70)
    expect(cache.get("big")).toBeUndefined()
  })

  itEffect("queries through a tiny cache stay within it and answer the same", () =>
    Effect.gen(function*() {
      const seed = seedOf("cache")
      const rng = random(seed)
      const corpus = randomCorpus(rng, 1_500)
      const cache = SearchPartition.makeCache(8 * 1024)
      const tiny = yield* openIndex(corpusSchema(2), "tiny", cache)
      const roomy = yield* openIndex(corpusSchema(2), "roomy", 64 * 1024 * 1024)
      yield* load(tiny, corpus)
      yield* load(roomy, corpus)
      const documents = [...corpus.values()]
      let used = 0
      for (let i = 0; i < 80; i++) {
        const request = { q: randomQuery(rng, 0, documents), limit: 20, fuzzy: rng.int(2) }
        expect(yield* tiny.search(request), `seed ${seed}: ${request.q}`).toEqual(yield* roomy.search(request))
        expect(cache.bytes).toBeLessThanOrEqual(cache.bytesMax)
        used = Math.max(used, cache.size)
      }
      // The cache was used, not bypassed.
      expect(used).toBeGreaterThan(0)
    }).pipe(Effect.provide(MemoryStore.layer)), 120_000)
})
