/**
 * Expands prefix and fuzzy words over a partition's lexicon: the terms of one field, sorted by
 * UTF-8 bytes, which is code point order.
 *
 * Fuzzy search walks the sorted lexicon as an implicit trie, carrying the Levenshtein rows of
 * the current prefix (one row per code point, reused across terms sharing a prefix). When every
 * entry of a row exceeds the distance, no term with that prefix can match and the walk jumps
 * past them: by binary search in memory, or by a new scan starting at the prefix's successor
 * (a seek) in the store. The lexicon of a field is loaded into the cache, keyed by the lexicon
 * version, when it fits there; otherwise walks run against the store. Prefix search is a
 * binary search in a cached lexicon, else one bounded range scan.
 *
 * Bounds: matches by `expansionsMax`, terms examined by `dictionaryScanMax`; past either the
 * query fails with a typed error. Distances count Unicode code points.
 */
import { Effect } from "effect"
import type { ReadError } from "../../../persistence/StoreError.js"
import type { StoreView } from "../../../persistence/StoreView.js"
import { InvalidQuery } from "../SearchError.js"
import { latin1, prefixSuccessor, utf8 } from "./codec.js"
import * as Layout from "./layout.js"

/** Lexicon entries read per scan by store walks and by loading. */
export const LEXICON_PAGE = 1_000

/** What the walks count, for measurements. */
export interface ExpansionCounters {
  examined: number
  scans: number
}

/** A field's lexicon in memory: term `i` is `points[offsets[i] .. offsets[i + 1])`. */
export interface Lexicon {
  readonly _tag: "Lexicon"
  readonly count: number
  readonly points: Int32Array
  readonly offsets: Int32Array
}

/** Bounds of one expansion. */
export interface ExpansionLimits {
  readonly max: number
  readonly scanMax: number
}

/** The code points of a string. */
export const codePoints = (text: string): Array<number> => {
  const out: Array<number> = []
  for (let i = 0; i < text.length; i++) {
    const code = text.codePointAt(i)!
    out.push(code)
    if (code > 0xffff) i++
  }
  return out
}

const termOfKey = (key: Uint8Array): string => Buffer.from(key.buffer, key.byteOffset + 1, key.byteLength - 1).toString("utf8")

/** The approximate heap size of a lexicon of `count` terms and `points` code points. */
export const lexiconBytes = (count: number, points: number): number => 64 + points * 4 + (count + 1) * 4

/** Reads a field's lexicon into memory; undefined when it would exceed `bytesMax`. */
export const loadLexicon = (
  view: StoreView,
  namespaces: Layout.Namespaces,
  fieldIndex: number,
  bytesMax: number
): Effect.Effect<Lexicon | undefined, ReadError> => {
  const end = new Uint8Array([fieldIndex + 1])
  const points: Array<number> = []
  const offsets: Array<number> = [0]
  const loop = (from: { gte: Uint8Array } | { gt: Uint8Array }): Effect.Effect<Lexicon | undefined, ReadError> =>
    Effect.flatMap(view.scan(namespaces.lexicon, { ...from, lt: end, limit: LEXICON_PAGE }), (entries) => {
      for (const entry of entries) {
        for (const point of codePoints(termOfKey(entry.key))) points.push(point)
        offsets.push(points.length)
      }
      if (lexiconBytes(offsets.length - 1, points.length) > bytesMax) return Effect.succeed(undefined)
      const last = entries[entries.length - 1]
      if (entries.length === LEXICON_PAGE && last !== undefined) return loop({ gt: last.key })
      return Effect.succeed({ _tag: "Lexicon" as const, count: offsets.length - 1, points: Int32Array.from(points), offsets: Int32Array.from(offsets) })
    })
  return loop({ gte: new Uint8Array([fieldIndex]) })
}

const termAt = (lexicon: Lexicon, i: number): string =>
  String.fromCodePoint(...lexicon.points.subarray(lexicon.offsets[i]!, lexicon.offsets[i + 1]!))

/** Compares term `i`'s first code points with `prefix`: <0, 0 (starts with it) or >0. */
const comparePrefix = (lexicon: Lexicon, i: number, prefix: ReadonlyArray<number>): number => {
  const start = lexicon.offsets[i]!
  const length = lexicon.offsets[i + 1]! - start
  for (let j = 0; j < prefix.length; j++) {
    if (j >= length) return -1
    const difference = lexicon.points[start + j]! - prefix[j]!
    if (difference !== 0) return difference
  }
  return 0
}

/** The first index in [from, count) whose term compares ≥ (or > when `after`) with `prefix`. */
const search = (lexicon: Lexicon, from: number, prefix: ReadonlyArray<number>, after: boolean): number => {
  let low = from
  let high = lexicon.count
  while (low < high) {
    const middle = (low + high) >>> 1
    const order = comparePrefix(lexicon, middle, prefix)
    if (order < 0 || (after && order === 0)) low = middle + 1
    else high = middle
  }
  return low
}

const tooMany = (word: string, max: number) => new InvalidQuery({ field: "q", message: `'${word}' matches more than ${max} terms of the index` })

/** Every term of a cached lexicon starting with `prefix`. */
export const prefixInLexicon = (lexicon: Lexicon, prefix: string, max: number): ReadonlyArray<string> | InvalidQuery => {
  const points = codePoints(prefix)
  const start = search(lexicon, 0, points, false)
  const end = search(lexicon, start, points, true)
  if (end - start > max) return tooMany(`${prefix}*`, max)
  return Array.from({ length: end - start }, (_, i) => termAt(lexicon, start + i))
}

/** Every term of `field` starting with `prefix`, by one range scan of the store's lexicon. */
export const prefixInStore = (
  view: StoreView,
  namespaces: Layout.Namespaces,
  fieldIndex: number,
  prefix: string,
  max: number
): Effect.Effect<ReadonlyArray<string>, ReadError | InvalidQuery> =>
  Effect.flatMap(view.scan(namespaces.lexicon, { prefix: utf8(Layout.termId(fieldIndex, prefix)), limit: max + 1 }), (entries) =>
    entries.length > max ? Effect.fail(tooMany(`${prefix}*`, max)) : Effect.succeed(entries.map((entry) => termOfKey(entry.key))))

/**
 * The Levenshtein rows of the walk's current prefix, banded: only cells within `distance` of
 * the diagonal can hold a value ≤ `distance`, so only those 2·distance + 1 cells are computed;
 * the cell just outside the band on each side holds a sentinel above the distance.
 */
class Rows {
  /** rows[i] is the row after the prefix's first i code points. */
  private readonly rows: Array<Int32Array>
  /** The code points of the prefix the rows are valid for. */
  private readonly prefix: Array<number> = []
  private readonly beyond: number

  constructor(private readonly query: ReadonlyArray<number>, private readonly distanceMax: number) {
    const first = new Int32Array(query.length + 2)
    for (let j = 0; j <= query.length; j++) first[j] = j
    this.rows = [first]
    this.beyond = distanceMax + 1
  }

  /**
   * Extends the rows along the term `points[start .. end)`. Returns the depth (in code points)
   * at which every cell of the band exceeded the distance, or -1 if the walk reached the end of
   * the term; then `distance()` is the term's distance to the query (or more than the maximum).
   */
  walk(points: ArrayLike<number>, start: number, end: number): number {
    const length = end - start
    const common = Math.min(this.prefix.length, length)
    let depth = 0
    while (depth < common && this.prefix[depth] === points[start + depth]) depth++
    this.prefix.length = depth
    const n = this.query.length
    const d = this.distanceMax
    for (let i = depth; i < length; i++) {
      const previous = this.rows[i]!
      const row = (this.rows[i + 1] ??= new Int32Array(n + 2))
      const point = points[start + i]!
      const r = i + 1
      const low = Math.max(0, r - d)
      const high = Math.min(n, r + d)
      let minimum = this.beyond
      if (low === 0) minimum = row[0] = r
      else row[low - 1] = this.beyond
      for (let j = Math.max(1, low); j <= high; j++) {
        const substitution = previous[j - 1]! + (this.query[j - 1] === point ? 0 : 1)
        const value = Math.min(previous[j]! + 1, row[j - 1]! + 1, substitution)
        row[j] = value
        if (value < minimum) minimum = value
      }
      row[high + 1] = this.beyond
      this.prefix.push(point)
      if (minimum > d) return i + 1
    }
    return -1
  }

  distance(): number {
    const depth = this.prefix.length
    return Math.abs(depth - this.query.length) > this.distanceMax ? this.beyond : this.rows[depth]![this.query.length]!
  }

  /** The first `depth` code points of the prefix walked last. */
  prefixOf(depth: number): ReadonlyArray<number> {
    return this.prefix.slice(0, depth)
  }
}

/** Every term of a cached lexicon within Levenshtein `distance` of `term`. */
export const fuzzyInLexicon = (
  lexicon: Lexicon,
  term: string,
  distance: number,
  limits: ExpansionLimits,
  counters: ExpansionCounters = { examined: 0, scans: 0 }
): ReadonlyArray<string> | InvalidQuery => {
  const rows = new Rows(codePoints(term), distance)
  const out: Array<string> = []
  let i = 0
  // Bounded: `i` only grows, and examined terms are capped by `scanMax`.
  while (i < lexicon.count) {
    if (++counters.examined > limits.scanMax) return tooExpensive(term, limits.scanMax)
    const pruned = rows.walk(lexicon.points, lexicon.offsets[i]!, lexicon.offsets[i + 1]!)
    if (pruned >= 0) {
      i = search(lexicon, i + 1, rows.prefixOf(pruned), true)
      continue
    }
    if (rows.distance() <= distance) {
      if (out.length >= limits.max) return tooMany(`${term}~${distance}`, limits.max)
      out.push(termAt(lexicon, i))
    }
    i++
  }
  return out
}

const tooExpensive = (term: string, scanMax: number) =>
  new InvalidQuery({ field: "fuzzy", message: `fuzzy matching of '${term}' examines more than ${scanMax} terms of the index` })

/** A page of lexicon keys as latin-1 strings (byte order = string order). */
interface Page {
  readonly keys: ReadonlyArray<string>
  readonly entries: ReadonlyArray<{ readonly key: Uint8Array }>
  readonly full: boolean
}

const firstAtOrAfter = (keys: ReadonlyArray<string>, from: number, bound: string): number => {
  let low = from
  let high = keys.length
  while (low < high) {
    const middle = (low + high) >>> 1
    if (keys[middle]! < bound) low = middle + 1
    else high = middle
  }
  return low
}

/** The same walk as `fuzzyInLexicon`, reading the lexicon from the store page by page. */
export const fuzzyInStore = (
  view: StoreView,
  namespaces: Layout.Namespaces,
  fieldIndex: number,
  term: string,
  distance: number,
  limits: ExpansionLimits,
  counters: ExpansionCounters = { examined: 0, scans: 0 }
): Effect.Effect<ReadonlyArray<string>, ReadError | InvalidQuery> => {
  const fieldEnd = new Uint8Array([fieldIndex + 1])
  const rows = new Rows(codePoints(term), distance)
  const out: Array<string> = []
  const read = (from: Uint8Array): Effect.Effect<Page, ReadError> => {
    counters.scans++
    return Effect.map(view.scan(namespaces.lexicon, { gte: from, lt: fieldEnd, limit: LEXICON_PAGE }), (entries) => ({
      keys: entries.map((entry) => latin1(entry.key)),
      entries,
      full: entries.length === LEXICON_PAGE
    }))
  }
  /** Walks one page; returns the key to continue from (a seek), or undefined at the end. */
  const walkPage = (page: Page): Uint8Array | undefined | InvalidQuery => {
    let i = 0
    while (i < page.entries.length) {
      if (++counters.examined > limits.scanMax) return tooExpensive(term, limits.scanMax)
      const points = codePoints(termOfKey(page.entries[i]!.key))
      const pruned = rows.walk(points, 0, points.length)
      if (pruned < 0) {
        if (rows.distance() <= distance) {
          if (out.length >= limits.max) return tooMany(`${term}~${distance}`, limits.max)
          out.push(String.fromCodePoint(...points))
        }
        i++
        continue
      }
      const skip = prefixSuccessor(utf8(Layout.termId(fieldIndex, String.fromCodePoint(...points.slice(0, pruned)))))!
      i = firstAtOrAfter(page.keys, i + 1, latin1(skip))
      if (i >= page.entries.length) return page.full ? skip : undefined
    }
    const last = page.entries[page.entries.length - 1]
    return page.full && last !== undefined ? afterKey(last.key) : undefined
  }
  const loop = (from: Uint8Array): Effect.Effect<ReadonlyArray<string>, ReadError | InvalidQuery> =>
    Effect.flatMap(read(from), (page) => {
      const next = walkPage(page)
      if (next instanceof InvalidQuery) return Effect.fail(next)
      return next === undefined ? Effect.succeed(out) : loop(next)
    })
  return loop(new Uint8Array([fieldIndex]))
}

/** The smallest key after `key`: the key with a 0x00 byte appended. */
const afterKey = (key: Uint8Array): Uint8Array => {
  const out = new Uint8Array(key.length + 1)
  out.set(key, 0)
  return out
}
