/**
 * Goal: prefix and fuzzy matching find exactly the terms a brute-force edit-distance scan finds,
 * through both of the engine's paths (a lexicon cached in memory, and a walk over the store when
 * the lexicon does not fit the cache).
 * Method: (1) the two lexicon walks against a brute-force Levenshtein scan on random term lists,
 * including multi-byte and astral characters; (2) random prefix and fuzzy queries (options and
 * `word*` / `word~N` syntax) on a random corpus, against the brute-force reference, once with a
 * roomy cache and once with a cache too small for any lexicon. Seeds are logged.
 */
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { KeyValueStore } from "../../persistence/KeyValueStore.js"
import * as MemoryStore from "../../persistence/MemoryStore.js"
import * as StoreView from "../../persistence/StoreView.js"
import { utf8 } from "../../src/search/internal/codec.js"
import { type ExpansionCounters, fuzzyInLexicon, fuzzyInStore, loadLexicon, prefixInLexicon, prefixInStore } from "../../src/search/internal/expand.js"
import * as Layout from "../../src/search/internal/layout.js"
import type { SearchRequest } from "../../src/search/SearchMessages.js"
import { itEffect } from "../support/itEffect.js"
import { corpusSchema, editDistance, random, randomCorpus, reference, seedOf, VOCABULARY } from "./reference.js"
import { expectSameAsReference, load, openIndex } from "./support.js"

const ALPHABET = ["a", "b", "c", "é", "ß", "😀", "z"]

const randomTerm = (rng: ReturnType<typeof random>) => Array.from({ length: 1 + rng.int(7) }, () => rng.pick(ALPHABET)).join("")

describe("lexicon walks against brute force", () => {
  itEffect("prefix and fuzzy (distance 1 and 2) over random term lists, in memory and in the store", () =>
    Effect.gen(function*() {
      const seed = seedOf("lexicon walks")
      const rng = random(seed)
      const store = yield* KeyValueStore
      const namespaces = Layout.namespaces("walks")
      for (let round = 0; round < 5; round++) {
        const view = StoreView.direct(store, `walks-${round}`)
        const terms = [...new Set(Array.from({ length: 300 + rng.int(300) }, () => randomTerm(rng)))]
        for (const term of terms) yield* view.put(namespaces.lexicon, utf8(Layout.termId(1, term)), new Uint8Array(0))
        // A term of another field must never show up.
        yield* view.put(namespaces.lexicon, utf8(Layout.termId(2, "abc")), new Uint8Array(0))
        const lexicon = (yield* loadLexicon(view, namespaces, 1, 1 << 30))!
        expect(lexicon.count).toBe(terms.length)
        for (let i = 0; i < 40; i++) {
          const query = randomTerm(rng)
          const distance = 1 + rng.int(2)
          const expected = terms.filter((term) => editDistance(query, term) <= distance).sort()
          const limits = { max: 10_000, scanMax: 1_000_000 }
          const counters: ExpansionCounters = { examined: 0, scans: 0 }
          expect([...(fuzzyInLexicon(lexicon, query, distance, limits, counters) as ReadonlyArray<string>)].sort(), `${query}~${distance}`).toEqual(expected)
          // The walk prunes: it must not examine every term for every query.
          expect(counters.examined).toBeLessThanOrEqual(terms.length)
          expect([...(yield* fuzzyInStore(view, namespaces, 1, query, distance, limits))].sort(), `store ${query}~${distance}`).toEqual(expected)
          const prefix = Array.from(query).slice(0, 1 + rng.int(2)).join("")
          const withPrefix = terms.filter((term) => term.startsWith(prefix)).sort()
          expect([...(prefixInLexicon(lexicon, prefix, 10_000) as ReadonlyArray<string>)].sort(), `${prefix}*`).toEqual(withPrefix)
          expect([...(yield* prefixInStore(view, namespaces, 1, prefix, 10_000))].sort(), `store ${prefix}*`).toEqual(withPrefix)
        }
      }
    }).pipe(Effect.provide(MemoryStore.layer)))

  it("distance counts code points, not UTF-16 units", () => {
    expect(editDistance("😀a", "a")).toBe(1)
  })
})

const QUERIES = 150

const randomExpansion = (rng: ReturnType<typeof random>): SearchRequest => {
  const word = rng.zipf(VOCABULARY)
  const fuzzy = rng.int(3)
  switch (rng.int(4)) {
    case 0:
      return { q: word.slice(0, 1 + rng.int(3)), prefix: true, limit: 1_000 }
    case 1:
      return { q: word, fuzzy: Math.max(1, fuzzy), limit: 1_000 }
    case 2:
      return { q: `${word.slice(0, 2)}* ${rng.zipf(VOCABULARY)}~${fuzzy}`, limit: 1_000 }
    default:
      return { q: `${word} OR ${rng.zipf(VOCABULARY)}`, prefix: rng.next() < 0.5, fuzzy, limit: 1_000, filter: rng.next() < 0.3 ? ["price:>40"] : [] }
  }
}

describe("prefix and fuzzy search against brute force", () => {
  for (const [label, cacheBytes] of [["lexicon cached", 16 * 1024 * 1024], ["lexicon walked in the store", 4 * 1024]] as const) {
    itEffect(`random prefix and fuzzy queries, P = 3, ${label}`, () =>
      Effect.gen(function*() {
        const seed = seedOf(`expansion, ${label}`)
        const rng = random(seed)
        const corpus = randomCorpus(rng, 250)
        const input = corpusSchema(3)
        const ref = reference(input, corpus)
        const index = yield* openIndex(input, "expansion", cacheBytes)
        yield* load(index, corpus)
        for (let i = 0; i < QUERIES; i++) {
          const request = randomExpansion(rng)
          expectSameAsReference(`seed ${seed}`, yield* index.search(request), ref, input, request)
        }
      }).pipe(Effect.provide(MemoryStore.layer)), 120_000)
  }
})
