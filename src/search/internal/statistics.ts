/**
 * Collection statistics, in two halves. `prepare` runs on a partition: its document count,
 * text-field totals, and for every plan leaf the terms it stands for there with their document
 * frequencies (prefix and fuzzy leaves expanded over the local dictionary). `resolve` runs on
 * the coordinator: it sums the partitions' answers and folds them into BM25 weights, so every
 * partition scores with the statistics of the whole index and a document's score does not
 * depend on how many partitions there are.
 *
 *   idf(f, t)  = ln(1 + (N_f - df + 0.5) / (df + 0.5))     N_f: documents with field f non-empty
 *   avg_f      = L_f / N_f                                   L_f: total length of field f
 *   weight     = boost_f × idf   (a phrase: boost_f × the sum of its terms' idf)
 */
import { Effect } from "effect"
import type { ReadError } from "../../../persistence/StoreError.js"
import type { IndexSchema } from "../IndexSchema.js"
import { InvalidQuery, type SchemaMismatch } from "../SearchError.js"
import type {
  PlanNode,
  QueryPlan,
  QueryStatistics,
  ResolvedNode,
  ResolvedQuery,
  ScoredTerm
} from "../SearchMessages.js"
import { type CursorSource, ENTRY_OVERHEAD_BYTES } from "./cursor.js"
import { fuzzyInLexicon, fuzzyInStore, type Lexicon, lexiconBytes, loadLexicon, prefixInLexicon, prefixInStore } from "./expand.js"
import * as Layout from "./layout.js"
import { type Leaf, leaves } from "./plan.js"
import { type EngineContext, readMeta } from "./write.js"
import { readMany } from "./io.js"

/** The text field a plan names, or an `InvalidQuery` (a plan from another process is input too). */
const textField = (schema: IndexSchema, name: string) => {
  const field = schema.byName.get(name)
  return field?.type === "text" ? field : new InvalidQuery({ field: "q", message: `'${name}' is not a text field of this index` })
}

/** The field's lexicon from the cache, loading it when `load` and it fits; undefined otherwise. */
const lexiconOf = (
  source: CursorSource,
  fieldIndex: number,
  version: number,
  load: boolean
): Effect.Effect<Lexicon | undefined, ReadError> => {
  const { cache } = source
  if (cache === undefined) return Effect.succeed(undefined)
  const key = `${source.scope}\u0000l\u0000${fieldIndex}\u0000${version}`
  const cached = cache.get(key)
  if (cached !== undefined && !(cached instanceof Uint8Array)) {
    if (cached._tag === "Lexicon") return Effect.succeed(cached)
    if (cached._tag === "LexiconTooLarge") return Effect.succeed(undefined)
  }
  if (!load) return Effect.succeed(undefined)
  return Effect.map(loadLexicon(source.view, source.namespaces, fieldIndex, cache.entryBytesMax), (lexicon) => {
    if (lexicon === undefined) cache.set(key, { _tag: "LexiconTooLarge" }, ENTRY_OVERHEAD_BYTES)
    else cache.set(key, lexicon, lexiconBytes(lexicon.count, lexicon.points.length))
    return lexicon
  })
}

/**
 * The terms one leaf stands for in this partition: prefix and fuzzy matches (their union when
 * both), by the cached lexicon when there is one. Prefix words alone do not load a lexicon: a
 * range scan costs less than loading it after every write that adds terms.
 */
const expandLeaf = (
  context: EngineContext,
  source: CursorSource,
  version: number,
  fieldIndex: number,
  leaf: Leaf
): Effect.Effect<ReadonlyArray<string>, ReadError | InvalidQuery> =>
  Effect.gen(function*() {
    const { limits } = context.schema
    const bounds = { max: limits.expansionsMax, scanMax: limits.dictionaryScanMax }
    const lexicon = yield* lexiconOf(source, fieldIndex, version, leaf.fuzzy > 0)
    const found = new Set<string>()
    const collect = (terms: ReadonlyArray<string> | InvalidQuery) => {
      if (terms instanceof InvalidQuery) return terms
      for (const term of terms) found.add(term)
      return undefined
    }
    if (leaf.prefix) {
      const bad = collect(lexicon !== undefined
        ? prefixInLexicon(lexicon, leaf.term, bounds.max)
        : yield* prefixInStore(source.view, source.namespaces, fieldIndex, leaf.term, bounds.max))
      if (bad !== undefined) return yield* bad
    }
    if (leaf.fuzzy > 0) {
      const bad = collect(lexicon !== undefined
        ? fuzzyInLexicon(lexicon, leaf.term, leaf.fuzzy, bounds)
        : yield* fuzzyInStore(source.view, source.namespaces, fieldIndex, leaf.term, leaf.fuzzy, bounds))
      if (bad !== undefined) return yield* bad
    }
    return [...found]
  })

/** The partition's statistics for a plan. */
export const prepare = (
  context: EngineContext,
  source: CursorSource,
  plan: QueryPlan
): Effect.Effect<QueryStatistics, ReadError | SchemaMismatch | InvalidQuery> =>
  Effect.gen(function*() {
    const meta = yield* readMeta(context, source.view)
    const list = leaves(plan.root)
    const fields = list.map((leaf) => textField(context.schema, leaf.field))
    const bad = fields.find((field) => field instanceof InvalidQuery)
    if (bad !== undefined) return yield* bad
    const indexes = fields.map((field) => (field as Exclude<typeof field, InvalidQuery>).index)
    const terms = yield* Effect.forEach(list, (leaf, i) =>
      leaf.prefix || leaf.fuzzy > 0 ? expandLeaf(context, source, meta.lexicon, indexes[i]!, leaf) : Effect.succeed([leaf.term]))
    // One read for the frequencies of every term of every leaf.
    const ids = terms.flatMap((list, i) => list.map((term) => Layout.termId(indexes[i]!, term)))
    const stored = yield* readMany(source.view, context.namespaces.terms, ids.map(Layout.termKey))
    let next = 0
    const out = terms.map((list) =>
      list.map((term) => {
        const bytes = stored[next++]
        return { term, df: bytes === undefined ? 0 : Layout.entryDf(bytes) }
      }))
    return {
      docs: meta.docs,
      fields: context.schema.textFields.map((field) => ({ field: field.name, docs: meta.fields[field.name]?.docs ?? 0, length: meta.fields[field.name]?.length ?? 0 })),
      leaves: out
    }
  })

/** Global statistics: per field (N_f, avg_f), and per leaf the summed frequency of each term. */
interface Global {
  readonly fieldDocs: ReadonlyMap<string, number>
  readonly leaves: ReadonlyArray<ReadonlyMap<string, number>>
}

const combine = (leafCount: number, partitions: ReadonlyArray<QueryStatistics>): Global => {
  const fieldDocs = new Map<string, number>()
  const merged = Array.from({ length: leafCount }, () => new Map<string, number>())
  for (const stats of partitions) {
    for (const field of stats.fields) fieldDocs.set(field.field, (fieldDocs.get(field.field) ?? 0) + field.docs)
    stats.leaves.forEach((terms, i) => {
      const map = merged[i]
      if (map !== undefined) for (const { term, df } of terms) map.set(term, (map.get(term) ?? 0) + df)
    })
  }
  return { fieldDocs, leaves: merged }
}

/** The BM25 idf of a term with frequency `df` among `docs` documents. */
export const idf = (docs: number, df: number): number => Math.log(1 + (docs - df + 0.5) / (df + 0.5))

/**
 * Folds the partitions' statistics into a query every partition runs the same way. Fails when
 * prefix and fuzzy words expand to more than `expansionsMax` distinct terms over the index.
 */
export const resolve = (
  schema: IndexSchema,
  boosts: ReadonlyMap<string, number>,
  plan: QueryPlan,
  partitions: ReadonlyArray<QueryStatistics>
): Effect.Effect<ResolvedQuery, InvalidQuery> =>
  Effect.suspend(() => {
    const list = leaves(plan.root)
    const global = combine(list.length, partitions)
    let expansions = 0
    list.forEach((leaf, i) => {
      if (leaf.prefix || leaf.fuzzy > 0) expansions += global.leaves[i]!.size
    })
    if (expansions > schema.limits.expansionsMax) {
      return Effect.fail(new InvalidQuery({ field: "q", message: `prefix and fuzzy words match more than ${schema.limits.expansionsMax} terms` }))
    }
    const lengths = new Map<string, number>()
    for (const stats of partitions) for (const field of stats.fields) lengths.set(field.field, (lengths.get(field.field) ?? 0) + field.length)
    const fields = schema.textFields.map((field) => {
      const docs = global.fieldDocs.get(field.name) ?? 0
      return { field: field.name, averageLength: docs === 0 ? 1 : (lengths.get(field.name) ?? 0) / docs }
    })
    let next = 0
    const weightOf = (field: string, df: number) => (boosts.get(field) ?? 1) * idf(global.fieldDocs.get(field) ?? 0, df)
    const visit = (node: PlanNode): ResolvedNode => {
      switch (node._tag) {
        case "Match": {
          const terms: Array<ScoredTerm> = []
          for (const source of node.sources) {
            const found = [...global.leaves[next++]!].filter(([, df]) => df > 0).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
            for (const [term, df] of found) terms.push({ field: source.field, term, weight: weightOf(source.field, df) })
          }
          return { _tag: "Match", terms }
        }
        case "Phrase": {
          let sum = 0
          for (const term of node.terms) sum += idf(global.fieldDocs.get(node.field) ?? 0, global.leaves[next++]!.get(term.term) ?? 0)
          return { _tag: "Phrase", field: node.field, terms: node.terms, weight: (boosts.get(node.field) ?? 1) * sum }
        }
        case "Keyword":
          return node
        case "All":
          return { _tag: "All", clauses: node.clauses.map(visit), excluded: node.excluded.map(visit) }
        case "Any":
          return { _tag: "Any", clauses: node.clauses.map(visit) }
      }
    }
    return Effect.succeed({ root: plan.root === null ? null : visit(plan.root), ranges: plan.ranges, fields, k1: schema.k1, b: schema.b })
  })
