/**
 * Goal: search through entities answers exactly what the engine answers over local views, keeps
 * every acknowledged write across a restart of the node, and guards index definitions.
 * Method: a node on LevelDB in a temp dir (entity runtime, 8 shards, every one local) hosting the
 * Search entities; for every partition count from 1 to 8, a random corpus indexed through
 * `Search.define`/`open`, queries compared with the brute-force reference (ids, totals, scores to
 * 1e-9); the node is closed and reopened over the same directory and the queries run again;
 * deletes and replacements are checked after the restart. Placement: the P partitions of an
 * index are on P different shards (P = 8 takes all of them), and more partitions than shards is
 * refused. Definitions: a conflicting one is `IndexExists`, an invalid one `InvalidSchema` that
 * defines nothing, racing first documents agree on one definition.
 */
import { Effect, Exit, Layer, ManagedRuntime } from "effect"
import { describe, expect, it } from "vitest"
import * as EntityClient from "../../actors/EntityClient.js"
import * as EntityRuntime from "../../actors/EntityRuntime.js"
import { defaults, RuntimeConfig } from "../../actors/RuntimeConfig.js"
import * as LevelStore from "../../persistence/LevelStore.js"
import { Search } from "../../src/search/Search.js"
import * as SearchModule from "../../src/search/Search.js"
import * as SearchEntity from "../../src/search/SearchEntity.js"
import type { Document, SearchRequest } from "../../src/search/SearchMessages.js"
import { tempDir } from "../support/tempDir.js"
import { corpusSchema, random, randomCorpus, randomFilters, randomQuery, reference, seedOf } from "./reference.js"
import { expectSameAsReference } from "./support.js"

const SHARDS = 8

/** A node hosting the Search entities on LevelDB in `directory`. */
const openNode = (directory: string) =>
  ManagedRuntime.make(
    Layer.mergeAll(SearchEntity.layer, SearchModule.layer).pipe(
      Layer.provideMerge(EntityRuntime.layerLocal),
      Layer.provideMerge(LevelStore.layer({ directory })),
      Layer.provideMerge(Layer.succeed(RuntimeConfig)({ ...defaults, shardCount: SHARDS })),
      Layer.fresh
    )
  )

const requestsFor = (rng: ReturnType<typeof random>, corpus: ReadonlyMap<string, Document>, count: number): Array<SearchRequest> => {
  const documents = [...corpus.values()]
  return Array.from({ length: count }, (): SearchRequest => {
    const kind = rng.int(3)
    if (kind === 0) return { q: randomQuery(rng, 0, documents), filter: randomFilters(rng), limit: 50 }
    if (kind === 1) return { q: randomQuery(rng, 1, documents), limit: 20, offset: rng.int(10) }
    return { q: rng.pick(["ca", "ru", "ste"]), prefix: true, fuzzy: rng.int(2), limit: 100 }
  })
}

const compareWith = (label: string, partitions: number, corpus: ReadonlyMap<string, Document>, requests: ReadonlyArray<SearchRequest>) =>
  Effect.gen(function*() {
    const input = corpusSchema(partitions)
    const ref = reference(input, corpus)
    const index = yield* Effect.flatMap(Search, (search) => search.open("corpus"))
    for (const request of requests) expectSameAsReference(label, yield* index.search(request), ref, input, request)
    const stats = yield* index.stats()
    expect(stats.docs, `${label}: docs`).toBe(corpus.size)
  })

describe("Search entities", () => {
  it.each([1, 2, 3, 4, 5, 6, 7, 8])("answer as the reference through %i partition entities, before and after a restart", async (partitions) => {
    const seed = seedOf(`search-entity-${partitions}`)
    const rng = random(seed)
    const directory = tempDir("search-entity")
    const corpus = randomCorpus(rng, 400)
    const requests = requestsFor(rng, corpus, 30)
    const compare = (label: string, corpus: ReadonlyMap<string, Document>, requests: ReadonlyArray<SearchRequest>) =>
      compareWith(`P=${partitions}, seed ${seed}, ${label}`, partitions, corpus, requests)

    const first = openNode(directory)
    await first.runPromise(Effect.gen(function*() {
      const search = yield* Search
      expect(yield* search.define("corpus", corpusSchema(partitions))).toEqual({ created: true })
      const index = yield* search.open("corpus")
      const outcomes = yield* index.putMany([...corpus].map(([id, document]) => ({ id, document })))
      expect(outcomes.every((outcome) => !outcome.replaced)).toBe(true)
      yield* compare("before restart", corpus, requests)
    }))
    await first.dispose()

    const second = openNode(directory)
    const changed = new Map(corpus)
    await second.runPromise(Effect.gen(function*() {
      yield* compare("after restart", corpus, requests)
      const index = yield* Effect.flatMap(Search, (search) => search.open("corpus"))
      for (const id of ["d1", "d2", "d3", "d50", "d390"]) {
        expect(yield* index.remove(id)).toBe(true)
        changed.delete(id)
      }
      expect(yield* index.remove("d1")).toBe(false)
      const replacement = { title: "zebra quartz", body: "entirely different words", price: 7 }
      for (const id of ["d10", "d11", "d399"]) {
        expect(yield* index.put(id, replacement)).toEqual({ id, replaced: true })
        changed.set(id, replacement)
      }
      expect(yield* index.get("d10")).toEqual(replacement)
      expect(yield* index.get("d1")).toBeUndefined()
      yield* compare("after changes", changed, [...requests, { q: "zebra quartz" }, { q: "title:zebra", filter: ["price:7"] }])
    }))
    await second.dispose()

    const third = openNode(directory)
    await third.runPromise(compare("after a second restart", changed, requests))
    await third.dispose()
  })

  it("place the partitions of an index on shards of their own", async () => {
    const node = openNode(tempDir("search-placement"))
    await node.runPromise(Effect.gen(function*() {
      const search = yield* Search
      const runtime = yield* EntityRuntime.EntityRuntime
      const catalog = yield* EntityClient.make(SearchEntity.Catalog)
      for (let partitions = 1; partitions <= SHARDS; partitions++) {
        const name = `placed-${partitions}`
        yield* search.define(name, { fields: { title: { type: "text" } }, partitions })
        const described = (yield* catalog.ask(name, "Describe"))!
        expect(described.partitions).toHaveLength(partitions)
        const shards = new Set(described.partitions.map((id) => runtime.shardOf(SearchEntity.PartitionEntity.type, id)))
        expect(shards.size, `${name}: ${described.partitions.join(", ")}`).toBe(partitions)
        // The ids are the deterministic placement any process computes.
        expect(described.partitions).toEqual(yield* SearchEntity.placement(name, partitions, SHARDS))
        // Documents reach every partition and come back from it.
        const index = yield* search.open(name)
        yield* index.putMany(Array.from({ length: 40 }, (_, i) => ({ id: `doc-${i}`, document: { title: `word${i % 3}` } })))
        expect((yield* index.search({ q: "word1", limit: 100 })).total).toBe(13)
      }
      const tooMany = yield* Effect.flip(search.define("crowded", { fields: { title: { type: "text" } }, partitions: SHARDS + 1 }))
      expect(tooMany).toMatchObject({ _tag: "InvalidSchema", field: "partitions" })
      expect((yield* Effect.flip(search.open("crowded")))._tag).toBe("IndexNotFound")
    }))
    await node.dispose()
  })

  it("keep one definition per index and refuse bad ones, writing nothing", async () => {
    const node = openNode(tempDir("search-definitions"))
    await node.runPromise(Effect.gen(function*() {
      const search = yield* Search
      const definition = { fields: { title: { type: "text" as const } }, partitions: 2 }
      expect(yield* search.define("books", definition)).toEqual({ created: true })
      expect(yield* search.define("books", definition)).toEqual({ created: false })
      const conflict = yield* Effect.flip(search.define("books", { ...definition, partitions: 3 }))
      expect(conflict._tag).toBe("IndexExists")

      const invalid = yield* Effect.flip(search.define("broken", { fields: { title: { type: "bogus" as never } } }))
      expect(invalid).toMatchObject({ _tag: "InvalidSchema", field: "fields.title.type" })
      const missing = yield* Effect.flip(search.open("broken"))
      expect(missing).toMatchObject({ _tag: "IndexNotFound", index: "broken" })

      const bad = yield* Effect.flip(search.openOrInfer("inferred", { title: "x", nested: { a: 1 } }))
      expect(bad).toMatchObject({ _tag: "InvalidDocument", field: "nested" })
      expect((yield* Effect.exit(search.open("inferred")))._tag).toBe("Failure")

      // Two first documents race with different fields: both writers end up on one definition.
      const [a, b] = yield* Effect.all([
        search.openOrInfer("raced", { title: "one" }),
        search.openOrInfer("raced", { year: 1999 })
      ], { concurrency: 2 })
      expect(a.schema.fingerprint).toBe(b.schema.fingerprint)

      const books = yield* search.open("books")
      const tooMany = yield* Effect.flip(books.search({ q: "x", limit: 1_001 }))
      expect(tooMany).toMatchObject({ _tag: "InvalidQuery", field: "limit" })
      const unknown = yield* Effect.flip(books.put("1", { title: "ok", extra: "no" }))
      expect(unknown).toMatchObject({ _tag: "InvalidDocument", field: "extra" })
      expect(yield* books.get("1")).toBeUndefined()
      expect((yield* books.stats()).docs).toBe(0)
    }).pipe(Effect.exit).pipe(Effect.map((exit) => {
      if (Exit.isFailure(exit)) throw new Error(String(exit.cause))
    })))
    await node.dispose()
  })
})
