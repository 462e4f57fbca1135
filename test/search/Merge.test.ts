/**
 * Goal: merging the postings chunks that removals thinned out changes no answer, leaves the
 * index consistent for later writes, and really merges.
 * Method: a random corpus whose common terms span many sealed chunks, most documents removed
 * at random so chunks are left thin; answers compared with the brute-force reference before
 * and after merging in deliberately tiny steps (so terms resume mid-way), the sealed chunk count
 * and the per-chunk limit checked from the store, then more removals, replacements and
 * additions (whose removals follow the forward records that merging rewrote) compared again.
 * Also: a partition with nothing thinned writes nothing; an index merge through Search entities
 * (the scheduled `Maintenance.searchMerge` task's run) on the local runtime. Seeds are logged.
 */
import { Effect, Layer, ManagedRuntime } from "effect"
import { describe, expect, it } from "vitest"
import * as EntityRuntime from "../../actors/EntityRuntime.js"
import { defaults, RuntimeConfig } from "../../actors/RuntimeConfig.js"
import { KeyValueStore, type KeyValueStoreShape } from "../../persistence/KeyValueStore.js"
import * as LevelStore from "../../persistence/LevelStore.js"
import * as MemoryStore from "../../persistence/MemoryStore.js"
import * as StoreView from "../../persistence/StoreView.js"
import * as Maintenance from "../../src/durable/Maintenance.js"
import * as IndexSchema from "../../src/search/IndexSchema.js"
import * as SearchModule from "../../src/search/Search.js"
import * as SearchEntity from "../../src/search/SearchEntity.js"
import type * as SearchIndex from "../../src/search/SearchIndex.js"
import type { Document, SearchRequest } from "../../src/search/SearchMessages.js"
import * as Layout from "../../src/search/internal/layout.js"
import { readHeader } from "../../src/search/internal/postings.js"
import { CHUNK_POSTINGS_MAX } from "../../src/search/internal/postings.js"
import { mergeChunks, THIN_POSTINGS } from "../../src/search/internal/write.js"
import { itEffect } from "../support/itEffect.js"
import { tempDir } from "../support/tempDir.js"
import { corpusSchema, random, randomCorpus, seedOf } from "./reference.js"
import { compareAll as compareWith, load, mutateAtRandom, openIndex } from "./support.js"

const namespaces = Layout.namespaces("search")

/** Every record of a namespace of a partition, page by page (bounded by the store's size). */
const scanAll = (store: KeyValueStoreShape, partition: string, namespace: string) =>
  Effect.gen(function*() {
    const out: Array<{ readonly key: Uint8Array; readonly value: Uint8Array }> = []
    let after: Uint8Array | undefined
    for (;;) {
      const page = yield* store.scan(partition, namespace, after === undefined ? { limit: 1_000 } : { gt: after, limit: 1_000 })
      out.push(...page)
      if (page.length < 1_000) return out
      after = page[page.length - 1]!.key
    }
  })

/** Sealed chunks of the partition, with their posting counts. */
const sealedChunks = (store: KeyValueStoreShape) =>
  Effect.map(scanAll(store, "search-0", namespaces.postings), (entries) =>
    entries.map((entry) => readHeader(Layout.chunkKeyFirst(entry.key), entry.value).count))

const requests: ReadonlyArray<SearchRequest> = [
  { q: "the OR cat OR dog OR river OR house", limit: 1_000 },
  { q: "cat dog", limit: 1_000 },
  { q: "\"the cat\"", limit: 1_000 },
  { q: "title:river OR title:music", limit: 1_000 },
  { q: "ca", prefix: true, limit: 1_000 },
  { q: "stone", fuzzy: 1, limit: 200 },
  { q: "the", filter: ["tags:news"], limit: 1_000 }
]

const compareAll = (label: string, index: SearchIndex.SearchIndex, corpus: ReadonlyMap<string, Document>) => compareWith(label, index, corpus, requests)

describe("merging thinned postings chunks", () => {
  it("changes no answer, really merges, and keeps later writes right", async () => {
    const seed = seedOf("merge")
    const rng = random(seed)
    const runtime = ManagedRuntime.make(Layer.fresh(LevelStore.layer({ directory: tempDir("search-merge") })))
    await runtime.runPromise(Effect.gen(function*() {
      const store = yield* KeyValueStore
      const index = yield* openIndex(corpusSchema(1))
      const corpus = randomCorpus(rng, 3_000)
      yield* load(index, corpus)
      const mutated = new Map(corpus)
      // Three documents in four go: every sealed chunk of a common term thins out.
      for (const id of corpus.keys()) {
        if (rng.next() < 0.75) {
          expect(yield* index.remove(id)).toBe(true)
          mutated.delete(id)
        }
      }
      const before = yield* sealedChunks(store)
      expect(before.filter((count) => count < THIN_POSTINGS).length, `seed ${seed}: thin chunks before`).toBeGreaterThan(10)
      expect((yield* scanAll(store, "search-0", namespaces.thin)).length).toBeGreaterThan(0)
      const answers = yield* compareAll(`seed ${seed}: before merging`, index, mutated)

      // Tiny steps, so terms stop mid-way and resume from their mark.
      const schema = yield* IndexSchema.make(corpusSchema(1))
      const view = StoreView.direct(store, "search-0")
      let steps = 0
      let merged = 0
      for (let more = true; more; steps++) {
        expect(steps, "merging ends").toBeLessThan(10_000)
        const outcome = yield* mergeChunks({ schema, namespaces }, view, { chunksMax: 7, movedMax: 50 })
        merged += outcome.merged
        more = outcome.more
      }
      const after = yield* sealedChunks(store)
      expect(steps).toBeGreaterThan(5)
      expect(merged).toBe(before.length - after.length)
      expect(after.length, `seed ${seed}: sealed chunks ${before.length} -> ${after.length}`).toBeLessThan(before.length / 2)
      expect(after.every((count) => count > 0 && count <= CHUNK_POSTINGS_MAX)).toBe(true)
      expect(after.reduce((a, b) => a + b, 0)).toBe(before.reduce((a, b) => a + b, 0))
      expect(yield* scanAll(store, "search-0", namespaces.thin)).toEqual([])
      expect(yield* compareAll(`seed ${seed}: after merging`, index, mutated)).toEqual(answers)

      // Removals now follow forward records that merging rewrote; replacements and additions too.
      yield* mutateAtRandom(index, mutated, rng, 600, 0.6)
      expect((yield* index.stats()).docs).toBe(mutated.size)
      yield* compareAll(`seed ${seed}: writes after merging`, index, mutated)
      const report = yield* index.merge()
      expect(report.unfinished).toBe(0)
      yield* compareAll(`seed ${seed}: second merge`, index, mutated)
    }))
    await runtime.dispose()
  }, 300_000)

  itEffect("writes nothing when no chunk was thinned", () =>
    Effect.gen(function*() {
      const store = yield* KeyValueStore
      const index = yield* openIndex(corpusSchema(1))
      yield* load(index, randomCorpus(random(7), 500))
      const records = yield* scanAll(store, "search-0", namespaces.meta)
      const schema = yield* IndexSchema.make(corpusSchema(1))
      const outcome = yield* mergeChunks({ schema, namespaces }, StoreView.direct(store, "search-0"))
      expect(outcome).toEqual({ merged: 0, more: false })
      expect(yield* scanAll(store, "search-0", namespaces.meta)).toEqual(records)
    }).pipe(Effect.provide(MemoryStore.layer)))

  it("runs as the scheduled tasks over Search entities, for one index and for every index", async () => {
    const runtime = ManagedRuntime.make(
      Layer.mergeAll(SearchEntity.layer, SearchModule.layer).pipe(
        Layer.provideMerge(EntityRuntime.layerLocal),
        Layer.provideMerge(MemoryStore.layer),
        Layer.provideMerge(Layer.succeed(RuntimeConfig)({ ...defaults, shardCount: 64 })),
        Layer.fresh
      )
    )
    const rng = random(seedOf("merge-task"))
    const outcome = await runtime.runPromise(Effect.gen(function*() {
      const search = yield* SearchModule.Search
      /** Defines `name`, loads 2,000 documents and removes four in five; answers a query's result. */
      const thinned = (name: string) =>
        Effect.gen(function*() {
          yield* search.define(name, corpusSchema(2))
          const index = yield* search.open(name)
          const corpus = randomCorpus(rng, 2_000)
          yield* index.putMany([...corpus].map(([id, document]) => ({ id, document })))
          for (const id of corpus.keys()) if (rng.next() < 0.8) yield* index.remove(id)
          return { index, expected: yield* index.search({ q: "the OR cat OR dog", limit: 1_000 }) }
        })
      const articles = yield* thinned("articles")
      const task = Maintenance.searchMerge("articles", { everyMillis: 60_000 })
      const merged = yield* task.run({ task: task.id, scheduledAt: Date.now(), jobId: "test" })
      const again = yield* task.run({ task: task.id, scheduledAt: Date.now(), jobId: "test-2" })
      const notes = yield* thinned("notes")
      yield* search.define("empty", corpusSchema(1))
      const listed = yield* SearchEntity.listIndexes({ limit: 2 })
      const rest = yield* SearchEntity.listIndexes({ limit: 2, cursor: listed.cursor! })
      const all = Maintenance.searchMergeAll({ everyMillis: 60_000 })
      const mergedAll = yield* all.run({ task: all.id, scheduledAt: Date.now(), jobId: "test-3" })
      return {
        merged,
        again,
        mergedAll,
        listed: [...listed.ids, ...rest.ids],
        restCursor: rest.cursor,
        articles: { expected: articles.expected, answered: yield* articles.index.search({ q: "the OR cat OR dog", limit: 1_000 }) },
        notes: { expected: notes.expected, answered: yield* notes.index.search({ q: "the OR cat OR dog", limit: 1_000 }) }
      }
    }))
    await runtime.dispose()
    expect(outcome.merged).toBeGreaterThan(0)
    expect(outcome.again).toBe(0)
    expect(outcome.listed).toEqual(["articles", "empty", "notes"])
    expect(outcome.restCursor).toBeNull()
    // Only `notes` had anything left to merge.
    expect(outcome.mergedAll).toBeGreaterThan(0)
    expect(outcome.articles.answered).toEqual(outcome.articles.expected)
    expect(outcome.notes.answered).toEqual(outcome.notes.expected)
  }, 120_000)
})
