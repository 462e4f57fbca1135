/**
 * Goal: the query language parses into the documented tree, and numeric filters into ranges.
 * Method: fixed queries and their expected trees (precedence, grouping, modifiers, fields);
 * malformed queries are covered with their error fields in `Errors.test.ts`.
 */
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import * as QueryParser from "../../src/search/QueryParser.js"

const parse = (q: string) => Effect.runSync(QueryParser.parse(q))
const term = (text: string, extra: Partial<QueryParser.TermNode> = {}) => expect.objectContaining({ _tag: "Term", text, field: undefined, prefix: false, fuzzy: undefined, ...extra })

describe("QueryParser", () => {
  it("juxtaposition is AND, OR binds tighter", () => {
    expect(parse("a b OR c d")).toEqual({
      _tag: "And",
      clauses: [term("a"), { _tag: "Or", clauses: [term("b"), term("c")] }, term("d")]
    })
  })

  it("phrases, exclusions, fields, prefix and fuzzy", () => {
    expect(parse("\"black cat\" -dog title:x y* z~ w~1 tags:\"a b\" -(p OR q)")).toEqual({
      _tag: "And",
      clauses: [
        expect.objectContaining({ _tag: "Phrase", text: "black cat", field: undefined }),
        expect.objectContaining({ _tag: "Not", clause: term("dog") }),
        term("x", { field: "title" }),
        term("y", { prefix: true }),
        term("z", { fuzzy: 2 }),
        term("w", { fuzzy: 1 }),
        expect.objectContaining({ _tag: "Phrase", text: "a b", field: "tags" }),
        expect.objectContaining({ _tag: "Not", clause: { _tag: "Or", clauses: [term("p"), term("q")] } })
      ]
    })
  })

  it("groups nest, a word with inner punctuation stays one word, lowercase or is a term", () => {
    expect(parse("(a OR (b c)) e-mail or")).toEqual({
      _tag: "And",
      clauses: [{ _tag: "Or", clauses: [term("a"), { _tag: "And", clauses: [term("b"), term("c")] }] }, term("e-mail"), term("or")]
    })
  })

  it("a colon after something that is not a field name is part of the word", () => {
    expect(parse("12:30")).toEqual(term("12:30"))
  })

  it("numeric filter values", () => {
    expect(QueryParser.parseRange("5")).toEqual({ min: 5, minInclusive: true, max: 5, maxInclusive: true })
    expect(QueryParser.parseRange("1..5.5")).toEqual({ min: 1, minInclusive: true, max: 5.5, maxInclusive: true })
    expect(QueryParser.parseRange("..5")).toEqual({ min: undefined, minInclusive: true, max: 5, maxInclusive: true })
    expect(QueryParser.parseRange(">=-2")).toEqual({ min: -2, minInclusive: true, max: undefined, maxInclusive: false })
    expect(QueryParser.parseRange("<1e3")).toEqual({ min: undefined, minInclusive: false, max: 1000, maxInclusive: false })
    for (const bad of ["", "..", "abc", "1..x", ">", "1,5"]) expect(QueryParser.parseRange(bad), bad).toBeUndefined()
  })
})
