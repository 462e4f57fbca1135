/**
 * The definition of a search index: its fields (text, keyword, numeric) with their boosts and
 * analysis, the BM25 parameters, the partition count and every limit. `make` validates a
 * definition once; everything downstream trusts the result. `infer` derives field types from a
 * JSON document for the HTTP API (strings → text, arrays of strings → keyword, numbers → numeric).
 *
 * The `fingerprint` covers what the stored data depends on (field names, types, analysis);
 * boosts, BM25 parameters and limits may change between runs without rebuilding the index.
 */
import { Effect } from "effect"
import * as Analyzer from "./Analyzer.js"
import { InvalidDocument, InvalidSchema } from "./SearchError.js"

/** A tokenized, scored field. */
export interface TextFieldDefinition {
  readonly type: "text"
  /** Score multiplier of matches in this field (default 1). */
  readonly boost?: number | undefined
  readonly stopWords?: Analyzer.StopWords | undefined
  readonly lowercase?: boolean | undefined
  readonly foldDiacritics?: boolean | undefined
}

/** Exact string values (one or many per document), for `field:value` and filters; not scored. */
export interface KeywordFieldDefinition {
  readonly type: "keyword"
}

/** One finite number per document, for range filters. */
export interface NumericFieldDefinition {
  readonly type: "numeric"
}

/** The definition of one field. */
export type FieldDefinition = TextFieldDefinition | KeywordFieldDefinition | NumericFieldDefinition

/** The bounds of an index, one named field each. */
export interface SearchLimits {
  /** Largest document, as UTF-8 JSON bytes (default 1 MiB): `DocumentTooLarge` past it. */
  readonly documentBytesMax: number
  /** Longest document id in UTF-8 bytes (default 512, as HTTP names). */
  readonly idBytesMax: number
  /** Largest `limit` of a search (default 1,000). */
  readonly limitMax: number
  /** Largest `offset + limit` (default 10,000): every partition keeps that many hits in memory. */
  readonly resultWindowMax: number
  /** Longest query text in UTF-8 bytes (default 4,096). */
  readonly queryBytesMax: number
  /** Most terms and phrases in one query (default 64). */
  readonly queryClausesMax: number
  /** Deepest nesting of parentheses (default 8). */
  readonly queryDepthMax: number
  /** Most filters in one search (default 16). */
  readonly filtersMax: number
  /** Most distinct terms prefix and fuzzy words of one query may expand to (default 1,000). */
  readonly expansionsMax: number
  /** Most dictionary terms one fuzzy word may examine in a partition (default 1,000,000). */
  readonly dictionaryScanMax: number
  /** Longest keyword value in UTF-8 bytes (default 256). */
  readonly keywordBytesMax: number
  /** Most values of one keyword field in one document (default 256). */
  readonly keywordValuesMax: number
  /** Longest indexed token in characters (default 64); longer tokens are not indexed. */
  readonly termLengthMax: number
  /** Most documents in one `indexDocuments` call (default 1,000). */
  readonly batchDocumentsMax: number
}

/** The input of `make`. */
export interface IndexSchemaInput {
  readonly fields: Readonly<Record<string, FieldDefinition>>
  /** BM25 parameters (default k1 = 1.2, b = 0.75). */
  readonly bm25?: { readonly k1?: number | undefined; readonly b?: number | undefined } | undefined
  /** Number of partitions P, 1 to 256 (default 8). */
  readonly partitions?: number | undefined
  readonly limits?: Partial<SearchLimits> | undefined
}

/** A validated field. `index` (1 to 64) is the byte that tags the field in stored keys. */
export interface Field {
  readonly name: string
  readonly index: number
  readonly type: FieldDefinition["type"]
  readonly boost: number
  /** Present for text fields. */
  readonly analyzer: Analyzer.Analyzer | undefined
}

/** A validated index definition. */
export interface IndexSchema {
  /** Fields in name order (their `index` order). */
  readonly fields: ReadonlyArray<Field>
  readonly byName: ReadonlyMap<string, Field>
  readonly byIndex: ReadonlyArray<Field | undefined>
  readonly textFields: ReadonlyArray<Field>
  readonly k1: number
  readonly b: number
  readonly partitions: number
  readonly limits: SearchLimits
  /** What stored data depends on; compared with the partition's stored one. */
  readonly fingerprint: string
  readonly input: IndexSchemaInput
}

/** The default limits. */
export const defaultLimits: SearchLimits = {
  documentBytesMax: 1024 * 1024,
  idBytesMax: 512,
  limitMax: 1_000,
  resultWindowMax: 10_000,
  queryBytesMax: 4_096,
  queryClausesMax: 64,
  queryDepthMax: 8,
  filtersMax: 16,
  expansionsMax: 1_000,
  dictionaryScanMax: 1_000_000,
  keywordBytesMax: 256,
  keywordValuesMax: 256,
  termLengthMax: Analyzer.TERM_LENGTH_MAX,
  batchDocumentsMax: 1_000
}

/** Most fields in an index: each needs a one-byte tag, and queries fan out over text fields. */
export const FIELDS_MAX = 64
/** Most partitions: a query fans out to every one of them. */
export const PARTITIONS_MAX = 256

/** Partitions of an index whose definition names none. */
export const PARTITIONS_DEFAULT = 8

const FIELD_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/

const invalid = (field: string, message: string) => new InvalidSchema({ field, message })

const positiveFinite = (value: unknown): value is number => typeof value === "number" && Number.isFinite(value) && value > 0

/** Checks one field definition. */
const checkField = (name: string, definition: FieldDefinition): InvalidSchema | undefined => {
  const at = `fields.${name}`
  if (!FIELD_NAME.test(name)) return invalid(at, "a field name is 1 to 64 characters of A-Z, a-z, 0-9, '_', '.', '-', not starting with a digit")
  // Names every object already has (`constructor`, `toString`, `__proto__`...) would read as fields that exist.
  if (name in Object.prototype) return invalid(at, "is a reserved name")
  if (typeof definition !== "object" || definition === null) return invalid(at, "must be an object with a type")
  if (definition.type === "keyword" || definition.type === "numeric") return undefined
  if (definition.type !== "text") return invalid(`${at}.type`, "must be \"text\", \"keyword\" or \"numeric\"")
  if (definition.boost !== undefined && !positiveFinite(definition.boost)) return invalid(`${at}.boost`, "must be a positive finite number")
  const stop = definition.stopWords
  if (stop !== undefined && stop !== "none" && !Analyzer.isLanguage(stop) && !(Array.isArray(stop) && stop.every((word) => typeof word === "string"))) {
    return invalid(`${at}.stopWords`, `must be "none", a language (${Analyzer.languages.join(", ")}) or a list of words`)
  }
  return undefined
}

/**
 * How far an index's definition may raise each limit: they bound a request's memory and time, so
 * whoever may define an index (over HTTP: anyone with the token) must not lift them.
 */
export const limitsCeiling: SearchLimits = {
  documentBytesMax: 16 * 1024 * 1024,
  idBytesMax: 512,
  limitMax: 10_000,
  resultWindowMax: 100_000,
  queryBytesMax: 65_536,
  queryClausesMax: 256,
  queryDepthMax: 32,
  filtersMax: 128,
  expansionsMax: 10_000,
  dictionaryScanMax: 10_000_000,
  keywordBytesMax: 4_096,
  keywordValuesMax: 4_096,
  termLengthMax: Analyzer.TERM_LENGTH_MAX,
  batchDocumentsMax: 10_000
}

/** Checks the limits: every one a positive integer, at most its ceiling, and no unknown one. */
const checkLimits = (limits: SearchLimits): InvalidSchema | undefined => {
  for (const [name, value] of Object.entries(limits)) {
    if (!Object.hasOwn(limitsCeiling, name)) return invalid(`limits.${name}`, `is not a limit (${Object.keys(limitsCeiling).join(", ")})`)
    const ceiling = limitsCeiling[name as keyof SearchLimits]
    if (!Number.isSafeInteger(value) || value < 1 || value > ceiling) return invalid(`limits.${name}`, `must be an integer from 1 to ${ceiling}`)
  }
  if (limits.limitMax > limits.resultWindowMax) return invalid("limits.limitMax", "must not exceed limits.resultWindowMax")
  return undefined
}

/** Validates an index definition. */
export const make = (input: IndexSchemaInput): Effect.Effect<IndexSchema, InvalidSchema> =>
  Effect.suspend(() => {
    if (typeof input !== "object" || input === null || Array.isArray(input)) return Effect.fail(invalid("definition", "must be an object with fields"))
    if (input.fields !== undefined && (typeof input.fields !== "object" || input.fields === null || Array.isArray(input.fields))) {
      return Effect.fail(invalid("fields", "must be an object of field definitions"))
    }
    if (input.limits !== undefined && (typeof input.limits !== "object" || input.limits === null)) return Effect.fail(invalid("limits", "must be an object"))
    const names = Object.keys(input.fields ?? {}).sort()
    if (names.length === 0) return Effect.fail(invalid("fields", "an index needs at least one field"))
    if (names.length > FIELDS_MAX) return Effect.fail(invalid("fields", `an index has at most ${FIELDS_MAX} fields`))
    for (const name of names) {
      const bad = checkField(name, input.fields[name]!)
      if (bad !== undefined) return Effect.fail(bad)
    }
    const k1 = input.bm25?.k1 ?? 1.2
    const b = input.bm25?.b ?? 0.75
    if (!Number.isFinite(k1) || k1 < 0) return Effect.fail(invalid("bm25.k1", "must be a non-negative finite number"))
    if (!Number.isFinite(b) || b < 0 || b > 1) return Effect.fail(invalid("bm25.b", "must be between 0 and 1"))
    const partitions = input.partitions ?? PARTITIONS_DEFAULT
    if (!Number.isInteger(partitions) || partitions < 1 || partitions > PARTITIONS_MAX) {
      return Effect.fail(invalid("partitions", `must be an integer from 1 to ${PARTITIONS_MAX}`))
    }
    const limits: SearchLimits = { ...defaultLimits, ...input.limits }
    const badLimits = checkLimits(limits)
    if (badLimits !== undefined) return Effect.fail(badLimits)
    return Effect.succeed(build(input, names, k1, b, partitions, limits))
  })

const build = (
  input: IndexSchemaInput,
  names: ReadonlyArray<string>,
  k1: number,
  b: number,
  partitions: number,
  limits: SearchLimits
): IndexSchema => {
  const fields: Array<Field> = names.map((name, i) => {
    const definition = input.fields[name]!
    const text = definition.type === "text" ? definition : undefined
    return {
      name,
      index: i + 1,
      type: definition.type,
      boost: text?.boost ?? 1,
      analyzer: text === undefined ? undefined : Analyzer.make({
        lowercase: text.lowercase,
        foldDiacritics: text.foldDiacritics,
        stopWords: text.stopWords,
        termLengthMax: limits.termLengthMax
      })
    }
  })
  const byIndex: Array<Field | undefined> = [undefined, ...fields]
  const fingerprint = JSON.stringify({
    version: 1,
    termLengthMax: limits.termLengthMax,
    fields: fields.map((field) => [field.name, field.type, field.analyzer?.options ?? null])
  })
  return {
    fields,
    byName: new Map(fields.map((field) => [field.name, field])),
    byIndex,
    textFields: fields.filter((field) => field.type === "text"),
    k1,
    b,
    partitions,
    limits,
    fingerprint,
    input
  }
}

/**
 * Field definitions inferred from a JSON document, for the HTTP API: a string is a text field,
 * an array of strings a keyword field, a finite number a numeric field. Anything else is an
 * `InvalidDocument` naming the field.
 */
export const infer = (document: unknown): Effect.Effect<Record<string, FieldDefinition>, InvalidDocument> =>
  Effect.suspend(() => {
    if (typeof document !== "object" || document === null || Array.isArray(document)) {
      return Effect.fail(new InvalidDocument({ field: "document", message: "a document is a JSON object" }))
    }
    const out: Record<string, FieldDefinition> = {}
    for (const [name, value] of Object.entries(document)) {
      if (typeof value === "string") out[name] = { type: "text" }
      else if (typeof value === "number" && Number.isFinite(value)) out[name] = { type: "numeric" }
      else if (Array.isArray(value) && value.every((item) => typeof item === "string")) out[name] = { type: "keyword" }
      else return Effect.fail(new InvalidDocument({ field: name, message: "must be a string, a finite number or an array of strings" }))
    }
    return Effect.succeed(out)
  })
