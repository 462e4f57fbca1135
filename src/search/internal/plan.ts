/**
 * From a search request to a query plan, against the index definition: request parameters are
 * checked (each error naming its parameter), words are analyzed per field (a word that analyzes
 * to several terms becomes a phrase; one that analyzes to none, a stop word, drops out of its
 * group), filters become keyword clauses and numeric ranges.
 *
 * Also the one traversal order of plan leaves that partitions and the coordinator agree on.
 */
import { Effect } from "effect"
import type { Field, IndexSchema } from "../IndexSchema.js"
import * as QueryParser from "../QueryParser.js"
import { InvalidQuery } from "../SearchError.js"
import type { MatchSource, PlanNode, QueryPlan, RangeFilter, SearchRequest } from "../SearchMessages.js"

/** A checked search request. */
export interface SearchOptions {
  readonly limit: number
  readonly offset: number
  readonly prefix: boolean
  readonly fuzzy: number
  /** Text fields searched by words without `field:`. */
  readonly fields: ReadonlyArray<Field>
  /** Field name → boost in effect (the request's `name^boost`, else the definition's). */
  readonly boosts: ReadonlyMap<string, number>
}

const invalid = (field: string, message: string, position?: number) =>
  new InvalidQuery(position === undefined ? { field, message } : { field, message, position })

const isInteger = (value: unknown, min: number, max: number): value is number =>
  typeof value === "number" && Number.isInteger(value) && value >= min && value <= max

/** Parses `fields` entries (`name` or `name^boost`) into text fields and boosts. */
const checkFields = (schema: IndexSchema, entries: ReadonlyArray<string> | undefined): InvalidQuery | Pick<SearchOptions, "fields" | "boosts"> => {
  const boosts = new Map(schema.textFields.map((field) => [field.name, field.boost]))
  if (entries === undefined || entries.length === 0) return { fields: schema.textFields, boosts }
  if (entries.length > schema.fields.length) return invalid("fields", `names at most ${schema.fields.length} fields`)
  const fields: Array<Field> = []
  for (const entry of entries) {
    const [name, boostText, ...rest] = String(entry).split("^")
    const field = schema.byName.get(name!)
    if (field === undefined) return invalid("fields", `unknown field '${name}'`)
    if (field.type !== "text") return invalid("fields", `'${name}' is a ${field.type} field; only text fields are searched by words`)
    const boost = boostText === undefined ? field.boost : Number(boostText)
    if (rest.length > 0 || !(Number.isFinite(boost) && boost > 0)) return invalid("fields", `'${entry}': a boost is a positive number, as in title^2`)
    if (!fields.includes(field)) fields.push(field)
    boosts.set(field.name, boost)
  }
  return { fields, boosts }
}

/** Checks the request's parameters (all but `q` and `filter`). */
export const checkRequest = (schema: IndexSchema, request: SearchRequest): Effect.Effect<SearchOptions, InvalidQuery> =>
  Effect.suspend(() => {
    const { limits } = schema
    const limit = request.limit ?? 10
    if (!isInteger(limit, 1, limits.limitMax)) return Effect.fail(invalid("limit", `must be an integer from 1 to ${limits.limitMax}`))
    const offset = request.offset ?? 0
    if (!isInteger(offset, 0, limits.resultWindowMax - limit)) {
      return Effect.fail(invalid("offset", `must be a non-negative integer with offset + limit at most ${limits.resultWindowMax}`))
    }
    const fuzzy = request.fuzzy ?? 0
    if (!isInteger(fuzzy, 0, 2)) return Effect.fail(invalid("fuzzy", "fuzzy distance must be 0, 1 or 2"))
    if (request.prefix !== undefined && typeof request.prefix !== "boolean") return Effect.fail(invalid("prefix", "must be true or false"))
    const fields = checkFields(schema, request.fields)
    if (fields instanceof InvalidQuery) return Effect.fail(fields)
    return Effect.succeed({ limit, offset, prefix: request.prefix === true, fuzzy, ...fields })
  })

interface Planner {
  readonly schema: IndexSchema
  readonly options: SearchOptions
}

/** A field named in the query (`field:`), checked. */
const namedField = (planner: Planner, name: string, position: number): Field | InvalidQuery => {
  const field = planner.schema.byName.get(name)
  if (field === undefined) return invalid("q", `unknown field '${name}'`, position)
  if (field.type === "numeric") return invalid("q", `'${name}' is a numeric field: use a filter such as ${name}:1..10`, position)
  return field
}

/** Combines per-field sources and phrases into one node (undefined when there is none). */
const combine = (sources: ReadonlyArray<MatchSource>, others: ReadonlyArray<PlanNode>): PlanNode | undefined => {
  const nodes: Array<PlanNode> = sources.length > 0 ? [{ _tag: "Match", sources }, ...others] : [...others]
  if (nodes.length <= 1) return nodes[0]
  return { _tag: "Any", clauses: nodes }
}

/** Analyzes `text` in each field: one term → a source, several → a phrase, none → nothing. */
const analyzeIn = (fields: ReadonlyArray<Field>, text: string, prefix: boolean, fuzzy: number): PlanNode | undefined => {
  const sources: Array<MatchSource> = []
  const phrases: Array<PlanNode> = []
  for (const field of fields) {
    const analyzer = field.analyzer!
    if (prefix || fuzzy > 0) {
      // Expanding words skip stop-word removal (`the*` should find "theory"); expansions come
      // from the dictionary, where stop words never are.
      const tokens = analyzer.tokens(text)
      if (tokens.length === 1) {
        sources.push({ field: field.name, term: tokens[0]!, prefix, fuzzy })
        continue
      }
    }
    const { terms, positions } = analyzer.analyze(text)
    if (terms.length === 1) sources.push({ field: field.name, term: terms[0]!, prefix: false, fuzzy: 0 })
    else if (terms.length > 1) {
      phrases.push({ _tag: "Phrase", field: field.name, terms: terms.map((term, i) => ({ term, offset: positions[i]! - positions[0]! })) })
    }
  }
  return combine(sources, phrases)
}

const planTerm = (planner: Planner, node: QueryParser.TermNode | QueryParser.PhraseNode): PlanNode | undefined | InvalidQuery => {
  const expanding = node._tag === "Term" && (node.prefix || node.fuzzy !== undefined)
  let fields = planner.options.fields
  if (node.field !== undefined) {
    const field = namedField(planner, node.field, node.position)
    if (field instanceof InvalidQuery) return field
    if (field.type === "keyword") {
      if (expanding) return invalid("q", `'${field.name}' is a keyword field: prefix and fuzzy matching apply to text fields`, node.position)
      return { _tag: "Keyword", field: field.name, value: node.text }
    }
    fields = [field]
  }
  if (node._tag === "Phrase") return analyzeIn(fields, node.text, false, 0)
  return analyzeIn(fields, node.text, node.prefix || planner.options.prefix, node.fuzzy ?? planner.options.fuzzy)
}

const planAnd = (planner: Planner, node: QueryParser.AndNode): PlanNode | undefined | InvalidQuery => {
  const clauses: Array<PlanNode> = []
  const excluded: Array<PlanNode> = []
  for (const clause of node.clauses) {
    const planned = planNode(planner, clause._tag === "Not" ? clause.clause : clause)
    if (planned instanceof InvalidQuery) return planned
    if (planned !== undefined) (clause._tag === "Not" ? excluded : clauses).push(planned)
  }
  // Only exclusions left (the rest were stop words): the group drops out like a stop word.
  if (clauses.length === 0) return undefined
  if (clauses.length === 1 && excluded.length === 0) return clauses[0]
  return { _tag: "All", clauses, excluded }
}

const planNode = (planner: Planner, node: QueryParser.QueryNode): PlanNode | undefined | InvalidQuery => {
  switch (node._tag) {
    case "Term":
    case "Phrase":
      return planTerm(planner, node)
    case "And":
      return planAnd(planner, node)
    case "Not":
      // The parser only puts exclusions inside groups; a lone one matches nothing useful.
      return planAnd(planner, { _tag: "And", clauses: [node] })
    case "Or": {
      const clauses: Array<PlanNode> = []
      for (const clause of node.clauses) {
        const planned = planNode(planner, clause)
        if (planned instanceof InvalidQuery) return planned
        if (planned !== undefined) clauses.push(planned)
      }
      return clauses.length <= 1 ? clauses[0] : { _tag: "Any", clauses }
    }
  }
}

/** Turns filters into keyword clauses and numeric ranges. */
const planFilters = (
  schema: IndexSchema,
  filters: ReadonlyArray<QueryParser.FilterText>
): InvalidQuery | { readonly keywords: ReadonlyArray<PlanNode>; readonly ranges: ReadonlyArray<RangeFilter> } => {
  const keywords: Array<PlanNode> = []
  const ranges: Array<RangeFilter> = []
  for (const filter of filters) {
    const field = schema.byName.get(filter.field)
    if (field === undefined) return invalid("filter", `unknown field '${filter.field}' in filter`)
    if (field.type === "text") return invalid("filter", `'${filter.field}' is a text field: filters apply to keyword and numeric fields`)
    if (field.type === "keyword") {
      keywords.push({ _tag: "Keyword", field: field.name, value: filter.value })
      continue
    }
    const range = QueryParser.parseRange(filter.value)
    if (range === undefined) return invalid("filter", `'${filter.field}:${filter.value}': a numeric filter is 5, 1..5, 1.., ..5, >1, >=1, <5 or <=5`)
    ranges.push({ field: field.name, min: range.min ?? null, minInclusive: range.minInclusive, max: range.max ?? null, maxInclusive: range.maxInclusive })
  }
  return { keywords, ranges }
}

/** Plans a parsed query with its filters. */
export const plan = (
  schema: IndexSchema,
  options: SearchOptions,
  query: QueryParser.QueryNode,
  filterTexts: ReadonlyArray<string> | undefined
): Effect.Effect<QueryPlan, InvalidQuery> =>
  Effect.gen(function*() {
    const texts = filterTexts ?? []
    if (texts.length > schema.limits.filtersMax) return yield* invalid("filter", `at most ${schema.limits.filtersMax} filters`)
    const parsed = yield* Effect.forEach(texts, QueryParser.parseFilter)
    const filters = planFilters(schema, parsed)
    if (filters instanceof InvalidQuery) return yield* filters
    const root = planNode({ schema, options }, query)
    if (root instanceof InvalidQuery) return yield* root
    if (root === undefined) return { root: null, ranges: filters.ranges }
    if (filters.keywords.length === 0) return { root, ranges: filters.ranges }
    return { root: { _tag: "All", clauses: [root, ...filters.keywords], excluded: [] }, ranges: filters.ranges }
  })

/** A leaf of a plan: a word of one field that partitions look up (and maybe expand). */
export type Leaf = MatchSource

/** The leaves of a plan in its one agreed order: each match source, each phrase term, depth first. */
export const leaves = (root: PlanNode | null): ReadonlyArray<Leaf> => {
  const out: Array<Leaf> = []
  const visit = (node: PlanNode): void => {
    switch (node._tag) {
      case "Match":
        out.push(...node.sources)
        return
      case "Phrase":
        for (const term of node.terms) out.push({ field: node.field, term: term.term, prefix: false, fuzzy: 0 })
        return
      case "Keyword":
        return
      case "All":
        node.clauses.forEach(visit)
        node.excluded.forEach(visit)
        return
      case "Any":
        node.clauses.forEach(visit)
        return
    }
  }
  if (root !== null) visit(root)
  return out
}
