/**
 * Text analysis: turns a field's text into the terms that are indexed and searched, each with
 * its position. The pipeline: lowercase → NFKD → strip combining diacritics (U+0300 block and
 * its supplements) → fold the Latin letters that do not decompose (ß, æ, ø, ł, ...) → NFC →
 * split into runs of letters, digits and marks, with every Han or Hiragana character a term of
 * its own → drop stop words and over-long tokens, which still take up a position (so a phrase
 * never matches across a removed word).
 *
 * It does not stem and does not segment CJK text into words (one term per ideograph instead,
 * as Lucene's StandardTokenizer does).
 */

import { type Language, stopWordLists } from "./internal/stopWords.js"

export { isLanguage, type Language, languages } from "./internal/stopWords.js"

/**
 * Stop words: none, the built-in list of a language (`english`, `french`, `german`, `spanish`,
 * `italian`, `portuguese`, `dutch`, `swedish`, `danish`, `norwegian`, `finnish`, `russian`), or an
 * explicit list (normalized like the text).
 */
export type StopWords = "none" | Language | ReadonlyArray<string>

/** How one text field is analyzed. */
export interface AnalyzerOptions {
  /** Lowercase the text (default true). */
  readonly lowercase?: boolean | undefined
  /** Fold diacritics and special Latin letters (default true). */
  readonly foldDiacritics?: boolean | undefined
  /** Stop words removed from the text and from queries (default `"none"`). */
  readonly stopWords?: StopWords | undefined
  /** Tokens longer than this many characters are dropped (default 64); they keep their position. */
  readonly termLengthMax?: number | undefined
}

/** The analysis of one text: terms in order, the position of each, and the field length. */
export interface Analysis {
  readonly terms: ReadonlyArray<string>
  readonly positions: ReadonlyArray<number>
}

/** An analyzer for one configuration. */
export interface Analyzer {
  readonly options: Required<AnalyzerOptions>
  /** Terms and positions of `text`, stop words and over-long tokens removed. */
  readonly analyze: (text: string) => Analysis
  /** Every token of `text`, normalized, nothing removed (for prefix and fuzzy query words). */
  readonly tokens: (text: string) => ReadonlyArray<string>
  /** Whether `term` (already normalized) is a stop word here. */
  readonly isStopWord: (term: string) => boolean
}

/** The English stop words (Lucene's default English set). */
export const englishStopWords: ReadonlyArray<string> = stopWordLists.english

/** The default term length bound, in characters (UTF-16 code units). */
export const TERM_LENGTH_MAX = 64

// Combining diacritical marks: the main block and its extensions. Marks of other scripts
// (Devanagari vowel signs, Arabic harakat, ...) are part of their words and are kept.
const DIACRITICS = /[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]/g

// Letters NFKD leaves alone, folded the way ICU's and Lucene's ASCII folding do.
const SPECIAL_LETTERS: Readonly<Record<string, string>> = {
  "ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "ı": "i", "ŧ": "t", "ħ": "h",
  "Æ": "AE", "Œ": "OE", "Ø": "O", "Ł": "L", "Đ": "D", "Ð": "D", "Þ": "TH", "Ŧ": "T", "Ħ": "H"
}
const SPECIAL = new RegExp(`[${Object.keys(SPECIAL_LETTERS).join("")}]`, "g")

// A token: one Han or Hiragana character, or a run of other letters, digits and marks. Built
// with `new RegExp` because the `v` flag's set difference is newer than the compile target.
const TOKEN = new RegExp("[\\p{Script=Han}\\p{Script=Hiragana}]|[[\\p{L}\\p{N}\\p{M}]--[\\p{Script=Han}\\p{Script=Hiragana}]]+", "gv")
const ASCII_TOKEN = /[a-zA-Z0-9]+/g
const NON_ASCII = /[^\x00-\x7f]/

/** Normalizes text as the analyzer does before splitting it. */
const normalizer = (lowercase: boolean, fold: boolean) => (text: string): string => {
  const cased = lowercase ? text.toLowerCase() : text
  if (!NON_ASCII.test(cased)) return cased
  if (!fold) return cased.normalize("NFC")
  return cased.normalize("NFKD").replace(DIACRITICS, "").replace(SPECIAL, (letter) => SPECIAL_LETTERS[letter]!).normalize("NFC")
}

/** Splits normalized text into tokens, calling `f` with each. */
const eachToken = (text: string, f: (token: string) => void): void => {
  // ASCII text (the common case) takes a cheaper expression with the same tokens.
  const pattern = NON_ASCII.test(text) ? TOKEN : ASCII_TOKEN
  pattern.lastIndex = 0
  // Bounded: every match consumes at least one character of `text`.
  for (let match = pattern.exec(text); match !== null; match = pattern.exec(text)) f(match[0])
}

/** Builds an analyzer. */
export const make = (options: AnalyzerOptions = {}): Analyzer => {
  const resolved: Required<AnalyzerOptions> = {
    lowercase: options.lowercase ?? true,
    foldDiacritics: options.foldDiacritics ?? true,
    stopWords: options.stopWords ?? "none",
    termLengthMax: options.termLengthMax ?? TERM_LENGTH_MAX
  }
  const normalize = normalizer(resolved.lowercase, resolved.foldDiacritics)
  const stopWords = resolved.stopWords
  const list = stopWords === "none" ? [] : typeof stopWords === "string" ? stopWordLists[stopWords] : stopWords
  const stop = new Set<string>()
  for (const word of list) eachToken(normalize(word), (token) => stop.add(token))
  const lengthMax = resolved.termLengthMax

  const analyze = (text: string): Analysis => {
    const terms: Array<string> = []
    const positions: Array<number> = []
    let position = 0
    eachToken(normalize(text), (token) => {
      if (token.length <= lengthMax && !stop.has(token)) {
        terms.push(token)
        positions.push(position)
      }
      position++
    })
    return { terms, positions }
  }
  const tokens = (text: string): ReadonlyArray<string> => {
    const out: Array<string> = []
    eachToken(normalize(text), (token) => {
      if (token.length <= lengthMax) out.push(token)
    })
    return out
  }
  return { options: resolved, analyze, tokens, isStopWord: (term) => stop.has(term) }
}
