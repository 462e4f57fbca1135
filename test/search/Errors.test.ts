/**
 * Goal: every bad input gets a typed error whose `field` names what is wrong, and nothing is
 * written; the partition messages and errors survive a Schema round trip (they cross processes).
 * Method: one small index on a memory store; each bad request, document or definition in turn,
 * checking the error's tag and field, then that the index is unchanged.
 */
import { Cause, Effect, Exit, Schema } from "effect"
import { describe, expect, it } from "vitest"
import { KeyValueStore } from "../../persistence/KeyValueStore.js"
import * as MemoryStore from "../../persistence/MemoryStore.js"
import * as IndexSchema from "../../src/search/IndexSchema.js"
import { InvalidQuery } from "../../src/search/SearchError.js"
import * as SearchIndex from "../../src/search/SearchIndex.js"
import * as SearchPartition from "../../src/search/SearchPartition.js"
import * as SearchMessages from "../../src/search/SearchMessages.js"
import type { Document, SearchRequest } from "../../src/search/SearchMessages.js"
import { itEffect } from "../support/itEffect.js"
import { openIndex, viewsOf } from "./support.js"

const input: IndexSchema.IndexSchemaInput = {
  fields: { title: { type: "text" }, body: { type: "text", stopWords: "english" }, tags: { type: "keyword" }, price: { type: "numeric" } },
  partitions: 3,
  limits: { documentBytesMax: 2_000, expansionsMax: 5, dictionaryScanMax: 8, batchDocumentsMax: 10 }
}

/** The typed failure of an effect (fails the test on success or a defect). */
const failure = <A, E>(effect: Effect.Effect<A, E>, label = "") =>
  Effect.map(Effect.exit(effect), (exit) => {
    if (Exit.isSuccess(exit)) throw new Error(`expected a failure: ${label} ${JSON.stringify(exit.value)}`)
    const error = Cause.findErrorOption(exit.cause)
    if (error._tag === "None") throw new Error(`expected a typed failure: ${Cause.pretty(exit.cause)}`)
    return error.value as E & { readonly _tag: string; readonly field: string }
  })

const seed = (index: SearchIndex.SearchIndex) =>
  index.putMany(Array.from({ length: 30 }, (_, i) => ({
    id: `doc${i}`,
    document: { title: `title ${i % 7} apple${i} cat`, body: "the cat sat on the mat", tags: ["news"], price: i }
  })))

const badQueries: ReadonlyArray<readonly [string, SearchRequest, string]> = [
  ["unbalanced quote", { q: "\"black cat" }, "q"],
  ["dangling OR at the end", { q: "cat OR" }, "q"],
  ["dangling OR at the start", { q: "OR cat" }, "q"],
  ["double OR", { q: "cat OR OR dog" }, "q"],
  ["unbalanced (", { q: "(cat dog" }, "q"],
  ["unbalanced )", { q: "cat dog)" }, "q"],
  ["empty query", { q: "   " }, "q"],
  ["empty group", { q: "cat ()" }, "q"],
  ["only exclusions", { q: "-cat -dog" }, "q"],
  ["exclusion as an OR alternative", { q: "cat OR -dog" }, "q"],
  ["lone minus", { q: "cat - dog" }, "q"],
  ["unknown field in field:term", { q: "author:smith" }, "q"],
  ["numeric field in field:term", { q: "price:5" }, "q"],
  ["fuzzy on a keyword field", { q: "tags:news~1" }, "q"],
  ["fuzzy distance 3 in the query", { q: "cat~3" }, "q"],
  ["field on a group", { q: "title:(cat dog)" }, "q"],
  ["prefix matching too many terms", { q: "apple", prefix: true }, "q"],
  ["query too deep", { q: "((((((((((cat))))))))))" }, "q"],
  ["fuzzy distance 3", { q: "cat", fuzzy: 3 }, "fuzzy"],
  ["fuzzy scanning too much of the dictionary", { q: "applez", fuzzy: 1 }, "fuzzy"],
  ["limit above 1,000", { q: "cat", limit: 1_001 }, "limit"],
  ["limit 0", { q: "cat", limit: 0 }, "limit"],
  ["negative offset", { q: "cat", offset: -1 }, "offset"],
  ["offset past the result window", { q: "cat", offset: 9_500, limit: 1_000 }, "offset"],
  ["unknown field in fields", { q: "cat", fields: ["author"] }, "fields"],
  ["keyword field in fields", { q: "cat", fields: ["tags"] }, "fields"],
  ["bad boost in fields", { q: "cat", fields: ["title^-1"] }, "fields"],
  ["unknown field in a filter", { q: "cat", filter: ["author:smith"] }, "filter"],
  ["text field in a filter", { q: "cat", filter: ["title:cat"] }, "filter"],
  ["malformed numeric filter", { q: "cat", filter: ["price:cheap"] }, "filter"],
  ["filter without a field", { q: "cat", filter: ["news"] }, "filter"]
]

const badDocuments: ReadonlyArray<readonly [string, string, unknown, string, string]> = [
  ["unknown field", "x1", { title: "a", author: "b" }, "InvalidDocument", "author"],
  ["text field holding a number", "x2", { title: 5 }, "InvalidDocument", "title"],
  ["numeric field holding a string", "x3", { price: "5" }, "InvalidDocument", "price"],
  ["numeric field holding Infinity", "x4", { price: Number.POSITIVE_INFINITY }, "InvalidDocument", "price"],
  ["keyword with U+0000", "x5", { tags: ["a\u0000b"] }, "InvalidDocument", "tags"],
  ["keyword holding a number", "x6", { tags: [1] }, "InvalidDocument", "tags"],
  ["not an object", "x7", ["title"], "InvalidDocument", "document"],
  ["empty id", "", { title: "a" }, "InvalidDocument", "id"],
  ["document over the size limit", "x8", { body: "word ".repeat(1_000) }, "DocumentTooLarge", "document"]
]

describe("bad input gets a typed error naming the field", () => {
  itEffect("queries, documents and batches; nothing is written", () =>
    Effect.gen(function*() {
      const index = yield* openIndex(input, "errors")
      yield* seed(index)
      const before = yield* index.stats()
      for (const [label, request, field] of badQueries) {
        const error = yield* failure(index.search(request), label)
        expect({ label, tag: error._tag, field: error.field }).toEqual({ label, tag: "InvalidQuery", field })
        expect(error.message.length).toBeGreaterThan(5)
      }
      for (const [label, id, document, tag, field] of badDocuments) {
        const error = yield* failure(index.put(id, document as Document), label)
        expect({ label, tag: error._tag, field: error.field }).toEqual({ label, tag, field })
        if (id !== "") expect(yield* index.get(id)).toBeUndefined()
      }
      // A batch with one bad document writes none of them, in any partition: no partition is
      // even asked to index.
      const good = Array.from({ length: 12 }, (_, i) => ({ id: `ok${i}`, document: { title: "fine" } as Document }))
      const store = yield* KeyValueStore
      const schema = yield* IndexSchema.make(input)
      const engine = SearchPartition.make(schema)
      let calls = 0
      const clients = viewsOf(store, schema.partitions, "counted").map((view) => {
        const client = SearchIndex.localClient(engine, view)
        return { ...client, index: (documents: Parameters<typeof client.index>[0]) => Effect.suspend(() => (calls++, client.index(documents))) }
      })
      const counted = yield* SearchIndex.make(schema, clients)
      const batch = yield* failure(counted.putMany([...good, { id: "bad", document: { price: "x" } as unknown as Document }]))
      expect(batch).toMatchObject({ _tag: "InvalidDocument", field: "price" })
      expect(calls).toBe(0)
      for (const { id } of good) expect(yield* counted.get(id)).toBeUndefined()
      expect(yield* index.stats()).toEqual(before)
      // The position of a syntax error is reported.
      const quote = yield* failure(index.search({ q: "cat \"dog" }))
      expect(quote).toMatchObject({ field: "q", position: 4 })
    }).pipe(Effect.provide(MemoryStore.layer)))

  it("bad index definitions name the entry", async () => {
    const cases: ReadonlyArray<readonly [IndexSchema.IndexSchemaInput, string]> = [
      [{ fields: {} }, "fields"],
      [{ fields: { "1abc": { type: "text" } } }, "fields.1abc"],
      [{ fields: { a: { type: "date" } as unknown as IndexSchema.FieldDefinition } }, "fields.a.type"],
      [{ fields: { a: { type: "text", boost: 0 } } }, "fields.a.boost"],
      [{ fields: { a: { type: "text", stopWords: "klingon" as "english" } } }, "fields.a.stopWords"],
      [{ fields: { a: { type: "text" } }, partitions: 0 }, "partitions"],
      [{ fields: { a: { type: "text" } }, partitions: 300 }, "partitions"],
      [{ fields: { a: { type: "text" } }, bm25: { b: 2 } }, "bm25.b"],
      [{ fields: { a: { type: "text" } }, bm25: { k1: -1 } }, "bm25.k1"],
      [{ fields: { a: { type: "text" } }, limits: { limitMax: 0 } }, "limits.limitMax"],
      // Limits bound a request's memory and time: a definition cannot lift them.
      [{ fields: { a: { type: "text" } }, limits: { queryClausesMax: Number.MAX_SAFE_INTEGER } }, "limits.queryClausesMax"],
      [{ fields: { a: { type: "text" } }, limits: { dictionaryScanMax: 10_000_001 } }, "limits.dictionaryScanMax"],
      [{ fields: { a: { type: "text" } }, limits: { nope: 1 } as never }, "limits.nope"],
      // Names every object has would read as fields that exist.
      [{ fields: { toString: { type: "text" } } }, "fields.toString"],
      [{ fields: { constructor: { type: "keyword" }, body: { type: "text" } } }, "fields.constructor"],
      [JSON.parse('{"fields":{"__proto__":{"type":"text"}}}'), "fields.__proto__"],
      [null as never, "definition"],
      [{ fields: [] } as never, "fields"]
    ]
    for (const [definition, field] of cases) {
      const exit = await Effect.runPromiseExit(IndexSchema.make(definition))
      expect(Exit.isFailure(exit), field).toBe(true)
      if (Exit.isFailure(exit)) expect(Cause.findErrorOption(exit.cause)).toMatchObject({ value: { _tag: "InvalidSchema", field } })
    }
  })

  it("inference names the field it cannot type", async () => {
    expect(await Effect.runPromise(IndexSchema.infer({ title: "a", tags: ["x"], price: 3 }))).toEqual({
      title: { type: "text" },
      tags: { type: "keyword" },
      price: { type: "numeric" }
    })
    const exit = await Effect.runPromiseExit(IndexSchema.infer({ title: "a", nested: { a: 1 } }))
    expect(Exit.isFailure(exit) && Cause.findErrorOption(exit.cause)).toMatchObject({ value: { _tag: "InvalidDocument", field: "nested" } })
  })
})

describe("partition messages cross process boundaries", () => {
  it("requests, replies and errors survive a JSON round trip of their Schema encoding", () => {
    const query: SearchMessages.ResolvedQuery = {
      root: {
        _tag: "All",
        clauses: [
          { _tag: "Match", terms: [{ field: "title", term: "cat", weight: 1.5 }] },
          { _tag: "Any", clauses: [{ _tag: "Phrase", field: "body", terms: [{ term: "black", offset: 0 }, { term: "cat", offset: 1 }], weight: 2 }] }
        ],
        excluded: [{ _tag: "Keyword", field: "tags", value: "news" }]
      },
      ranges: [{ field: "price", min: 1, minInclusive: true, max: null, maxInclusive: false }],
      fields: [{ field: "title", averageLength: 3.5 }],
      k1: 1.2,
      b: 0.75
    }
    const request = new SearchMessages.ExecuteQuery({ query, window: 10 })
    const json = Schema.fromJsonString(SearchMessages.PartitionRequest)
    const decoded = Schema.decodeUnknownSync(json)(Schema.encodeSync(json)(request))
    expect(decoded).toEqual(request)
    const error = new InvalidQuery({ field: "filter", message: "unknown field 'x' in filter" })
    const errors = Schema.fromJsonString(SearchMessages.PartitionError)
    expect(Schema.decodeUnknownSync(errors)(Schema.encodeSync(errors)(error))).toMatchObject({ _tag: "InvalidQuery", field: "filter" })
  })
})
