/**
 * Goal: an independent engine agrees with ours on which documents match plain term queries.
 * Method: the same seeded small corpus indexed by MiniSearch (in memory) and by shardfeed (P = 3,
 * memory store); single terms, AND of two or three terms, and OR of two terms, compared as sets
 * of ids. Once with MiniSearch's own defaults on ASCII text, once with MiniSearch given our
 * analysis (diacritic folding, per-field stop words) for a corpus that needs it.
 */
import { Effect } from "effect"
import MiniSearch from "minisearch"
import { describe, expect } from "vitest"
import * as MemoryStore from "../../persistence/MemoryStore.js"
import * as Analyzer from "../../src/search/Analyzer.js"
import type { IndexSchemaInput } from "../../src/search/IndexSchema.js"
import type { Document } from "../../src/search/SearchMessages.js"
import { itEffect } from "../support/itEffect.js"
import { corpusSchema, random, randomCorpus, seedOf, VOCABULARY } from "./reference.js"
import { load, openIndex } from "./support.js"

interface Row {
  readonly id: string
  readonly title: string
  readonly body: string
}

const rowsOf = (corpus: ReadonlyMap<string, Document>): Array<Row> =>
  [...corpus].map(([id, document]) => ({ id, title: String(document.title ?? ""), body: String(document.body ?? "") }))

type Query = { readonly words: ReadonlyArray<string>; readonly combine: "AND" | "OR" }

const randomQueries = (rng: ReturnType<typeof random>, words: ReadonlyArray<string>, count: number): Array<Query> =>
  Array.from({ length: count }, (): Query => {
    const kind = rng.int(3)
    if (kind === 0) return { words: [rng.zipf(words)], combine: "AND" }
    if (kind === 1) return { words: Array.from({ length: 2 + rng.int(2) }, () => rng.zipf(words)), combine: "AND" }
    return { words: [rng.zipf(words), rng.zipf(words)], combine: "OR" }
  })

const compare = (input: IndexSchemaInput, corpus: ReadonlyMap<string, Document>, mini: MiniSearch<Row>, queries: ReadonlyArray<Query>, label: string) =>
  Effect.gen(function*() {
    const index = yield* openIndex(input, "mini")
    yield* load(index, corpus)
    mini.addAll(rowsOf(corpus))
    let matched = 0
    for (const query of queries) {
      const expected = new Set(mini.search(query.words.join(" "), { combineWith: query.combine }).map((result) => String(result.id)))
      const q = query.words.join(query.combine === "OR" ? " OR " : " ")
      const result = yield* index.search({ q, limit: 1_000 })
      expect(new Set(result.hits.map((hit) => hit.id)), `${label}: ${q}`).toEqual(expected)
      expect(result.total).toBe(expected.size)
      if (expected.size > 0) matched++
    }
    expect(matched).toBeGreaterThan(queries.length / 3)
  })

describe("agreement with MiniSearch on plain term queries", () => {
  itEffect("ASCII corpus, MiniSearch defaults", () =>
    Effect.gen(function*() {
      const seed = seedOf("minisearch defaults")
      const rng = random(seed)
      const ascii = VOCABULARY.filter((word) => /^[a-z]+$/.test(word))
      const corpus = new Map<string, Document>(Array.from({ length: 200 }, (_, i) => [
        `m${i}`,
        {
          title: Array.from({ length: 1 + rng.int(5) }, () => rng.zipf(ascii)).join(" "),
          body: Array.from({ length: rng.int(30) }, () => rng.zipf(ascii)).join(rng.next() < 0.5 ? " " : ", ")
        }
      ]))
      const mini = new MiniSearch<Row>({ fields: ["title", "body"] })
      yield* compare({ fields: { title: { type: "text" }, body: { type: "text" } }, partitions: 3 }, corpus, mini, randomQueries(rng, ascii, 150), `seed ${seed}`)
    }).pipe(Effect.provide(MemoryStore.layer)))

  itEffect("accents and stop words, MiniSearch given the same analysis", () =>
    Effect.gen(function*() {
      const seed = seedOf("minisearch analysis")
      const rng = random(seed)
      const input = corpusSchema(3)
      const corpus = randomCorpus(rng, 200)
      const title = Analyzer.make()
      const body = Analyzer.make({ stopWords: "english" })
      const mini = new MiniSearch<Row>({
        fields: ["title", "body"],
        tokenize: (text) => [...title.tokens(text)],
        processTerm: (term, field) => (field === "body" && body.isStopWord(term) ? null : term)
      })
      const words = VOCABULARY.filter((word) => !body.isStopWord(title.tokens(word)[0]!))
      yield* compare(input, corpus, mini, randomQueries(rng, words, 150), `seed ${seed}`)
    }).pipe(Effect.provide(MemoryStore.layer)))
})
