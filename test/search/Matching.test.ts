/**
 * Goal: the index answers exactly what a brute-force scan of the documents answers.
 * Method: random seeded corpora (seed logged) indexed over a memory store; random boolean
 * queries (AND, OR, NOT, phrases, field:term, groups, keyword and numeric filters) compared
 * with the reference in `reference.ts` for the set of ids, the total and every score (1e-9
 * relative), for P = 1, 3 and 8 partitions; the three must also give bit-identical answers and
 * the same document and distinct-term counts.
 */
import { Effect } from "effect"
import { describe, expect } from "vitest"
import * as MemoryStore from "../../persistence/MemoryStore.js"
import type { SearchRequest, SearchResult } from "../../src/search/SearchMessages.js"
import { itEffect } from "../support/itEffect.js"
import { corpusSchema, random, randomCorpus, randomFilters, randomQuery, reference, seedOf } from "./reference.js"
import { expectSameAsReference, load, openIndex } from "./support.js"

const CORPUS_SIZE = 300
const QUERIES = 250

describe("search matching and BM25 against brute force", () => {
  itEffect("boolean queries, phrases and filters: same ids, totals and scores for P = 1, 3, 8", () =>
    Effect.gen(function*() {
      const seed = seedOf("matching")
      const rng = random(seed)
      const corpus = randomCorpus(rng, CORPUS_SIZE)
      const input = corpusSchema(1)
      const ref = reference(input, corpus)
      const indexes = []
      for (const partitions of [1, 3, 8]) {
        const index = yield* openIndex(corpusSchema(partitions), `p${partitions}`)
        yield* load(index, corpus)
        indexes.push(index)
      }
      // Distinct (field, term) pairs over the whole index, whatever the partitioning.
      const distinct = new Set<string>()
      for (const doc of ref.docs) {
        for (const [name, field] of doc.text) for (const term of field.tf.keys()) distinct.add(`${name}\u0000${term}`)
        for (const [name, values] of doc.keywords) for (const value of values) distinct.add(`${name}\u0000${value}`)
      }
      for (const index of indexes) expect(yield* index.stats()).toEqual({ docs: CORPUS_SIZE, terms: distinct.size })
      const documents = [...corpus.values()]
      let matched = 0
      for (let i = 0; i < QUERIES; i++) {
        const request: SearchRequest = { q: randomQuery(rng, 0, documents), filter: randomFilters(rng), limit: 1_000 }
        const answers: Array<SearchResult> = []
        for (const index of indexes) {
          const result = yield* index.search(request)
          expectSameAsReference(`seed ${seed} P=${index.schema.partitions}`, result, ref, input, request)
          answers.push(result)
        }
        expect(answers[1], `P=3 vs P=1 for ${request.q}`).toEqual(answers[0])
        expect(answers[2], `P=8 vs P=1 for ${request.q}`).toEqual(answers[0])
        if (answers[0]!.total > 0) matched++
      }
      // The generator must produce queries that match, or the comparison proves little.
      expect(matched).toBeGreaterThan(QUERIES / 4)
    }).pipe(Effect.provide(MemoryStore.layer)), 120_000)
})
