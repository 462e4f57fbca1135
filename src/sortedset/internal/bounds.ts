/**
 * Parses Redis's range syntax: score bounds (`1.5`, `(1.5`, `-inf`, `+inf`), lex bounds (`[a`,
 * `(a`, `-`, `+`) and rank indexes (`0`, `-1`). Each parser returns the bound or the
 * `InvalidArgument` naming the field, so callers validate without throwing.
 *
 * Deliberately stricter than Redis's `strtod`: no empty bound, no bare `(`, no hexadecimal, no
 * surrounding spaces; those are typos far more often than intent.
 */
import { InvalidArgument } from "../../../persistence/StoreError.js"
import type { LexBound, ScoreBound } from "../SortedSetState.js"

const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/
const INFINITE = /^([+-]?)inf(?:inity)?$/i
const INDEX = /^(?:0|-?[1-9]\d*)$/

/** A score bound from a number (inclusive) or Redis syntax; −0 becomes 0. */
export const parseScoreBound = (input: string | number, field: string): ScoreBound | InvalidArgument => {
  if (typeof input === "number") {
    return Number.isNaN(input)
      ? new InvalidArgument({ field, message: "must be a number, not NaN" })
      : { value: input === 0 ? 0 : input, exclusive: false }
  }
  if (typeof input !== "string") return new InvalidArgument({ field, message: "must be a number or a string" })
  const exclusive = input.startsWith("(")
  const text = exclusive ? input.slice(1) : input
  const infinite = INFINITE.exec(text)
  if (infinite !== null) return { value: infinite[1] === "-" ? -Infinity : Infinity, exclusive }
  if (!DECIMAL.test(text)) {
    return new InvalidArgument({ field, message: `"${abbreviate(input)}" is not a score bound: use 1.5, (1.5, -inf or +inf` })
  }
  const value = Number(text)
  return { value: value === 0 ? 0 : value, exclusive }
}

/** A lex bound in Redis syntax. */
export const parseLexBound = (input: string, field: string): LexBound | InvalidArgument => {
  if (input === "-") return { _tag: "Minimum" }
  if (input === "+") return { _tag: "Maximum" }
  if (typeof input === "string" && (input.startsWith("[") || input.startsWith("("))) {
    return { _tag: "Member", member: input.slice(1), exclusive: input.startsWith("(") }
  }
  return new InvalidArgument({ field, message: `"${abbreviate(String(input))}" is not a lex bound: use [a, (a, - or +` })
}

/** A rank index: an integer, negative counting from the end (−1 is the last). */
export const parseIndex = (input: string | number, field: string): number | InvalidArgument => {
  const value = typeof input === "string" && INDEX.test(input) ? Number(input) : input
  return typeof value === "number" && Number.isSafeInteger(value)
    ? value === 0 ? 0 : value
    : new InvalidArgument({ field, message: `"${abbreviate(String(input))}" is not an integer index` })
}

/** The ranks [start, end) of Redis indexes `start`..`stop` (both inclusive) in a set of `size`. */
export const indexInterval = (start: number, stop: number, size: number): { readonly start: number; readonly end: number } => {
  const from = Math.max(0, start < 0 ? start + size : start)
  const to = Math.min(size - 1, stop < 0 ? stop + size : stop)
  return from > to ? { start: 0, end: 0 } : { start: from, end: to + 1 }
}

/** Keeps error messages short when a caller sends a huge bound. */
const abbreviate = (text: string): string => (text.length > 40 ? `${text.slice(0, 40)}…` : text)
