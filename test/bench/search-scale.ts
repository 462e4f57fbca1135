/**
 * `npm run bench -- search-scale [--docs 1000000] [--checkpoints 100000,250000,500000]
 * [--queries 500] [--partitions 8] [--batch 1000] [--seed 7]`: the search engine's memory as the
 * index grows to a million documents, on the level backend.
 *
 * The corpus is the `search` benchmark's (titles of 4 to 10 words, bodies of 180 to 220, Zipf
 * over 20,000 pseudo-words), generated as it is indexed and never held: each round makes
 * `--batch` documents per partition, indexes them through staged views and commits them, then
 * drops them. At every checkpoint (and at the end) the same `--queries` mixed queries run
 * (after 100 warm-up queries), and then, after a full garbage collection, the live heap, the
 * resident set, the postings cache and the store's size on disk are read.
 *
 * The claim under test: the index lives in the store, so the heap stays bounded (by the cache
 * bound, 32 MiB by default, plus what one query needs) however many documents are indexed. The
 * last table row compares the heap at the end with the heap at the first checkpoint.
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { Effect, Layer, ManagedRuntime } from "effect"
import { KeyValueStore } from "../../persistence/KeyValueStore.js"
import * as LevelStore from "../../persistence/LevelStore.js"
import * as StoreView from "../../persistence/StoreView.js"
import * as IndexSchema from "../../src/search/IndexSchema.js"
import * as SearchIndex from "../../src/search/SearchIndex.js"
import * as SearchPartition from "../../src/search/SearchPartition.js"
import { collectGarbage } from "../support/gc.js"
import { random } from "../support/random.js"
import { options, quantile, report, type Row } from "./report.js"
import { type Doc, document, indexShardfeed, queries, time, toRequest, vocabulary } from "./search.js"

const MiB = 1024 * 1024

/** Bytes under `directory`, recursively. */
const diskBytes = (directory: string): number => {
  let total = 0
  for (const entry of Fs.readdirSync(directory, { withFileTypes: true })) {
    const path = Path.join(directory, entry.name)
    total += entry.isDirectory() ? diskBytes(path) : Fs.statSync(path).size
  }
  return total
}

interface Checkpoint {
  readonly docs: number
  readonly heapMiB: number
  readonly rssMiB: number
  readonly cacheMiB: number
  readonly diskMiB: number
  readonly p50: number
  readonly p99: number
  readonly docsPerSecond: number
}

export const main = async (args: ReadonlyArray<string>): Promise<void> => {
  const option = options(args)
  const total = Number(option.docs ?? 1_000_000)
  const checkpoints = (option.checkpoints ?? "100000,250000,500000").split(",").map(Number).filter((n) => n > 0 && n < total)
  checkpoints.push(total)
  const queryCount = Number(option.queries ?? 500)
  const partitions = Number(option.partitions ?? 8)
  const batch = Number(option.batch ?? 1_000)
  const next = random(Number(option.seed ?? 7))
  const words = vocabulary(20_000, next)
  // Phrases are taken from documents: a sample of the first round's documents is kept for them.
  const firstRound = Array.from({ length: Math.min(batch * partitions, total) }, (_, i) => document(i, words.sample, next))
  const warmup = queries(100, firstRound, words.sample, 50, next)
  const measured = queries(queryCount, firstRound, words.sample, 50, next)
  console.log(`search-scale: ${total} documents in rounds of ${batch * partitions}; checkpoints ${checkpoints.join(", ")}; ${queryCount} queries; P = ${partitions}`)

  const directory = Fs.mkdtempSync(Path.join(Os.tmpdir(), "shardfeed-bench-search-scale-"))
  const runtime = ManagedRuntime.make(Layer.fresh(LevelStore.layer({ directory })))
  const results: Array<Checkpoint> = []
  try {
    const schema = await runtime.runPromise(IndexSchema.make({ fields: { title: { type: "text" }, body: { type: "text" } }, partitions }))
    const cache = SearchPartition.makeCache()
    const engine = SearchPartition.make(schema, { cache })
    const index = await runtime.runPromise(Effect.gen(function*() {
      const store = yield* KeyValueStore
      return yield* SearchIndex.make(schema, Array.from({ length: partitions }, (_, p) => SearchIndex.localClient(engine, StoreView.direct(store, `search-${p}`))))
    }))
    let indexed = 0
    let indexMillis = 0
    let sinceCheckpoint = 0
    let round: ReadonlyArray<Doc> = firstRound
    for (const checkpoint of checkpoints) {
      // Bounded: each round indexes at least one document and stops at the checkpoint.
      while (indexed < checkpoint) {
        const size = Math.min(batch * partitions, checkpoint - indexed)
        if (indexed > 0 || round.length !== size) round = Array.from({ length: size }, (_, i) => document(indexed + i, words.sample, next))
        const [, millis] = await time(() => runtime.runPromise(indexShardfeed(round, partitions, batch, engine)))
        indexMillis += millis
        indexed += size
        sinceCheckpoint += size
        round = []
      }
      for (const query of warmup) await runtime.runPromise(index.search(toRequest(query)))
      const latency: Array<number> = []
      for (const query of measured) latency.push((await time(() => runtime.runPromise(index.search(toRequest(query)))))[1])
      collectGarbage()
      const memory = process.memoryUsage()
      results.push({
        docs: indexed,
        heapMiB: memory.heapUsed / MiB,
        rssMiB: memory.rss / MiB,
        cacheMiB: cache.bytes / MiB,
        diskMiB: diskBytes(directory) / MiB,
        p50: quantile(latency, 0.5),
        p99: quantile(latency, 0.99),
        docsPerSecond: sinceCheckpoint / (indexMillis / 1_000)
      })
      console.log(`  ${indexed} documents: heap ${(memory.heapUsed / MiB).toFixed(1)} MiB, rss ${(memory.rss / MiB).toFixed(0)} MiB`)
      indexMillis = 0
      sinceCheckpoint = 0
    }
  } finally {
    await runtime.dispose()
    Fs.rmSync(directory, { recursive: true, force: true })
  }
  const rows: Array<Row> = []
  for (const at of results) {
    const label = at.docs.toLocaleString("en-US")
    rows.push({ name: `${label} docs: live heap after queries`, value: at.heapMiB, unit: "MiB" })
    rows.push({ name: `  resident set / postings cache`, value: at.rssMiB, unit: `MiB / ${at.cacheMiB.toFixed(1)} MiB` })
    rows.push({ name: `  store on disk`, value: at.diskMiB, unit: "MiB" })
    rows.push({ name: `  query p50 / p99 (${queryCount} mixed)`, value: at.p50, unit: `/ ${at.p99.toFixed(1)} ms` })
    rows.push({ name: `  indexing since the last checkpoint`, value: at.docsPerSecond, unit: "docs/s" })
  }
  const first = results[0]!
  const last = results[results.length - 1]!
  rows.push({
    name: `live heap, ${last.docs.toLocaleString("en-US")} vs ${first.docs.toLocaleString("en-US")} docs`,
    value: last.heapMiB,
    unit: "MiB",
    baseline: `heap at ${first.docs.toLocaleString("en-US")}`,
    ratio: last.heapMiB / first.heapMiB,
    target: "bounded (~1x)"
  })
  report("search-scale", rows, { docs: total, partitions, batch, queries: queryCount, checkpoints: results })
}
