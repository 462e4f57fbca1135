/**
 * Shared setup of the search tests: an index over P partitions of a memory or LevelDB store,
 * written through direct views, and comparison helpers against the brute-force reference.
 */
import { expect } from "vitest"
import { Effect } from "effect"
import { KeyValueStore, type KeyValueStoreShape } from "../../persistence/KeyValueStore.js"
import * as StoreView from "../../persistence/StoreView.js"
import * as IndexSchema from "../../src/search/IndexSchema.js"
import * as SearchIndex from "../../src/search/SearchIndex.js"
import * as SearchPartition from "../../src/search/SearchPartition.js"
import type { Document, SearchRequest, SearchResult } from "../../src/search/SearchMessages.js"
import { corpusSchema, type Random, randomDocument, rank, reference, type Reference, referenceSearch } from "./reference.js"

/** The views of an index's partitions (`search-0` ... `search-{P-1}`). */
export const viewsOf = (store: KeyValueStoreShape, partitions: number, prefix = "search") =>
  Array.from({ length: partitions }, (_, p) => StoreView.direct(store, `${prefix}-${p}`))

/** Opens an index over the store in context (by default a small cache, to exercise eviction too). */
export const openIndex = (input: IndexSchema.IndexSchemaInput, prefix = "search", cache: number | SearchPartition.SearchCache = 256 * 1024) =>
  Effect.gen(function*() {
    const store = yield* KeyValueStore
    const schema = yield* IndexSchema.make(input)
    const shared = typeof cache === "number" ? SearchPartition.makeCache(cache) : cache
    return yield* SearchIndex.fromViews(schema, viewsOf(store, schema.partitions, prefix), { cache: shared })
  })

/** Writes a corpus through `putMany`. */
export const load = (index: SearchIndex.SearchIndex, corpus: ReadonlyMap<string, Document>) =>
  index.putMany([...corpus].map(([id, document]) => ({ id, document })))

/** Relative difference, for score comparisons. */
export const relative = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b), 1e-300)

/**
 * Checks a search answer against the reference: same total, same set of ids (when all fit in
 * the page), every score within 1e-9 relative, and the page in (score, id) order.
 */
export const expectSameAsReference = (
  label: string,
  result: SearchResult,
  ref: Reference,
  input: IndexSchema.IndexSchemaInput,
  request: SearchRequest
) => {
  const expected = referenceSearch(ref, input, request)
  expect(result.total, `${label}: total of ${JSON.stringify(request)}`).toBe(expected.size)
  const ranked = rank(expected)
  const limit = request.limit ?? 10
  const offset = request.offset ?? 0
  if (expected.size <= limit && offset === 0) {
    expect(new Set(result.hits.map((hit) => hit.id)), `${label}: ids of ${JSON.stringify(request)}`).toEqual(new Set(expected.keys()))
  }
  for (const hit of result.hits) {
    const want = expected.get(hit.id)
    expect(want, `${label}: ${hit.id} should not match ${JSON.stringify(request)}`).toBeDefined()
    expect(relative(hit.score, want!), `${label}: score of ${hit.id} for ${JSON.stringify(request)}: ${hit.score} vs ${want}`).toBeLessThan(1e-9)
  }
  for (let i = 1; i < result.hits.length; i++) {
    const [a, b] = [result.hits[i - 1]!, result.hits[i]!]
    expect(a.score > b.score || (a.score === b.score && a.id < b.id), `${label}: order of ${a.id}, ${b.id}`).toBe(true)
  }
  // The page is the reference's page, up to scores that differ in the last bits.
  const page = ranked.slice(offset, offset + limit)
  expect(result.hits.length).toBe(page.length)
  page.forEach((hit, i) => expect(relative(hit.score, result.hits[i]!.score)).toBeLessThan(1e-9))
}

/**
 * Runs `requests` against an index of the random-corpus schema over `partitions` and checks each
 * answer against the reference of `corpus`; answers the results, to compare runs with each other.
 */
export const compareAll = (
  label: string,
  index: SearchIndex.SearchIndex,
  corpus: ReadonlyMap<string, Document>,
  requests: ReadonlyArray<SearchRequest>,
  partitions = 1
) =>
  Effect.gen(function*() {
    const input = corpusSchema(partitions)
    const ref = reference(input, corpus)
    const answers = []
    for (const request of requests) {
      const result = yield* index.search(request)
      expectSameAsReference(label, result, ref, input, request)
      answers.push(result)
    }
    return answers
  })

/**
 * `count` random writes to documents `d0`..`d3199` of `index`, mirrored in `mutated`: a removal
 * with probability `removeShare` (answering whether the document existed), else a put of a new
 * random document (answering whether it replaced one).
 */
export const mutateAtRandom = (index: SearchIndex.SearchIndex, mutated: Map<string, Document>, rng: Random, count: number, removeShare: number) =>
  Effect.gen(function*() {
    for (let i = 0; i < count; i++) {
      const id = `d${rng.int(3_200)}`
      if (rng.next() < removeShare) {
        expect(yield* index.remove(id)).toBe(mutated.delete(id))
      } else {
        const document = randomDocument(rng)
        const outcome = yield* index.put(id, document)
        expect(outcome.replaced).toBe(mutated.has(id))
        mutated.set(id, document)
      }
    }
  })
