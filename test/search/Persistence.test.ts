/**
 * Goal: the index lives in the store. Acknowledged writes survive a restart, replaced and removed
 * documents never appear again, and the engine works the same through an entity's staged write
 * set as through direct writes.
 * Method: a random corpus large enough that common terms span sealed chunks and several cursor
 * pages (a small vocabulary over 3,000 documents), on LevelDB in a temp dir; queries compared
 * with the brute-force reference before a restart, after it (close and reopen the directory),
 * after random deletes and replacements, and after a second restart. A second case indexes
 * through `StoreView.staged` and commits `view.ops()` with `KeyValueStore.batch`, as the entity
 * runtime does, and compares with the same corpus indexed directly. Seeds are logged.
 */
import { Effect, Layer, ManagedRuntime } from "effect"
import { describe, expect, it } from "vitest"
import { KeyValueStore } from "../../persistence/KeyValueStore.js"
import * as LevelStore from "../../persistence/LevelStore.js"
import * as MemoryStore from "../../persistence/MemoryStore.js"
import * as StoreView from "../../persistence/StoreView.js"
import * as IndexSchema from "../../src/search/IndexSchema.js"
import * as SearchIndex from "../../src/search/SearchIndex.js"
import * as SearchPartition from "../../src/search/SearchPartition.js"
import type { Document, SearchRequest } from "../../src/search/SearchMessages.js"
import { itEffect } from "../support/itEffect.js"
import { tempDir } from "../support/tempDir.js"
import {
  corpusSchema,
  random,
  randomCorpus,
  randomDocument,
  randomFilters,
  randomQuery,
  seedOf
} from "./reference.js"
import { compareAll as compareWith, load, mutateAtRandom, openIndex } from "./support.js"

/**
 * One partition for the LevelDB case: 3,000 documents put ~2,800 postings of the commonest
 * terms in it, more than one cursor page (16 chunks of 128), so page boundaries are crossed.
 */
const PARTITIONS = 1

const requestsFor = (rng: ReturnType<typeof random>, corpus: ReadonlyMap<string, Document>, count: number): Array<SearchRequest> => {
  const documents = [...corpus.values()]
  return Array.from({ length: count }, (): SearchRequest => {
    const kind = rng.int(4)
    if (kind === 0) return { q: randomQuery(rng, 0, documents), filter: randomFilters(rng), limit: 50 }
    if (kind === 1) return { q: randomQuery(rng, 1, documents), limit: 20, offset: rng.int(30) }
    if (kind === 2) return { q: "the OR cat OR dog", limit: 1_000 }
    return { q: rng.pick(["ca", "ru", "ste"]), prefix: true, fuzzy: rng.int(2), limit: 100 }
  })
}

describe("search persistence on LevelDB", () => {
  it("survives restarts, deletes and replacements", async () => {
    const seed = seedOf("persistence")
    const rng = random(seed)
    const directory = tempDir("search-level")
    const corpus = randomCorpus(rng, 3_000)
    const requests = requestsFor(rng, corpus, 60)
    const open = () => ManagedRuntime.make(Layer.fresh(LevelStore.layer({ directory })))

    let runtime = open()
    const before = await runtime.runPromise(Effect.gen(function*() {
      const index = yield* openIndex(corpusSchema(PARTITIONS))
      yield* load(index, corpus)
      return yield* compareWith(`seed ${seed} before restart`, index, corpus, requests)
    }))
    await runtime.dispose()

    runtime = open()
    const after = await runtime.runPromise(Effect.gen(function*() {
      const index = yield* openIndex(corpusSchema(PARTITIONS))
      return yield* compareWith(`seed ${seed} after restart`, index, corpus, requests)
    }))
    expect(after).toEqual(before)

    // Deletes and replacements, including documents deleted then added again.
    const mutated = new Map(corpus)
    await runtime.runPromise(Effect.gen(function*() {
      const index = yield* openIndex(corpusSchema(PARTITIONS))
      yield* mutateAtRandom(index, mutated, rng, 400, 0.5)
      // A batch that replaces the same id twice: the last one wins.
      const last = randomDocument(rng)
      yield* index.putMany([{ id: "d1", document: randomDocument(rng) }, { id: "d1", document: last }])
      mutated.set("d1", last)
      expect(yield* index.get("d1")).toEqual(last)
      const stats = yield* index.stats()
      expect(stats.docs).toBe(mutated.size)
      yield* compareWith(`seed ${seed} after mutations`, index, mutated, requests)
    }))
    await runtime.dispose()

    runtime = open()
    await runtime.runPromise(Effect.gen(function*() {
      const index = yield* openIndex(corpusSchema(PARTITIONS))
      yield* compareWith(`seed ${seed} after mutations and restart`, index, mutated, requests)
      for (const id of ["d0", "d5", "d3100"]) expect(yield* index.get(id)).toEqual(mutated.get(id))
    }))
    await runtime.dispose()
  }, 300_000)

  it("refuses to open data written under another definition", async () => {
    const directory = tempDir("search-mismatch")
    const runtime = ManagedRuntime.make(Layer.fresh(LevelStore.layer({ directory })))
    const error = await runtime.runPromise(Effect.gen(function*() {
      const index = yield* openIndex({ fields: { body: { type: "text" } }, partitions: 1 })
      yield* index.put("a", { body: "hello" })
      const other = yield* openIndex({ fields: { body: { type: "text", stopWords: "english" } }, partitions: 1 })
      return yield* Effect.flip(other.search({ q: "hello" }))
    }))
    await runtime.dispose()
    expect(error).toMatchObject({ _tag: "SchemaMismatch", field: "schema" })
  })
})

describe("search through an entity's staged write set", () => {
  itEffect("staged views committed with KeyValueStore.batch give the same index as direct writes", () =>
    Effect.gen(function*() {
      const seed = seedOf("staged")
      const rng = random(seed)
      const corpus = randomCorpus(rng, 400)
      const store = yield* KeyValueStore
      const partitions = 2
      const schema = yield* IndexSchema.make(corpusSchema(partitions))
      const engine = SearchPartition.make(schema)
      const entries = [...corpus]
      // Messages of 50 documents, each staged and committed as one batch per partition.
      for (let at = 0; at < entries.length; at += 50) {
        for (let p = 0; p < partitions; p++) {
          const slice = entries.slice(at, at + 50).filter(([id]) => SearchIndex.partitionOf(id, partitions) === p)
          if (slice.length === 0) continue
          const view = yield* StoreView.staged(store, `staged-${p}`)
          yield* engine.indexDocuments(view, slice.map(([id, document]) => ({ id, document })))
          yield* store.batch(`staged-${p}`, view.ops())
        }
      }
      // A removal and a replacement, staged too.
      const view = yield* StoreView.staged(store, `staged-${SearchIndex.partitionOf("d3", partitions)}`)
      expect(yield* engine.removeDocument(view, "d3")).toBe(true)
      yield* store.batch(view.partition, view.ops())
      const staged = yield* SearchIndex.make(schema, Array.from({ length: partitions }, (_, p) => SearchIndex.localClient(engine, StoreView.direct(store, `staged-${p}`))))
      const direct = yield* openIndex(corpusSchema(partitions), "direct")
      yield* load(direct, corpus)
      yield* direct.remove("d3")
      const mutated = new Map(corpus)
      mutated.delete("d3")
      const requests = requestsFor(rng, corpus, 40)
      const fromStaged = yield* compareWith(`seed ${seed} staged`, staged, mutated, requests, partitions)
      const fromDirect = yield* compareWith(`seed ${seed} direct`, direct, mutated, requests, partitions)
      expect(fromStaged).toEqual(fromDirect)
    }).pipe(Effect.provide(MemoryStore.layer)), 120_000)
})
