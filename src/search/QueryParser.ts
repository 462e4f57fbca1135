/**
 * The query language, parsed into a syntax tree that knows nothing about the index:
 *
 *   cat dog            both must match (juxtaposition is AND)
 *   cat OR dog         either (OR binds tighter than juxtaposition: `a b OR c` = a AND (b OR c))
 *   "black cat"        a phrase (consecutive positions)
 *   -cat  -"a b"  -(x OR y)   excludes; a group needs at least one clause that is not excluded
 *   title:cat  title:"black cat"   restricts to one field (a keyword field matches the exact value)
 *   cat*               prefix;   cat~  cat~1  cat~2   fuzzy (edit distance, `~` alone is 2)
 *   (a OR b) c         grouping
 *
 * Every error is an `InvalidQuery` naming `q`, with the character offset. Filters
 * (`field:value`, `field:1..5`, `field:>=3`) are parsed here too, naming `filter`.
 */
import { Effect } from "effect"
import { InvalidQuery } from "./SearchError.js"

/** A word: `text` is raw (analysis happens against the schema later). */
export interface TermNode {
  readonly _tag: "Term"
  readonly field: string | undefined
  readonly text: string
  readonly prefix: boolean
  /** Edit distance from `~`, when given. */
  readonly fuzzy: number | undefined
  readonly position: number
}

/** A quoted phrase. */
export interface PhraseNode {
  readonly _tag: "Phrase"
  readonly field: string | undefined
  readonly text: string
  readonly position: number
}

/** All clauses must match (excluded ones must not). */
export interface AndNode {
  readonly _tag: "And"
  readonly clauses: ReadonlyArray<QueryNode>
}

/** At least one alternative must match. */
export interface OrNode {
  readonly _tag: "Or"
  readonly clauses: ReadonlyArray<QueryNode>
}

/** Excludes documents matching `clause`; only ever a clause of an `And`. */
export interface NotNode {
  readonly _tag: "Not"
  readonly clause: QueryNode
  readonly position: number
}

/** A parsed query. */
export type QueryNode = TermNode | PhraseNode | AndNode | OrNode | NotNode

/** Bounds of the parser (the index's limits by default). */
export interface ParseOptions {
  readonly bytesMax?: number | undefined
  readonly clausesMax?: number | undefined
  readonly depthMax?: number | undefined
}

/** A filter as written: the field and the raw value after the first ':'. */
export interface FilterText {
  readonly field: string
  readonly value: string
}

/** A numeric interval; a missing bound is open. */
export interface NumericRange {
  readonly min: number | undefined
  readonly minInclusive: boolean
  readonly max: number | undefined
  readonly maxInclusive: boolean
}

type Token =
  | { readonly kind: "open"; readonly position: number; readonly negated: boolean }
  | { readonly kind: "close"; readonly position: number }
  | { readonly kind: "or"; readonly position: number }
  | { readonly kind: "term"; readonly position: number; readonly negated: boolean; readonly node: TermNode }
  | { readonly kind: "phrase"; readonly position: number; readonly negated: boolean; readonly node: PhraseNode }

/** A failure of the lexer or parser, returned (never thrown); turned into `InvalidQuery` at the boundary. */
class Failure {
  constructor(readonly message: string, readonly position: number) {}
}

const FIELD_PREFIX = /^([A-Za-z_][A-Za-z0-9_.-]*):/
const SPACE = /\s/u
const isSpace = (char: string | undefined) => char !== undefined && SPACE.test(char)
const ends = (char: string | undefined) => char === undefined || char === "(" || char === ")" || char === "\"" || isSpace(char)

/** Splits the `~N` and `*` suffixes off a word. */
const suffixes = (word: string, position: number): { text: string; prefix: boolean; fuzzy: number | undefined } | Failure => {
  let text = word
  let prefix = false
  let fuzzy: number | undefined
  for (let pass = 0; pass < 2; pass++) {
    const tilde = /~(\d*)$/.exec(text)
    if (tilde !== null && fuzzy === undefined) {
      fuzzy = tilde[1] === "" ? 2 : Number(tilde[1])
      if (!(fuzzy <= 2)) return new Failure(`fuzzy distance must be 0, 1 or 2 (got ${tilde[1]})`, position)
      text = text.slice(0, tilde.index)
    } else if (text.endsWith("*") && !prefix) {
      prefix = true
      text = text.slice(0, -1)
    }
  }
  if (text.length === 0) return new Failure("expected a term", position)
  return { text, prefix, fuzzy }
}

/** Reads a quoted phrase starting at `at` (the opening quote). */
const readPhrase = (q: string, at: number): { text: string; end: number } | Failure => {
  const close = q.indexOf("\"", at + 1)
  if (close < 0) return new Failure("unbalanced quote: a phrase is not closed", at)
  const text = q.slice(at + 1, close)
  if (text.trim().length === 0) return new Failure("empty phrase", at)
  return { text, end: close + 1 }
}

/** Reads one token at `at` (not whitespace); returns it and where the next one starts. */
const readToken = (q: string, start: number): { token: Token; end: number } | Failure => {
  let at = start
  if (q[at] === "(") return { token: { kind: "open", position: at, negated: false }, end: at + 1 }
  if (q[at] === ")") return { token: { kind: "close", position: at }, end: at + 1 }
  const negated = q[at] === "-"
  if (negated) {
    at++
    if (ends(q[at]) && q[at] !== "(" && q[at] !== "\"") return new Failure("'-' must be followed by a term, a phrase or a group", start)
    if (q[at] === "(") return { token: { kind: "open", position: start, negated: true }, end: at + 1 }
  }
  if (q[at] === "\"") {
    const phrase = readPhrase(q, at)
    if (phrase instanceof Failure) return phrase
    return { token: { kind: "phrase", position: start, negated, node: { _tag: "Phrase", field: undefined, text: phrase.text, position: start } }, end: phrase.end }
  }
  let end = at
  while (!ends(q[end])) end++
  const word = q.slice(at, end)
  if (!negated && word === "OR") return { token: { kind: "or", position: start }, end }
  const fielded = FIELD_PREFIX.exec(word)
  const field = fielded?.[1]
  const rest = fielded === null ? word : word.slice(fielded[0].length)
  if (field !== undefined && rest.length === 0) {
    if (q[end] === "\"") {
      const phrase = readPhrase(q, end)
      if (phrase instanceof Failure) return phrase
      return { token: { kind: "phrase", position: start, negated, node: { _tag: "Phrase", field, text: phrase.text, position: start } }, end: phrase.end }
    }
    return new Failure(`'${field}:' must be followed by a term or a phrase (a field applies to one of them, not to a group)`, start)
  }
  const parts = suffixes(rest, start)
  if (parts instanceof Failure) return parts
  return { token: { kind: "term", position: start, negated, node: { _tag: "Term", field, ...parts, position: start } }, end }
}

/** Splits the query into tokens. Bounded: every token consumes at least one character. */
const lex = (q: string): ReadonlyArray<Token> | Failure => {
  const tokens: Array<Token> = []
  let at = 0
  while (at < q.length) {
    if (isSpace(q[at])) {
      at++
      continue
    }
    const read = readToken(q, at)
    if (read instanceof Failure) return read
    tokens.push(read.token)
    at = read.end
  }
  return tokens
}

/** A recursive-descent parser over the tokens; depth is bounded by `depthMax`. */
class Parser {
  private next = 0
  private clauses = 0

  constructor(private readonly tokens: ReadonlyArray<Token>, private readonly clausesMax: number, private readonly depthMax: number) {}

  parseQuery(): QueryNode | Failure {
    return this.parseAnd(0, false)
  }

  private peek(): Token | undefined {
    return this.tokens[this.next]
  }

  private parseAnd(depth: number, nested: boolean): QueryNode | Failure {
    const clauses: Array<QueryNode> = []
    const startToken = this.peek()
    for (let token = this.peek(); token !== undefined; token = this.peek()) {
      if (token.kind === "close") {
        if (nested) break
        return new Failure("unbalanced ')': no group is open", token.position)
      }
      const clause = this.parseOr(depth)
      if (clause instanceof Failure) return clause
      clauses.push(clause)
    }
    if (clauses.length === 0) return new Failure(nested ? "empty group" : "the query is empty", startToken?.position ?? 0)
    if (clauses.every((clause) => clause._tag === "Not")) {
      return new Failure("a query or group needs at least one clause that is not excluded with '-'", (clauses[0] as NotNode).position)
    }
    return clauses.length === 1 ? clauses[0]! : { _tag: "And", clauses }
  }

  private parseOr(depth: number): QueryNode | Failure {
    const first = this.parseUnary(depth)
    if (first instanceof Failure) return first
    const alternatives = [first]
    for (let token = this.peek(); token?.kind === "or"; token = this.peek()) {
      this.next++
      const after = this.peek()
      if (after === undefined || after.kind === "close" || after.kind === "or") {
        return new Failure("dangling OR: it must stand between two clauses", token.position)
      }
      const alternative = this.parseUnary(depth)
      if (alternative instanceof Failure) return alternative
      alternatives.push(alternative)
    }
    if (alternatives.length === 1) return first
    const excluded = alternatives.find((node): node is NotNode => node._tag === "Not")
    if (excluded !== undefined) return new Failure("an excluded clause cannot be an alternative of OR", excluded.position)
    return { _tag: "Or", clauses: alternatives }
  }

  private parseUnary(depth: number): QueryNode | Failure {
    const token = this.tokens[this.next++]!
    switch (token.kind) {
      case "or":
        return new Failure("dangling OR: it must stand between two clauses", token.position)
      case "close":
        return new Failure("unbalanced ')': no group is open", token.position)
      case "term":
      case "phrase":
        if (++this.clauses > this.clausesMax) return new Failure(`a query has at most ${this.clausesMax} terms and phrases`, token.position)
        return token.negated ? { _tag: "Not", clause: token.node, position: token.position } : token.node
      case "open": {
        if (depth + 1 > this.depthMax) return new Failure(`groups nest at most ${this.depthMax} deep`, token.position)
        const inner = this.parseAnd(depth + 1, true)
        if (inner instanceof Failure) return inner
        const close = this.tokens[this.next++]
        if (close?.kind !== "close") return new Failure("unbalanced '(': a group is not closed", token.position)
        return token.negated ? { _tag: "Not", clause: inner, position: token.position } : inner
      }
    }
  }
}

const byteLength = (text: string) => Buffer.byteLength(text, "utf8")

/** Parses a query. */
export const parse = (q: string, options: ParseOptions = {}): Effect.Effect<QueryNode, InvalidQuery> =>
  Effect.suspend(() => {
    if (typeof q !== "string") return Effect.fail(new InvalidQuery({ field: "q", message: "must be a string" }))
    const bytesMax = options.bytesMax ?? 4_096
    if (byteLength(q) > bytesMax) return Effect.fail(new InvalidQuery({ field: "q", message: `must be at most ${bytesMax} bytes` }))
    const tokens = lex(q)
    if (tokens instanceof Failure) return Effect.fail(new InvalidQuery({ field: "q", message: tokens.message, position: tokens.position }))
    const node = new Parser(tokens, options.clausesMax ?? 64, options.depthMax ?? 8).parseQuery()
    return node instanceof Failure
      ? Effect.fail(new InvalidQuery({ field: "q", message: node.message, position: node.position }))
      : Effect.succeed(node)
  })

/** Splits a filter `field:value`. */
export const parseFilter = (text: string): Effect.Effect<FilterText, InvalidQuery> =>
  Effect.suspend(() => {
    const match = typeof text === "string" ? FIELD_PREFIX.exec(text) : null
    if (match === null) return Effect.fail(new InvalidQuery({ field: "filter", message: `'${String(text)}' is not of the form field:value` }))
    const value = text.slice(match[0].length)
    if (value.length === 0) return Effect.fail(new InvalidQuery({ field: "filter", message: `'${text}' has no value after the ':'` }))
    return Effect.succeed({ field: match[1]!, value })
  })

const NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/

const toNumber = (text: string): number | undefined => {
  const value = NUMBER.test(text) ? Number(text) : Number.NaN
  // `1e999` reads as Infinity: refused, a bound must be a finite number.
  return Number.isFinite(value) ? value : undefined
}

/**
 * Parses a numeric filter value: `5` (equals), `1..5` (inclusive; either end may be left out),
 * `>3`, `>=3`, `<3`, `<=3`. Returns `undefined` when malformed.
 */
export const parseRange = (value: string): NumericRange | undefined => {
  const comparison = /^(>=|<=|>|<)(.*)$/.exec(value)
  if (comparison !== null) {
    const bound = toNumber(comparison[2]!)
    if (bound === undefined) return undefined
    const op = comparison[1]!
    return op.startsWith(">")
      ? { min: bound, minInclusive: op === ">=", max: undefined, maxInclusive: false }
      : { min: undefined, minInclusive: false, max: bound, maxInclusive: op === "<=" }
  }
  const dots = value.indexOf("..")
  if (dots >= 0) {
    const low = value.slice(0, dots)
    const high = value.slice(dots + 2)
    const min = low === "" ? undefined : toNumber(low)
    const max = high === "" ? undefined : toNumber(high)
    if ((low !== "" && min === undefined) || (high !== "" && max === undefined) || (low === "" && high === "")) return undefined
    return { min, minInclusive: true, max, maxInclusive: true }
  }
  const exact = toNumber(value)
  return exact === undefined ? undefined : { min: exact, minInclusive: true, max: exact, maxInclusive: true }
}
