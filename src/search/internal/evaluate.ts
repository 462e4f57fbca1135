/**
 * Runs a resolved query on one partition, window by window over doc numbers. Each round loads
 * at most one page per term, takes the window up to the smallest "loaded through" doc number
 * of all cursors (so every cursor has all its postings of the window in memory), evaluates the
 * query tree on that window with sorted-list set operations, counts and offers the matches,
 * then moves on. Memory is bounded by one page per term plus the top hits, whatever the size of
 * the partition. Rounds stop early once no more documents can match (an AND whose rarest term
 * is exhausted stops there).
 *
 * Scores: BM25 per (field, term) posting, weight × tf × (k1 + 1) / (tf + k1 × (1 − b + b × len / avg)),
 * summed over the matching leaves of the tree; phrases use the phrase frequency as tf.
 */
import { Effect } from "effect"
import type { ReadError } from "../../../persistence/StoreError.js"
import type { IndexSchema } from "../IndexSchema.js"
import { InvalidQuery } from "../SearchError.js"
import type { RangeFilter, ResolvedNode, ResolvedQuery, SearchResult } from "../SearchMessages.js"
import { Cursor, type CursorSource, type LoadedChunk, type Slice } from "./cursor.js"
import * as Layout from "./layout.js"
import { PENDING_MAX, TopHits } from "./topHits.js"
import { readMany } from "./io.js"

/** Matches of one window, sorted by doc number. */
interface Hits {
  readonly docs: Array<number>
  readonly scores: Array<number>
}

const EMPTY: Hits = { docs: [], scores: [] }

/** BM25 constants of one field under one query. */
interface Norms {
  readonly k1PlusOne: number
  readonly constant: number
  readonly perLength: number
}

type Compiled =
  | { readonly kind: "match"; readonly parts: ReadonlyArray<{ readonly cursor: Cursor; readonly weight: number; readonly norms: Norms }> }
  | { readonly kind: "keyword"; readonly cursor: Cursor | undefined }
  | PhraseNode
  | { readonly kind: "all"; readonly clauses: ReadonlyArray<Compiled>; readonly excluded: ReadonlyArray<Compiled> }
  | { readonly kind: "any"; readonly clauses: ReadonlyArray<Compiled> }

interface PhraseNode {
  readonly kind: "phrase"
  /** Undefined when a term is missing here: the phrase cannot match. */
  readonly terms: ReadonlyArray<{ readonly cursor: Cursor; readonly offset: number }> | undefined
  readonly weight: number
  readonly norms: Norms
  /** The phrase's matches in the current window, computed before the tree is evaluated. */
  window: Hits
}

const score = (norms: Norms, weight: number, tf: number, length: number): number =>
  weight * tf * norms.k1PlusOne / (tf + norms.constant + norms.perLength * length)

// ---------------------------------------------------------------------------------------------
// Sorted-list set operations

const union = (a: Hits, b: Hits): Hits => {
  if (a.docs.length === 0) return b
  if (b.docs.length === 0) return a
  const docs: Array<number> = []
  const scores: Array<number> = []
  let i = 0
  let j = 0
  while (i < a.docs.length || j < b.docs.length) {
    const x = i < a.docs.length ? a.docs[i]! : Number.POSITIVE_INFINITY
    const y = j < b.docs.length ? b.docs[j]! : Number.POSITIVE_INFINITY
    if (x === y) {
      docs.push(x)
      scores.push(a.scores[i++]! + b.scores[j++]!)
    } else if (x < y) {
      docs.push(x)
      scores.push(a.scores[i++]!)
    } else {
      docs.push(y)
      scores.push(b.scores[j++]!)
    }
  }
  return { docs, scores }
}

/** Unions many lists pairwise in a balanced tree: O(n log k) rather than O(n k). */
const unionAll = (lists: ReadonlyArray<Hits>): Hits => {
  if (lists.length === 0) return EMPTY
  let level = lists
  while (level.length > 1) {
    const next: Array<Hits> = []
    for (let i = 0; i < level.length; i += 2) next.push(i + 1 < level.length ? union(level[i]!, level[i + 1]!) : level[i]!)
    level = next
  }
  return level[0]!
}

const intersect = (a: Hits, b: Hits): Hits => {
  const docs: Array<number> = []
  const scores: Array<number> = []
  let i = 0
  let j = 0
  while (i < a.docs.length && j < b.docs.length) {
    const x = a.docs[i]!
    const y = b.docs[j]!
    if (x === y) {
      docs.push(x)
      scores.push(a.scores[i++]! + b.scores[j++]!)
    } else if (x < y) i++
    else j++
  }
  return { docs, scores }
}

const subtract = (a: Hits, b: Hits): Hits => {
  if (b.docs.length === 0 || a.docs.length === 0) return a
  const docs: Array<number> = []
  const scores: Array<number> = []
  let j = 0
  for (let i = 0; i < a.docs.length; i++) {
    const x = a.docs[i]!
    while (j < b.docs.length && b.docs[j]! < x) j++
    if (j < b.docs.length && b.docs[j] === x) continue
    docs.push(x)
    scores.push(a.scores[i]!)
  }
  return { docs, scores }
}

// ---------------------------------------------------------------------------------------------
// Evaluating one window

const matchHits = (
  node: Extract<Compiled, { kind: "match" }>,
  lower: number,
  upper: number
): Hits =>
  unionAll(node.parts.map(({ cursor, weight, norms }) => {
    const docs: Array<number> = []
    const scores: Array<number> = []
    for (const { chunk, start, end } of cursor.slices(lower, upper)) {
      const postings = chunk.postings
      for (let i = start; i < end; i++) {
        docs.push(postings.docs[i]!)
        scores.push(score(norms, weight, postings.tfs[i]!, postings.lengths[i]!))
      }
    }
    return { docs, scores }
  }))

const keywordHits = (cursor: Cursor | undefined, lower: number, upper: number): Hits => {
  if (cursor === undefined) return EMPTY
  const docs: Array<number> = []
  for (const { chunk, start, end } of cursor.slices(lower, upper)) for (let i = start; i < end; i++) docs.push(chunk.postings.docs[i]!)
  return { docs, scores: new Array<number>(docs.length).fill(0) }
}

const evaluateNode = (node: Compiled, lower: number, upper: number): Hits => {
  switch (node.kind) {
    case "match":
      return matchHits(node, lower, upper)
    case "keyword":
      return keywordHits(node.cursor, lower, upper)
    case "phrase":
      return node.window
    case "any":
      return unionAll(node.clauses.map((clause) => evaluateNode(clause, lower, upper)))
    case "all": {
      let result: Hits | undefined
      for (const clause of node.clauses) {
        const hits = evaluateNode(clause, lower, upper)
        result = result === undefined ? hits : intersect(result, hits)
        if (result.docs.length === 0) return EMPTY
      }
      const excluded = unionAll(node.excluded.map((clause) => evaluateNode(clause, lower, upper)))
      return subtract(result ?? EMPTY, excluded)
    }
  }
}

/** Whether any document above `bound` may still match `node`. */
const beyond = (node: Compiled, bound: number): boolean => {
  switch (node.kind) {
    case "match":
      return node.parts.some(({ cursor }) => cursor.beyond(bound))
    case "keyword":
      return node.cursor?.beyond(bound) ?? false
    case "phrase":
      return node.terms?.every(({ cursor }) => cursor.beyond(bound)) ?? false
    case "any":
      return node.clauses.some((clause) => beyond(clause, bound))
    case "all":
      return node.clauses.every((clause) => beyond(clause, bound))
  }
}

// ---------------------------------------------------------------------------------------------
// Phrases

/** The postings of one phrase term for the candidate docs: chunk and index per candidate. */
interface TermRefs {
  readonly chunks: Array<LoadedChunk>
  readonly indexes: Array<number>
}

/** Docs present in every term's slices, with where each term's posting is. */
const phraseCandidates = (sliceLists: ReadonlyArray<ReadonlyArray<Slice>>): { docs: Array<number>; refs: Array<TermRefs> } => {
  const flat = sliceLists.map((slices) => {
    const docs: Array<number> = []
    const refs: TermRefs = { chunks: [], indexes: [] }
    for (const { chunk, start, end } of slices) {
      for (let i = start; i < end; i++) {
        docs.push(chunk.postings.docs[i]!)
        refs.chunks.push(chunk)
        refs.indexes.push(i)
      }
    }
    return { docs, refs }
  })
  const docs: Array<number> = []
  const refs: Array<TermRefs> = flat.map(() => ({ chunks: [], indexes: [] }))
  const at = flat.map(() => 0)
  const first = flat[0]!
  for (let i = 0; i < first.docs.length; i++) {
    const doc = first.docs[i]!
    let all = true
    for (let t = 1; t < flat.length && all; t++) {
      const list = flat[t]!.docs
      while (at[t]! < list.length && list[at[t]!]! < doc) at[t]!++
      all = list[at[t]!] === doc
    }
    if (!all) continue
    docs.push(doc)
    refs.forEach((ref, t) => {
      const index = t === 0 ? i : at[t]!
      ref.chunks.push(flat[t]!.refs.chunks[index]!)
      ref.indexes.push(flat[t]!.refs.indexes[index]!)
    })
  }
  return { docs, refs }
}

const positionsOf = (chunk: LoadedChunk, index: number): Uint32Array =>
  chunk.positions!.values.subarray(chunk.positions!.offsets[index]!, chunk.positions!.offsets[index + 1]!)

const contains = (sorted: Uint32Array, value: number): boolean => {
  let low = 0
  let high = sorted.length
  while (low < high) {
    const middle = (low + high) >>> 1
    if (sorted[middle]! < value) low = middle + 1
    else high = middle
  }
  return sorted[low] === value
}

/** Computes a phrase's matches in the window (loading the positions it needs). */
const phraseWindow = (node: PhraseNode, lower: number, upper: number): Effect.Effect<void, ReadError> => {
  node.window = EMPTY
  if (node.terms === undefined) return Effect.void
  const terms = node.terms
  const { docs, refs } = phraseCandidates(terms.map(({ cursor }) => cursor.slices(lower, upper)))
  if (docs.length === 0) return Effect.void
  return Effect.map(
    Effect.forEach(terms, ({ cursor }, t) => cursor.loadPositions([...new Set(refs[t]!.chunks)]), { discard: true }),
    () => {
      const out: Hits = { docs: [], scores: [] }
      docs.forEach((doc, c) => {
        const lists = terms.map((_, t) => positionsOf(refs[t]!.chunks[c]!, refs[t]!.indexes[c]!))
        let frequency = 0
        for (const start of lists[0]!) {
          const base = start - terms[0]!.offset
          if (terms.every(({ offset }, t) => t === 0 || contains(lists[t]!, base + offset))) frequency++
        }
        if (frequency === 0) return
        const chunk = refs[0]!.chunks[c]!
        out.docs.push(doc)
        out.scores.push(score(node.norms, node.weight, frequency, chunk.postings.lengths[refs[0]!.indexes[c]!]!))
      })
      node.window = out
    }
  )
}

const phraseNodes = (node: Compiled, out: Array<PhraseNode>): Array<PhraseNode> => {
  if (node.kind === "phrase") out.push(node)
  else if (node.kind === "all") [...node.clauses, ...node.excluded].forEach((clause) => phraseNodes(clause, out))
  else if (node.kind === "any") node.clauses.forEach((clause) => phraseNodes(clause, out))
  return out
}

// ---------------------------------------------------------------------------------------------
// Numeric ranges

const inRange = (range: RangeFilter, value: number): boolean =>
  (range.min === null || (range.minInclusive ? value >= range.min : value > range.min)) &&
  (range.max === null || (range.maxInclusive ? value <= range.max : value < range.max))

/** Keeps the hits whose numeric fields satisfy every range. */
const applyRanges = (
  source: CursorSource,
  fieldIndexes: ReadonlyArray<number>,
  ranges: ReadonlyArray<RangeFilter>,
  hits: Hits
): Effect.Effect<Hits, ReadError> => {
  if (ranges.length === 0 || hits.docs.length === 0) return Effect.succeed(hits)
  const keys = new Map<string, Uint8Array>()
  const keyOf = (field: number, doc: number) => `${field}:${Layout.blockOf(doc)[0]}`
  ranges.forEach((_, r) => {
    for (const doc of hits.docs) keys.set(keyOf(fieldIndexes[r]!, doc), Layout.numericKey(fieldIndexes[r]!, Layout.blockOf(doc)[0]))
  })
  const ids = [...keys.keys()]
  return Effect.map(readMany(source.view, source.namespaces.numeric, ids.map((id) => keys.get(id)!)), (records) => {
    const blocks = new Map(ids.map((id, i) => [id, records[i] === undefined ? undefined : Layout.decodeBlock(records[i]!)]))
    const out: Hits = { docs: [], scores: [] }
    hits.docs.forEach((doc, i) => {
      const slot = Layout.blockOf(doc)[1]
      const kept = ranges.every((range, r) => {
        const block = blocks.get(keyOf(fieldIndexes[r]!, doc))
        return block !== undefined && Layout.isPresent(block, slot) && inRange(range, block.values[slot]!)
      })
      if (kept) {
        out.docs.push(doc)
        out.scores.push(hits.scores[i]!)
      }
    })
    return out
  })
}

// ---------------------------------------------------------------------------------------------
// Compiling and running

interface Compilation {
  readonly root: Compiled
  readonly cursors: ReadonlyArray<Cursor>
}

/**
 * Every (field, term) id a resolved query reads; checks each field (a query from another
 * process is input too): its type, and for scored fields that the query carries their average.
 */
const termIds = (schema: IndexSchema, averages: ReadonlySet<string>, node: ResolvedNode, out: Set<string>): InvalidQuery | undefined => {
  const idOf = (name: string, term: string, type: string): string | InvalidQuery => {
    const field = schema.byName.get(name)
    if (field?.type !== type) return new InvalidQuery({ field: "q", message: `'${name}' is not a ${type} field of this index` })
    if (type === "text" && !averages.has(name)) return new InvalidQuery({ field: "q", message: `the query has no average length for '${name}'` })
    return Layout.termId(field.index, term)
  }
  const add = (id: string | InvalidQuery) => {
    if (id instanceof InvalidQuery) return id
    out.add(id)
    return undefined
  }
  switch (node._tag) {
    case "Match":
      for (const { field, term } of node.terms) {
        const bad = add(idOf(field, term, "text"))
        if (bad !== undefined) return bad
      }
      return undefined
    case "Phrase":
      for (const { term } of node.terms) {
        const bad = add(idOf(node.field, term, "text"))
        if (bad !== undefined) return bad
      }
      return undefined
    case "Keyword":
      return add(idOf(node.field, node.value, "keyword"))
    case "All":
    case "Any":
      for (const clause of node._tag === "All" ? [...node.clauses, ...node.excluded] : node.clauses) {
        const bad = termIds(schema, averages, clause, out)
        if (bad !== undefined) return bad
      }
      return undefined
  }
}

const compile = (schema: IndexSchema, query: ResolvedQuery, cursors: ReadonlyMap<string, Cursor>): Compilation => {
  const norms = new Map(query.fields.map(({ field, averageLength }) => [field, {
    k1PlusOne: query.k1 + 1,
    constant: query.k1 * (1 - query.b),
    perLength: query.k1 * query.b / averageLength
  }]))
  const cursorOf = (field: string, term: string) => cursors.get(Layout.termId(schema.byName.get(field)!.index, term))
  const visit = (node: ResolvedNode): Compiled => {
    switch (node._tag) {
      case "Match":
        return {
          kind: "match",
          parts: node.terms.flatMap(({ field, term, weight }) => {
            const cursor = cursorOf(field, term)
            return cursor === undefined ? [] : [{ cursor, weight, norms: norms.get(field)! }]
          })
        }
      case "Keyword":
        return { kind: "keyword", cursor: cursorOf(node.field, node.value) }
      case "Phrase": {
        const terms = node.terms.map(({ term, offset }) => ({ cursor: cursorOf(node.field, term), offset }))
        const present = terms.every((term) => term.cursor !== undefined) ? (terms as Array<{ cursor: Cursor; offset: number }>) : undefined
        return { kind: "phrase", terms: present, weight: node.weight, norms: norms.get(node.field)!, window: EMPTY }
      }
      case "All":
        return { kind: "all", clauses: node.clauses.map(visit), excluded: node.excluded.map(visit) }
      case "Any":
        return { kind: "any", clauses: node.clauses.map(visit) }
    }
  }
  return { root: visit(query.root!), cursors: [...cursors.values()] }
}

/** Opens a cursor per term present in this partition's dictionary. */
const openCursors = (
  source: CursorSource,
  ids: ReadonlyArray<string>
): Effect.Effect<Map<string, Cursor>, ReadError> =>
  Effect.map(readMany(source.view, source.namespaces.terms, ids.map(Layout.termKey)), (entries) => {
    const cursors = new Map<string, Cursor>()
    ids.forEach((id, i) => {
      const entry = entries[i]
      if (entry !== undefined) cursors.set(id, new Cursor(source, id, Layout.decodeEntry(entry)))
    })
    return cursors
  })

/** Concurrent page loads per round: LevelDB reads run on libuv's pool, so a few overlap. */
const LOAD_CONCURRENCY = 4

/** Runs a resolved query on one partition: its total and its `window` best hits. */
export const execute = (
  schema: IndexSchema,
  source: CursorSource,
  query: ResolvedQuery,
  window: number
): Effect.Effect<SearchResult, ReadError | InvalidQuery> =>
  Effect.gen(function*() {
    if (query.root === null) return { total: 0, hits: [] }
    const ids = new Set<string>()
    const bad = termIds(schema, new Set(query.fields.map(({ field }) => field)), query.root, ids)
    if (bad !== undefined) return yield* bad
    const rangeFields: Array<number> = []
    for (const range of query.ranges) {
      const field = schema.byName.get(range.field)
      if (field?.type !== "numeric") return yield* new InvalidQuery({ field: "filter", message: `'${range.field}' is not a numeric field of this index` })
      rangeFields.push(field.index)
    }
    const { root, cursors } = compile(schema, query, yield* openCursors(source, [...ids]))
    const phrases = phraseNodes(root, [])
    const top = new TopHits(window)
    let total = 0
    let lower = 0
    yield* Effect.forEach(cursors, (cursor) => cursor.loadNext(), { discard: true, concurrency: LOAD_CONCURRENCY })
    // Bounded: every round that does not stop loads at least one new page of a finite set
    // (checked below).
    for (;;) {
      let upper = Number.POSITIVE_INFINITY
      for (const cursor of cursors) upper = Math.min(upper, cursor.through)
      yield* Effect.forEach(phrases, (phrase) => phraseWindow(phrase, lower, upper), { discard: true })
      const hits = yield* applyRanges(source, rangeFields, query.ranges, evaluateNode(root, lower, upper))
      total += hits.docs.length
      hits.docs.forEach((doc, i) => top.offer(doc, hits.scores[i]!))
      if (top.pendingCount >= PENDING_MAX) yield* top.flush(source.view, source.namespaces)
      if (upper === Number.POSITIVE_INFINITY || !beyond(root, upper)) break
      const loading = cursors.filter((cursor) => cursor.needsPage(upper))
      // The cursor that set `upper` has more pages, so one loads: a round without progress is a bug.
      if (loading.length === 0) return yield* Effect.die(new Error("search evaluation made no progress"))
      for (const cursor of cursors) cursor.release(upper)
      yield* Effect.forEach(loading, (cursor) => cursor.loadNext(), { discard: true, concurrency: LOAD_CONCURRENCY })
      lower = upper
    }
    yield* top.flush(source.view, source.namespaces)
    return { total, hits: top.result() }
  })
