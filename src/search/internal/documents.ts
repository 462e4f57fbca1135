/**
 * Document checks and analysis, pure: a document is validated against the index definition
 * (every problem an `InvalidDocument` or `DocumentTooLarge` naming the field), then turned into
 * what the write path stores: field lengths, numeric values and a term map with frequencies and
 * positions. Nothing here touches the store.
 */
import type { IndexSchema } from "../IndexSchema.js"
import { DocumentTooLarge, InvalidDocument } from "../SearchError.js"
import type { Document } from "../SearchMessages.js"
import { termId } from "./layout.js"

/** One term of one document. `positions` is absent for keyword fields. */
export interface DocumentTerm {
  tf: number
  readonly length: number
  readonly positions: Array<number> | undefined
  /** Set by the write path: the key (first doc number) of the chunk that holds the posting. */
  chunk: number
  /** Set by the write path: the term's dictionary key. */
  key: Uint8Array | undefined
}

/** A document ready to be written. */
export interface AnalyzedDocument {
  readonly id: string
  readonly json: string
  /** Text field index → number of indexed terms (only fields with at least one). */
  readonly lengths: ReadonlyArray<readonly [number, number]>
  readonly numbers: ReadonlyArray<readonly [number, number]>
  readonly terms: ReadonlyMap<string, DocumentTerm>
}

const utf8Length = (text: string) => Buffer.byteLength(text, "utf8")

/** Checks an id: a string of 1 to `idBytesMax` UTF-8 bytes. */
export const checkId = (schema: IndexSchema, id: unknown): InvalidDocument | undefined =>
  typeof id === "string" && id.length > 0 && utf8Length(id) <= schema.limits.idBytesMax
    ? undefined
    : new InvalidDocument({ field: "id", message: `must be a string of 1 to ${schema.limits.idBytesMax} UTF-8 bytes` })

const checkKeywords = (schema: IndexSchema, name: string, value: unknown): InvalidDocument | undefined => {
  const values = typeof value === "string" ? [value] : value
  if (!Array.isArray(values)) return new InvalidDocument({ field: name, message: "a keyword field holds a string or an array of strings" })
  if (values.length > schema.limits.keywordValuesMax) {
    return new InvalidDocument({ field: name, message: `holds at most ${schema.limits.keywordValuesMax} values` })
  }
  for (const item of values) {
    if (typeof item !== "string" || item.length === 0 || utf8Length(item) > schema.limits.keywordBytesMax || item.includes("\u0000")) {
      return new InvalidDocument({
        field: name,
        message: `each keyword is a string of 1 to ${schema.limits.keywordBytesMax} UTF-8 bytes without U+0000`
      })
    }
  }
  return undefined
}

/** Checks one field value against its definition. */
const checkField = (schema: IndexSchema, name: string, value: unknown): InvalidDocument | undefined => {
  const field = schema.byName.get(name)
  if (field === undefined) return new InvalidDocument({ field: name, message: "is not a field of this index (fields are fixed when an index is created; declare them with PUT /v1/indexes/:index)" })
  switch (field.type) {
    case "text":
      return typeof value === "string" ? undefined : new InvalidDocument({ field: name, message: "a text field holds a string" })
    case "numeric":
      return typeof value === "number" && Number.isFinite(value)
        ? undefined
        : new InvalidDocument({ field: name, message: "a numeric field holds a finite number" })
    case "keyword":
      return checkKeywords(schema, name, value)
  }
}

/** Validates a document and returns its stored JSON. */
export const validate = (schema: IndexSchema, id: unknown, document: unknown): InvalidDocument | DocumentTooLarge | string => {
  const badId = checkId(schema, id)
  if (badId !== undefined) return badId
  if (typeof document !== "object" || document === null || Array.isArray(document)) {
    return new InvalidDocument({ field: "document", message: "a document is a JSON object" })
  }
  const json = JSON.stringify(document)
  const bytes = utf8Length(json)
  if (bytes > schema.limits.documentBytesMax) {
    return new DocumentTooLarge({ field: "document", id: id as string, bytes, bytesMax: schema.limits.documentBytesMax })
  }
  for (const [name, value] of Object.entries(document)) {
    const bad = checkField(schema, name, value)
    if (bad !== undefined) return bad
  }
  return json
}

/** Analyzes a validated document. */
export const analyze = (schema: IndexSchema, id: string, document: Document, json: string): AnalyzedDocument => {
  const lengths: Array<readonly [number, number]> = []
  const numbers: Array<readonly [number, number]> = []
  const terms = new Map<string, DocumentTerm>()
  for (const [name, value] of Object.entries(document)) {
    const field = schema.byName.get(name)!
    if (field.type === "numeric") numbers.push([field.index, value as number])
    else if (field.type === "keyword") {
      for (const keyword of typeof value === "string" ? [value] : (value as ReadonlyArray<string>)) {
        terms.set(termId(field.index, keyword), { tf: 1, length: 0, positions: undefined, chunk: 0, key: undefined })
      }
    } else {
      const analysis = field.analyzer!.analyze(value as string)
      const length = analysis.terms.length
      if (length === 0) continue
      lengths.push([field.index, length])
      for (let i = 0; i < length; i++) {
        const key = termId(field.index, analysis.terms[i]!)
        const entry = terms.get(key)
        if (entry === undefined) terms.set(key, { tf: 1, length, positions: [analysis.positions[i]!], chunk: 0, key: undefined })
        else {
          entry.tf++
          entry.positions!.push(analysis.positions[i]!)
        }
      }
    }
  }
  return { id, json, lengths, numbers, terms }
}
