/**
 * Test support for search: seeded random corpora and queries, and a brute-force reference that
 * evaluates the documented semantics directly over the documents (no index): matching by a scan
 * of every document, BM25 from statistics counted over the whole collection, prefix by string
 * prefix and fuzzy by a plain Levenshtein distance over every term. The engine must agree with it.
 *
 * It reuses only the Analyzer (the definition of terms) and the QueryParser (the definition of
 * the syntax); everything else is computed independently of the engine's code.
 */
import * as Analyzer from "../../src/search/Analyzer.js"
import type { IndexSchemaInput } from "../../src/search/IndexSchema.js"
import * as QueryParser from "../../src/search/QueryParser.js"
import type { Document, SearchRequest } from "../../src/search/SearchMessages.js"
import { Effect } from "effect"
import { random as mulberry32 } from "../support/random.js"

// ---------------------------------------------------------------------------------------------
// Randomness

/** A seeded PRNG (mulberry32): the same seed gives the same corpus and queries. */
export const random = (seed: number) => {
  const next = mulberry32(seed)
  const int = (n: number) => Math.floor(next() * n)
  const pick = <A>(items: ReadonlyArray<A>): A => items[int(items.length)]!
  /** Zipf-like pick: earlier items are more likely. */
  const zipf = <A>(items: ReadonlyArray<A>): A => items[Math.min(items.length - 1, Math.floor(items.length * next() ** 2.2))]!
  return { next, int, pick, zipf }
}
export type Random = ReturnType<typeof random>

/** The seed of a test: `SEARCH_SEED` when set, else random; always logged. */
export const seedOf = (name: string): number => {
  const seed = process.env.SEARCH_SEED !== undefined ? Number(process.env.SEARCH_SEED) : Math.floor(Math.random() * 2 ** 31)
  console.log(`[${name}] seed ${seed} (rerun with SEARCH_SEED=${seed})`)
  return seed
}

// ---------------------------------------------------------------------------------------------
// Corpora

/** The vocabulary of random corpora: short and long words, near-duplicates for fuzzy, accents. */
export const VOCABULARY: ReadonlyArray<string> = [
  "cat", "cats", "car", "cart", "card", "care", "dog", "dogs", "door", "apple", "apply", "ample", "the", "a", "of", "and",
  "river", "rivet", "rover", "house", "horse", "mouse", "music", "muse", "café", "naïve", "résumé", "resume", "über",
  "zebra", "zero", "hero", "heron", "blue", "glue", "clue", "red", "bed", "bead", "read", "stone", "store", "story",
  "running", "runner", "run", "sun", "fun", "night", "knight", "light", "lights", "sky", "skies", "ocean", "open"
]
export const TAGS: ReadonlyArray<string> = ["news", "sport", "tech", "art", "Mixed Case", "a:b"]

/** The index definition of random corpora. */
export const corpusSchema = (partitions: number): IndexSchemaInput => ({
  fields: {
    title: { type: "text", boost: 2 },
    body: { type: "text", stopWords: "english" },
    tags: { type: "keyword" },
    price: { type: "numeric" }
  },
  partitions
})

const words = (rng: Random, min: number, max: number) => Array.from({ length: min + rng.int(max - min + 1) }, () => rng.zipf(VOCABULARY))

/** A random document. */
export const randomDocument = (rng: Random): Document => {
  const document: Record<string, string | number | ReadonlyArray<string>> = {
    title: words(rng, 1, 6).join(" "),
    body: words(rng, 0, 40).join(rng.next() < 0.8 ? " " : ", ")
  }
  if (rng.next() < 0.7) document.tags = Array.from(new Set(Array.from({ length: 1 + rng.int(3) }, () => rng.pick(TAGS))))
  if (rng.next() < 0.8) document.price = rng.int(100) + (rng.next() < 0.3 ? 0.5 : 0)
  return document
}

/** A random corpus: ids `d0`, `d1`, ... */
export const randomCorpus = (rng: Random, size: number): Map<string, Document> =>
  new Map(Array.from({ length: size }, (_, i) => [`d${i}`, randomDocument(rng)] as const))

// ---------------------------------------------------------------------------------------------
// Random queries

const randomWord = (rng: Random): string => (rng.next() < 0.05 ? "nothere" : rng.next() < 0.08 ? "THE" : rng.zipf(VOCABULARY))

const randomClause = (rng: Random, depth: number, corpus: ReadonlyArray<Document>): string => {
  const r = rng.next()
  if (r < 0.5) return rng.next() < 0.15 ? `${rng.pick(["title", "body"])}:${randomWord(rng)}` : randomWord(rng)
  if (r < 0.7) {
    // A phrase taken from a document, so phrases do match sometimes.
    const body = String(rng.pick(corpus).body ?? "").split(/[ ,]+/).filter((word) => word !== "")
    const start = rng.int(Math.max(1, body.length - 1))
    const phrase = body.slice(start, start + 2 + rng.int(2)).join(" ")
    return phrase.length > 0 ? `"${phrase}"` : `"${randomWord(rng)} ${randomWord(rng)}"`
  }
  if (r < 0.8) return `tags:"${rng.pick(TAGS)}"`
  if (depth < 2 && r < 0.9) return `(${randomQuery(rng, depth + 1, corpus)})`
  return `${randomWord(rng)} OR ${randomWord(rng)}`
}

/** A random query of 1 to 3 clauses, sometimes with an exclusion or an OR. */
export const randomQuery = (rng: Random, depth: number, corpus: ReadonlyArray<Document>): string => {
  const clauses = Array.from({ length: 1 + rng.int(3) }, () => randomClause(rng, depth, corpus))
  if (clauses.length >= 2 && rng.next() < 0.3) clauses.splice(1, 0, "OR")
  if (rng.next() < 0.3) clauses.push(rng.next() < 0.7 ? `-${randomWord(rng)}` : `-"${randomWord(rng)} ${randomWord(rng)}"`)
  return clauses.join(" ")
}

/** Random filters. */
export const randomFilters = (rng: Random): Array<string> => {
  const out: Array<string> = []
  if (rng.next() < 0.3) out.push(`tags:${rng.pick(TAGS)}`)
  if (rng.next() < 0.3) out.push(rng.pick([`price:${rng.int(50)}..${50 + rng.int(50)}`, `price:>${rng.int(100)}`, `price:<=${rng.int(100)}`, `price:${rng.int(100)}`]))
  return out
}

// ---------------------------------------------------------------------------------------------
// The reference

/** Levenshtein distance over code points, the textbook dynamic program. */
export const editDistance = (a: string, b: string): number => {
  const x = Array.from(a)
  const y = Array.from(b)
  let previous = Array.from({ length: y.length + 1 }, (_, j) => j)
  for (let i = 1; i <= x.length; i++) {
    const row = [i]
    for (let j = 1; j <= y.length; j++) {
      row.push(Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + (x[i - 1] === y[j - 1] ? 0 : 1)))
    }
    previous = row
  }
  return previous[y.length]!
}

interface RefField {
  readonly terms: ReadonlyArray<string>
  readonly positions: ReadonlyArray<number>
  readonly tf: ReadonlyMap<string, number>
}

interface RefDocument {
  readonly id: string
  readonly text: ReadonlyMap<string, RefField>
  readonly keywords: ReadonlyMap<string, ReadonlyArray<string>>
  readonly numbers: ReadonlyMap<string, number>
}

/** A brute-force searcher over an in-memory corpus. */
export const reference = (input: IndexSchemaInput, corpus: ReadonlyMap<string, Document>) => {
  const analyzers = new Map<string, Analyzer.Analyzer>()
  const boosts = new Map<string, number>()
  for (const [name, definition] of Object.entries(input.fields)) {
    if (definition.type !== "text") continue
    analyzers.set(name, Analyzer.make({ stopWords: definition.stopWords, lowercase: definition.lowercase, foldDiacritics: definition.foldDiacritics }))
    boosts.set(name, definition.boost ?? 1)
  }
  const docs: Array<RefDocument> = [...corpus].map(([id, document]) => {
    const text = new Map<string, RefField>()
    const keywords = new Map<string, ReadonlyArray<string>>()
    const numbers = new Map<string, number>()
    for (const [name, value] of Object.entries(document)) {
      const type = input.fields[name]!.type
      if (type === "numeric") numbers.set(name, value as number)
      else if (type === "keyword") keywords.set(name, typeof value === "string" ? [value] : (value as ReadonlyArray<string>))
      else {
        const { terms, positions } = analyzers.get(name)!.analyze(value as string)
        const tf = new Map<string, number>()
        for (const term of terms) tf.set(term, (tf.get(term) ?? 0) + 1)
        text.set(name, { terms, positions, tf })
      }
    }
    return { id, text, keywords, numbers }
  })
  // Collection statistics over every document.
  const fieldDocs = new Map<string, number>()
  const fieldLength = new Map<string, number>()
  const df = new Map<string, number>()
  for (const doc of docs) {
    for (const [name, field] of doc.text) {
      if (field.terms.length === 0) continue
      fieldDocs.set(name, (fieldDocs.get(name) ?? 0) + 1)
      fieldLength.set(name, (fieldLength.get(name) ?? 0) + field.terms.length)
      for (const term of field.tf.keys()) df.set(`${name}\u0000${term}`, (df.get(`${name}\u0000${term}`) ?? 0) + 1)
    }
  }
  const k1 = input.bm25?.k1 ?? 1.2
  const b = input.bm25?.b ?? 0.75
  const idf = (field: string, term: string) => {
    const n = fieldDocs.get(field) ?? 0
    const d = df.get(`${field}\u0000${term}`) ?? 0
    return Math.log(1 + (n - d + 0.5) / (d + 0.5))
  }
  const tfNorm = (field: string, tf: number, length: number) => {
    const average = (fieldLength.get(field) ?? 0) / (fieldDocs.get(field) ?? 1)
    return (tf * (k1 + 1)) / (tf + k1 * (1 - b + (b * length) / average))
  }
  return { docs, idf, tfNorm, analyzers, boosts, k1, b }
}
export type Reference = ReturnType<typeof reference>

/** "empty": the clause analyzed to nothing and drops out; undefined: no match; else a score. */
type Outcome = "empty" | undefined | number

const add = (a: number | undefined, b: number | undefined) => (a === undefined ? b : b === undefined ? a : a + b)

/** Phrase frequency of `terms` (with offsets) in a field. */
const phraseFrequency = (field: RefField, terms: ReadonlyArray<string>, offsets: ReadonlyArray<number>): number => {
  const at = new Map<number, string>()
  field.positions.forEach((position, i) => at.set(position, field.terms[i]!))
  let count = 0
  for (const [position, term] of at) {
    if (term !== terms[0]) continue
    if (terms.every((t, i) => at.get(position - offsets[0]! + offsets[i]!) === t)) count++
  }
  return count
}

interface Context {
  readonly ref: Reference
  readonly fields: ReadonlyArray<string>
  readonly boosts: ReadonlyMap<string, number>
  readonly prefix: boolean
  readonly fuzzy: number
}

/** One word or phrase in one text field of one document. */
const wordInField = (context: Context, doc: RefDocument, name: string, text: string, expand: { prefix: boolean; fuzzy: number } | undefined): Outcome => {
  const analyzer = context.ref.analyzers.get(name)!
  const boost = context.boosts.get(name)!
  const field = doc.text.get(name)
  if (expand !== undefined) {
    const tokens = analyzer.tokens(text)
    if (tokens.length === 1) {
      const q = tokens[0]!
      if (field === undefined) return undefined
      let score: number | undefined
      for (const [term, tf] of field.tf) {
        const hit = (expand.prefix && term.startsWith(q)) || (expand.fuzzy > 0 && editDistance(q, term) <= expand.fuzzy)
        if (hit) score = add(score, boost * context.ref.idf(name, term) * context.ref.tfNorm(name, tf, field.terms.length))
      }
      return score
    }
  }
  const { terms, positions } = analyzer.analyze(text)
  if (terms.length === 0) return "empty"
  if (field === undefined) return undefined
  if (terms.length === 1) {
    const tf = field.tf.get(terms[0]!)
    return tf === undefined ? undefined : boost * context.ref.idf(name, terms[0]!) * context.ref.tfNorm(name, tf, field.terms.length)
  }
  const frequency = phraseFrequency(field, terms, positions)
  if (frequency === 0) return undefined
  const idfSum = terms.reduce((sum, term) => sum + context.ref.idf(name, term), 0)
  return boost * idfSum * context.ref.tfNorm(name, frequency, field.terms.length)
}

const evaluate = (context: Context, doc: RefDocument, node: QueryParser.QueryNode): Outcome => {
  switch (node._tag) {
    case "Term":
    case "Phrase": {
      const named = node.field
      if (named !== undefined && context.ref.analyzers.get(named) === undefined) {
        return doc.keywords.get(named)?.includes(node.text) === true ? 0 : undefined
      }
      const expanding = node._tag === "Term" && (node.prefix || context.prefix || (node.fuzzy ?? context.fuzzy) > 0)
      const expand = expanding ? { prefix: (node as QueryParser.TermNode).prefix || context.prefix, fuzzy: (node as QueryParser.TermNode).fuzzy ?? context.fuzzy } : undefined
      let outcome: Outcome = "empty"
      for (const name of named !== undefined ? [named] : context.fields) {
        const one = wordInField(context, doc, name, node.text, expand)
        if (one === "empty") continue
        outcome = outcome === "empty" ? one : add(outcome, one)
      }
      return outcome
    }
    case "Or": {
      let outcome: Outcome = "empty"
      for (const clause of node.clauses) {
        const one = evaluate(context, doc, clause)
        if (one === "empty") continue
        outcome = outcome === "empty" ? one : add(outcome, one)
      }
      return outcome
    }
    case "Not":
      return evaluate(context, doc, { _tag: "And", clauses: [node] })
    case "And": {
      // Mirrors the documented semantics: clauses that analyze to nothing drop out; the group
      // drops out when no positive clause is left; otherwise all positives must match and no
      // excluded clause may.
      let score: Outcome = "empty"
      let failed = false
      let excluded = false
      for (const clause of node.clauses) {
        const one = evaluate(context, doc, clause._tag === "Not" ? clause.clause : clause)
        if (one === "empty") continue
        if (clause._tag === "Not") excluded ||= one !== undefined
        else if (one === undefined) failed = true
        else score = score === "empty" ? one : score! + one
      }
      if (score === "empty" && !failed) return "empty"
      return failed || excluded ? undefined : score
    }
  }
}

const passesFilter = (input: IndexSchemaInput, doc: RefDocument, filter: string): boolean => {
  const colon = filter.indexOf(":")
  const name = filter.slice(0, colon)
  const value = filter.slice(colon + 1)
  if (input.fields[name]!.type === "keyword") return doc.keywords.get(name)?.includes(value) === true
  const number = doc.numbers.get(name)
  const range = QueryParser.parseRange(value)!
  if (number === undefined) return false
  return (range.min === undefined || (range.minInclusive ? number >= range.min : number > range.min)) &&
    (range.max === undefined || (range.maxInclusive ? number <= range.max : number < range.max))
}

/** Every matching document with its score, by brute force. */
export const referenceSearch = (ref: Reference, input: IndexSchemaInput, request: SearchRequest): Map<string, number> => {
  const query = Effect.runSync(QueryParser.parse(request.q))
  const textFields = Object.keys(input.fields).filter((name) => input.fields[name]!.type === "text")
  const context: Context = { ref, fields: request.fields ?? textFields, boosts: ref.boosts, prefix: request.prefix === true, fuzzy: request.fuzzy ?? 0 }
  const out = new Map<string, number>()
  for (const doc of ref.docs) {
    const outcome = evaluate(context, doc, query)
    if (outcome === "empty" || outcome === undefined) continue
    if (!(request.filter ?? []).every((filter) => passesFilter(input, doc, filter))) continue
    out.set(doc.id, outcome)
  }
  return out
}

/** The reference's hits in the engine's order: score descending, then id. */
export const rank = (scores: ReadonlyMap<string, number>): Array<{ id: string; score: number }> =>
  [...scores].map(([id, score]) => ({ id, score })).sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
