/**
 * `npm run bench -- search [--docs 100000] [--queries 1000] [--partitions 8] [--batch 1000]
 * [--vocabulary 20000] [--seed 7] [--query-skip 50]`: shardfeed's search engine on the level
 * backend against MiniSearch in memory, in the same run, on the same generated corpus.
 *
 * Corpus: `--docs` documents with a title (4 to 10 words) and a body (180 to 220 words), words
 * drawn from a fixed vocabulary of pseudo-words with a Zipf distribution (s = 1).
 *
 * Indexing (shardfeed): documents are routed to P partitions by id; each round takes
 * `--batch` documents per partition, indexes them through one staged view per partition (one
 * `IndexDocuments` message per partition entity) and commits all P write sets in one
 * `KeyValueStore.commit` call: the group commit of the entity runtime. Throughput counts from
 * the first document to the last commit. A 1,000-document write set stages 25,000-35,000 keys,
 * within the entity runtime's default `pendingKeysPerEntityMax` (65,536). MiniSearch: `addAll`
 * of the same documents. The third engine is the same index through the Search entities on a
 * node (see `measureEntities`): the figures an application gets.
 *
 * Queries: 1,000 mixed (single terms, two-term AND, phrases taken from documents, 3-letter
 * prefixes, fuzzy with distance 1 for words up to 5 letters and 2 above), words drawn from the
 * corpus's own Zipf distribution without its `--query-skip` most frequent words (an index would
 * hold those as stop words). Each engine answers them one at a time after 100 warm-up queries;
 * shardfeed returns the top 10 with the exact total, MiniSearch returns (and sorts) all
 * matches; a phrase in MiniSearch is an AND query filtered on the stored text. Latency is the
 * time from call to answer, p50 and p99. Every query's total is compared between the engines.
 *
 * MiniSearch runs first and its index is released before shardfeed starts, so neither engine's
 * garbage collection pays for the other's heap.
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { Effect, Layer, ManagedRuntime } from "effect"
import MiniSearch from "minisearch"
import { KeyValueStore } from "../../persistence/KeyValueStore.js"
import * as LevelStore from "../../persistence/LevelStore.js"
import * as StoreView from "../../persistence/StoreView.js"
import * as EntityRuntime from "../../actors/EntityRuntime.js"
import { defaults, RuntimeConfig } from "../../actors/RuntimeConfig.js"
import * as IndexSchema from "../../src/search/IndexSchema.js"
import * as Search from "../../src/search/Search.js"
import * as SearchEntity from "../../src/search/SearchEntity.js"
import * as SearchIndex from "../../src/search/SearchIndex.js"
import * as SearchPartition from "../../src/search/SearchPartition.js"
import type { SearchRequest } from "../../src/search/SearchMessages.js"
import { options, quantile, report, type Row } from "./report.js"
import { random } from "../support/random.js"

export interface Doc {
  readonly id: string
  readonly title: string
  readonly body: string
}


/** A vocabulary of distinct pseudo-words (2 to 12 letters, short ones likelier) and a Zipf sampler. */
export const vocabulary = (size: number, next: () => number) => {
  const consonants = "bcdfghjklmnprstvwz"
  const vowels = "aeiou"
  const words = new Set<string>()
  // Bounded: a word of up to 12 letters from 90 syllables; duplicates are rare at these sizes.
  for (let attempts = 0; words.size < size && attempts < size * 20; attempts++) {
    const syllables = 1 + Math.floor(next() ** 1.5 * 5)
    let word = ""
    for (let i = 0; i < syllables; i++) word += consonants[Math.floor(next() * consonants.length)]! + vowels[Math.floor(next() * vowels.length)]!
    if (next() < 0.3) word += consonants[Math.floor(next() * consonants.length)]!
    words.add(word)
  }
  const list = [...words]
  const cumulative: Array<number> = []
  let total = 0
  for (let rank = 1; rank <= list.length; rank++) cumulative.push((total += 1 / rank))
  /** A word by Zipf rank, skipping the `skip` most frequent. */
  const sample = (skip = 0): string => {
    const base = skip > 0 ? cumulative[Math.min(skip, list.length) - 1]! : 0
    const x = base + next() * (total - base)
    let low = 0
    let high = list.length - 1
    while (low < high) {
      const middle = (low + high) >>> 1
      if (cumulative[middle]! < x) low = middle + 1
      else high = middle
    }
    return list[low]!
  }
  return { list, sample }
}

/** Document `i` of the corpus: a title of 4 to 10 words and a body of 180 to 220. */
export const document = (i: number, sample: (skip?: number) => string, next: () => number): Doc => {
  const title = Array.from({ length: 4 + Math.floor(next() * 7) }, () => sample()).join(" ")
  const body = Array.from({ length: 180 + Math.floor(next() * 41) }, () => sample()).join(" ")
  return { id: `doc${i}`, title, body }
}

const corpus = (count: number, sample: (skip?: number) => string, next: () => number): Array<Doc> =>
  Array.from({ length: count }, (_, i) => document(i, sample, next))

type Kind = "term" | "and" | "phrase" | "prefix" | "fuzzy"

interface Query {
  readonly kind: Kind
  readonly words: ReadonlyArray<string>
  readonly fuzzy: number
}

export const queries = (count: number, docs: ReadonlyArray<Doc>, sample: (skip?: number) => string, skip: number, next: () => number): Array<Query> => {
  const kinds: ReadonlyArray<Kind> = ["term", "and", "phrase", "prefix", "fuzzy"]
  return Array.from({ length: count }, (_, i): Query => {
    const kind = kinds[i % kinds.length]!
    const word = sample(skip)
    switch (kind) {
      case "term":
        return { kind, words: [word], fuzzy: 0 }
      case "and":
        return { kind, words: [word, sample(skip)], fuzzy: 0 }
      case "phrase": {
        const body = docs[Math.floor(next() * docs.length)]!.body.split(" ")
        const at = Math.floor(next() * (body.length - 1))
        return { kind, words: [body[at]!, body[at + 1]!], fuzzy: 0 }
      }
      case "prefix":
        return { kind, words: [word.slice(0, 3)], fuzzy: 0 }
      case "fuzzy":
        return { kind, words: [word], fuzzy: word.length <= 5 ? 1 : 2 }
    }
  })
}

export const toRequest = (query: Query): SearchRequest => {
  switch (query.kind) {
    case "term":
      return { q: query.words[0]! }
    case "and":
      return { q: query.words.join(" ") }
    case "phrase":
      return { q: `"${query.words.join(" ")}"` }
    case "prefix":
      return { q: query.words[0]!, prefix: true }
    case "fuzzy":
      return { q: query.words[0]!, fuzzy: query.fuzzy }
  }
}

/** MiniSearch's answer to a query: the number of matches (it sorts them all). */
const miniSearchQuery = (index: MiniSearch<Doc>, query: Query): number => {
  switch (query.kind) {
    case "term":
      return index.search(query.words[0]!).length
    case "and":
      return index.search(query.words.join(" "), { combineWith: "AND" }).length
    case "phrase": {
      const phrase = ` ${query.words.join(" ")} `
      return index.search(query.words.join(" "), {
        combineWith: "AND",
        filter: (result) => ` ${result.title} `.includes(phrase) || ` ${result.body} `.includes(phrase)
      }).length
    }
    case "prefix":
      return index.search(query.words[0]!, { prefix: true }).length
    case "fuzzy":
      return index.search(query.words[0]!, { fuzzy: query.fuzzy }).length
  }
}

export const time = async <A>(f: () => Promise<A> | A): Promise<readonly [A, number]> => {
  const started = performance.now()
  const value = await f()
  return [value, performance.now() - started]
}

/** Indexes the corpus into shardfeed, round by round, as entities under group commit would. */
export const indexShardfeed = (docs: ReadonlyArray<Doc>, partitions: number, batch: number, engine: SearchPartition.SearchPartition) =>
  Effect.gen(function*() {
    const store = yield* KeyValueStore
    const queues = Array.from({ length: partitions }, (): Array<Doc> => [])
    for (const doc of docs) queues[SearchIndex.partitionOf(doc.id, partitions)]!.push(doc)
    const rounds = Math.max(...queues.map((queue) => Math.ceil(queue.length / batch)))
    let ops = 0
    for (let round = 0; round < rounds; round++) {
      const batches = []
      for (let p = 0; p < partitions; p++) {
        const slice = queues[p]!.slice(round * batch, (round + 1) * batch)
        if (slice.length === 0) continue
        const view = yield* StoreView.staged(store, `search-${p}`)
        yield* engine.indexDocuments(view, slice.map((doc) => ({ id: doc.id, document: { title: doc.title, body: doc.body } })))
        batches.push({ partition: `search-${p}`, ops: view.ops() })
        ops += view.size()
      }
      const results = yield* store.commit(batches)
      for (const result of results) if (result._tag !== "Success") return yield* Effect.die(new Error(`commit failed: ${JSON.stringify(result)}`))
    }
    return ops
  })

type Latencies = Record<Kind | "all", Array<number>>

const latencies = (): Latencies => ({ term: [], and: [], phrase: [], prefix: [], fuzzy: [], all: [] })

/** MiniSearch's indexing time, query latencies and totals; its index is dropped on return. */
const measureMiniSearch = async (docs: ReadonlyArray<Doc>, warmup: ReadonlyArray<Query>, measured: ReadonlyArray<Query>): Promise<Measured> => {
  const index = new MiniSearch<Doc>({ fields: ["title", "body"], storeFields: ["title", "body"] })
  const [, indexMillis] = await time(() => index.addAll(docs))
  for (const query of warmup) miniSearchQuery(index, query)
  const latency = latencies()
  const totals: Array<number> = []
  for (const query of measured) {
    const [total, millis] = await time(() => miniSearchQuery(index, query))
    latency[query.kind].push(millis)
    latency.all.push(millis)
    totals.push(total)
  }
  return { indexMillis, latency, totals }
}

interface Measured {
  readonly indexMillis: number
  readonly latency: Latencies
  readonly totals: ReadonlyArray<number>
}

/** shardfeed on LevelDB in a temp dir: indexing time, query latencies and totals. */
const measureShardfeed = async (
  docs: ReadonlyArray<Doc>,
  warmup: ReadonlyArray<Query>,
  measured: ReadonlyArray<Query>,
  partitions: number,
  batch: number
): Promise<Measured & { readonly ops: number; readonly cacheBytes: number }> => {
  const directory = Fs.mkdtempSync(Path.join(Os.tmpdir(), "shardfeed-bench-search-"))
  const runtime = ManagedRuntime.make(Layer.fresh(LevelStore.layer({ directory })))
  try {
    const schema = await runtime.runPromise(IndexSchema.make({ fields: { title: { type: "text" }, body: { type: "text" } }, partitions }))
    const cache = SearchPartition.makeCache()
    const engine = SearchPartition.make(schema, { cache })
    const [ops, indexMillis] = await time(() => runtime.runPromise(indexShardfeed(docs, partitions, batch, engine)))
    const index = await runtime.runPromise(Effect.gen(function*() {
      const store = yield* KeyValueStore
      return yield* SearchIndex.make(schema, Array.from({ length: partitions }, (_, p) => SearchIndex.localClient(engine, StoreView.direct(store, `search-${p}`))))
    }))
    for (const query of warmup) await runtime.runPromise(index.search(toRequest(query)))
    const latency = latencies()
    const totals: Array<number> = []
    for (const query of measured) {
      const [result, millis] = await time(() => runtime.runPromise(index.search(toRequest(query))))
      latency[query.kind].push(millis)
      latency.all.push(millis)
      totals.push(result.total)
    }
    return { indexMillis, latency, totals, ops, cacheBytes: cache.bytes }
  } finally {
    await runtime.dispose()
    Fs.rmSync(directory, { recursive: true, force: true })
  }
}

/**
 * The same through the Search entities on a node (entity runtime, every shard local, LevelDB):
 * `Search.open(...).putMany` of `batch × P` documents at a time (one `IndexDocuments` message per
 * partition entity, committed by the runtime's group commit), and queries as two rounds of P
 * entity asks. This is what an application or the HTTP API gets.
 */
const measureEntities = async (
  docs: ReadonlyArray<Doc>,
  warmup: ReadonlyArray<Query>,
  measured: ReadonlyArray<Query>,
  partitions: number,
  batch: number
): Promise<Measured> => {
  const directory = Fs.mkdtempSync(Path.join(Os.tmpdir(), "shardfeed-bench-search-entities-"))
  const runtime = ManagedRuntime.make(
    Layer.mergeAll(SearchEntity.layer, Search.layer).pipe(
      Layer.provideMerge(EntityRuntime.layerLocal),
      Layer.provideMerge(LevelStore.layer({ directory })),
      // A round indexes batch × P documents in one thread: on a slow machine one partition's
      // message can wait past the default 10 s ask timeout behind the other seven.
      Layer.provideMerge(Layer.succeed(RuntimeConfig)({ ...defaults, shardCount: 64, askTimeoutMillis: 120_000 })),
      Layer.fresh
    )
  )
  try {
    const index = await runtime.runPromise(Effect.gen(function*() {
      const search = yield* Search.Search
      yield* search.define("bench", { fields: { title: { type: "text" }, body: { type: "text" } }, partitions })
      return yield* search.open("bench")
    }))
    const chunk = batch * partitions
    const [, indexMillis] = await time(async () => {
      for (let start = 0; start < docs.length; start += chunk) {
        await runtime.runPromise(index.putMany(docs.slice(start, start + chunk).map(({ id, title, body }) => ({ id, document: { title, body } }))))
      }
    })
    for (const query of warmup) await runtime.runPromise(index.search(toRequest(query)))
    const latency = latencies()
    const totals: Array<number> = []
    for (const query of measured) {
      const [result, millis] = await time(() => runtime.runPromise(index.search(toRequest(query))))
      latency[query.kind].push(millis)
      latency.all.push(millis)
      totals.push(result.total)
    }
    return { indexMillis, latency, totals }
  } finally {
    await runtime.dispose()
    Fs.rmSync(directory, { recursive: true, force: true })
  }
}

/** The report rows: indexing, overall latency with the targets, then latency per kind. */
const rowsOf = (docCount: number, shardfeed: Measured, mini: Measured, entities: Measured): Array<Row> => {
  const shardfeedRate = (docCount * 1000) / shardfeed.indexMillis
  const miniRate = (docCount * 1000) / mini.indexMillis
  const p50 = (latency: Latencies, kind: Kind | "all") => quantile(latency[kind], 0.5)
  const p99 = (latency: Latencies, kind: Kind | "all") => quantile(latency[kind], 0.99)
  const rows: Array<Row> = [
    { name: "indexing, shardfeed level", value: shardfeedRate, unit: "docs/s", baseline: "MiniSearch", ratio: shardfeedRate / miniRate, target: ">= 0.5x" },
    { name: "indexing, MiniSearch memory", value: miniRate, unit: "docs/s" },
    {
      name: "indexing, Search entities level",
      value: (docCount * 1000) / entities.indexMillis,
      unit: "docs/s",
      baseline: "MiniSearch",
      ratio: (docCount * 1000) / entities.indexMillis / miniRate,
      target: ">= 0.5x"
    },
    {
      name: "query p50, shardfeed",
      value: p50(shardfeed.latency, "all"),
      unit: "ms",
      baseline: "MiniSearch",
      ratio: p50(shardfeed.latency, "all") / p50(mini.latency, "all"),
      target: "<= 2x"
    },
    { name: "query p50, MiniSearch", value: p50(mini.latency, "all"), unit: "ms" },
    {
      name: "query p50, Search entities",
      value: p50(entities.latency, "all"),
      unit: "ms",
      baseline: "MiniSearch",
      ratio: p50(entities.latency, "all") / p50(mini.latency, "all"),
      target: "<= 2x"
    },
    { name: "query p99, Search entities", value: p99(entities.latency, "all"), unit: "ms", baseline: "MiniSearch", ratio: p99(entities.latency, "all") / p99(mini.latency, "all") },
    { name: "query p99, shardfeed", value: p99(shardfeed.latency, "all"), unit: "ms", baseline: "MiniSearch", ratio: p99(shardfeed.latency, "all") / p99(mini.latency, "all") },
    { name: "query p99, MiniSearch", value: p99(mini.latency, "all"), unit: "ms" }
  ]
  for (const kind of ["term", "and", "phrase", "prefix", "fuzzy"] as const) {
    rows.push({
      name: `  ${kind} p50 / p99, shardfeed`,
      value: p50(shardfeed.latency, kind),
      unit: `/ ${p99(shardfeed.latency, kind).toFixed(2)} ms`,
      baseline: "MiniSearch",
      ratio: p50(shardfeed.latency, kind) / p50(mini.latency, kind)
    })
    rows.push({ name: `  ${kind} p50 / p99, MiniSearch`, value: p50(mini.latency, kind), unit: `/ ${p99(mini.latency, kind).toFixed(2)} ms` })
  }
  return rows
}

export const main = async (args: ReadonlyArray<string>): Promise<void> => {
  const option = options(args)
  const docCount = Number(option.docs ?? 100_000)
  const queryCount = Number(option.queries ?? 1_000)
  const partitions = Number(option.partitions ?? 8)
  const batch = Number(option.batch ?? 1_000)
  const skip = Number(option["query-skip"] ?? 50)
  const next = random(Number(option.seed ?? 7))
  const words = vocabulary(Number(option.vocabulary ?? 20_000), next)
  const docs = corpus(docCount, words.sample, next)
  const warmup = queries(100, docs, words.sample, skip, next)
  const measured = queries(queryCount, docs, words.sample, skip, next)
  console.log(`corpus: ${docCount} documents, ${words.list.length} words; ${queryCount} queries; P = ${partitions}; ${batch} documents per partition per commit`)
  const mini = await measureMiniSearch(docs, warmup, measured)
  const shardfeed = await measureShardfeed(docs, warmup, measured, partitions, batch)
  const entities = await measureEntities(docs, warmup, measured, partitions, batch)
  // Same matching documents: a cross-check of both engines on every query.
  const mismatches = measured.filter((_, i) => shardfeed.totals[i] !== mini.totals[i] || entities.totals[i] !== mini.totals[i]).length
  report("search", rowsOf(docCount, shardfeed, mini, entities), {
    docs: docCount,
    queries: queryCount,
    partitions,
    batch,
    storeOps: shardfeed.ops,
    storeOpsPerDoc: shardfeed.ops / docCount,
    totalMismatches: mismatches,
    cacheBytes: shardfeed.cacheBytes,
    heapMiB: Math.round(process.memoryUsage().heapUsed / 1024 / 1024)
  })
  if (mismatches > 0) console.log(`WARNING: ${mismatches} queries had a different total in shardfeed and MiniSearch`)
}
