/**
 * Goal: the in-memory sorted set (order tree, member table, member order) is exact: it orders
 * members as Redis does (score, then UTF-8 bytes), and ranks, intervals and walks agree with a
 * plain sorted array on every step, at sizes that give the tree several levels.
 *
 * Method: seeded random operations (the seed is logged; `ZSET_STATE_SEED` replays it) applied to
 * the state and to a sorted-array model whose order is `Buffer.compare` on UTF-8; every answer
 * is compared, and the tree's structural invariants are checked along the way. The member
 * order and the member table are checked the same way against `Buffer.compare` and `Map`.
 */
import { describe, expect, it } from "vitest"
import { compareMembers } from "../../src/sortedset/internal/memberOrder.js"
import { MemberTable } from "../../src/sortedset/internal/memberTable.js"
import { type LexBound, type ScoreBound, SortedSetState } from "../../src/sortedset/SortedSetState.js"
import { random, type Random } from "./ZsetOperations.js"

const SEED = Number(process.env.ZSET_STATE_SEED ?? Math.floor(Math.random() * 2 ** 31))
console.log(`sorted set state tests: seed ${SEED} (replay with ZSET_STATE_SEED=${SEED})`)

const encoded = new Map<string, Buffer>()
const utf8 = (text: string): Buffer => {
  let bytes = encoded.get(text)
  if (bytes === undefined) {
    bytes = Buffer.from(text, "utf8")
    if (encoded.size < 100_000) encoded.set(text, bytes)
  }
  return bytes
}

/** The order Redis uses: `memcmp` of the UTF-8 bytes (an independent oracle for `compareMembers`). */
const utf8Order = (left: string, right: string) => Math.sign(Buffer.compare(utf8(left), utf8(right)))

/** A random well-formed string whose code points straddle the places where UTF-16 and UTF-8 disagree. */
const text = (r: Random): string => {
  const ranges: ReadonlyArray<readonly [number, number]> = [[0x00, 0x7f], [0x80, 0x7ff], [0x800, 0xd7ff], [0xe000, 0xffff], [0x10000, 0x10ffff]]
  let out = ""
  const length = r.int(5)
  for (let i = 0; i < length; i++) {
    const [low, high] = r.pick(ranges)
    out += String.fromCodePoint(low + r.int(Math.min(high - low + 1, r.chance(0.5) ? 4 : 1 << 20)))
  }
  return out
}

describe("member order", () => {
  it("compares as Redis compares UTF-8 bytes, for astral, private-use and plain characters", () => {
    const r = random(SEED)
    for (let i = 0; i < 100_000; i++) {
      const left = text(r)
      const right = r.chance(0.2) ? left + text(r) : text(r)
      expect(Math.sign(compareMembers(left, right)), `${JSON.stringify(left)} vs ${JSON.stringify(right)}`).toBe(utf8Order(left, right))
    }
  })

  it("puts U+E000..U+FFFF before astral characters, unlike JavaScript's <", () => {
    expect("\uE000" < "\u{1F600}").toBe(false)
    expect(compareMembers("\uE000", "\u{1F600}")).toBeLessThan(0)
    expect(compareMembers("\uFFFF", "\u{10000}")).toBeLessThan(0)
    expect(compareMembers("a", "a\u0000")).toBeLessThan(0)
  })
})

describe("member table", () => {
  it("agrees with a Map through growth, deletions (backward shift) and shrinking", () => {
    const r = random(SEED + 1)
    const table = new MemberTable()
    const model = new Map<string, number>()
    for (let step = 0; step < 200_000; step++) {
      // Phases of growth and decay make the table resize both ways.
      const phase = Math.floor(step / 25_000) % 2 === 0
      const member = `k${r.int(phase ? 40_000 : 4_000)}`
      if (r.chance(phase ? 0.7 : 0.2)) {
        const score = r.next()
        expect(table.set(member, score)).toBe(model.get(member))
        model.set(member, score)
      } else {
        const previous = model.get(member)
        model.delete(member)
        expect(table.delete(member)).toBe(previous)
      }
      if (step % 97 === 0) {
        const probe = `k${r.int(40_000)}`
        expect(table.get(probe)).toBe(model.get(probe))
      }
      if (table.size !== model.size) expect.fail(`size ${table.size} instead of ${model.size} at step ${step}`)
    }
    for (const [member, score] of model) expect(table.get(member)).toBe(score)
  })
})

/** A sorted array of (member, score) in Redis order: the obviously correct model. */
class Model {
  readonly entries: Array<{ member: string; score: number }> = []
  private readonly scores = new Map<string, number>()

  private position(member: string, score: number): number {
    let low = 0
    let high = this.entries.length
    while (low < high) {
      const middle = (low + high) >>> 1
      const probe = this.entries[middle]!
      const order = probe.score < score ? -1 : probe.score > score ? 1 : utf8Order(probe.member, member)
      if (order < 0) low = middle + 1
      else high = middle
    }
    return low
  }

  set(member: string, score: number) {
    this.delete(member)
    this.entries.splice(this.position(member, score), 0, { member, score })
    this.scores.set(member, score)
  }

  delete(member: string) {
    const score = this.scores.get(member)
    if (score === undefined) return false
    this.entries.splice(this.position(member, score), 1)
    this.scores.delete(member)
    return true
  }

  score(member: string) {
    return this.scores.get(member)
  }

  rank(member: string) {
    const score = this.scores.get(member)
    return score === undefined ? undefined : this.position(member, score)
  }

  scoreInterval(min: ScoreBound, max: ScoreBound) {
    const inside = (score: number) =>
      (min.exclusive ? score > min.value : score >= min.value) && (max.exclusive ? score < max.value : score <= max.value)
    return this.entries.filter((entry) => inside(entry.score))
  }

  lexInterval(min: LexBound, max: LexBound) {
    const above = (member: string) =>
      min._tag === "Minimum" || (min._tag === "Member" && (min.exclusive ? utf8Order(member, min.member) > 0 : utf8Order(member, min.member) >= 0))
    const below = (member: string) =>
      max._tag === "Maximum" || (max._tag === "Member" && (max.exclusive ? utf8Order(member, max.member) < 0 : utf8Order(member, max.member) <= 0))
    return this.entries.filter((entry) => above(entry.member) && below(entry.member))
  }
}

const randomBound = (r: Random, scores: ReadonlyArray<number>): ScoreBound => ({
  value: r.chance(0.1) ? r.pick([-Infinity, Infinity]) : r.pick(scores),
  exclusive: r.chance(0.5)
})

const randomLex = (r: Random, members: ReadonlyArray<string>): LexBound =>
  r.chance(0.1) ? { _tag: "Minimum" } : r.chance(0.1) ? { _tag: "Maximum" } : { _tag: "Member", member: r.pick(members), exclusive: r.chance(0.5) }

describe("sorted set state", () => {
  it("agrees with a sorted array on 60,000 random updates, ranks, intervals and walks (up to ~20,000 members)", () => {
    const r = random(SEED + 2)
    const members = Array.from({ length: 24_000 }, (_, i) => (i % 7 === 0 ? `${text(r)}${i}` : `m${i}`))
    const scores = [-Infinity, -1e300, -2, -1, 0, 0.5, 1, 2, 3, 1e300, Infinity, ...Array.from({ length: 40 }, () => r.int(100))]
    const state = SortedSetState.empty()
    const model = new Model()
    for (let step = 0; step < 60_000; step++) {
      const member = r.pick(members)
      const roll = r.int(100)
      if (roll < 55) {
        const score = r.pick(scores)
        expect(state.set(member, score)).toBe(model.score(member))
        model.set(member, score)
      } else if (roll < 70) {
        expect(state.delete(member)).toBe(model.score(member))
        model.delete(member)
      } else if (roll < 94) {
        const rev = r.chance(0.5)
        const rank = model.rank(member)
        expect(state.rank(member, rev)).toBe(rank === undefined ? undefined : rev ? model.entries.length - 1 - rank : rank)
      } else {
        const min = randomBound(r, scores)
        const max = randomBound(r, scores)
        const interval = state.scoreInterval(min, max)
        const expected = model.scoreInterval(min, max)
        expect(interval.end - interval.start).toBe(expected.length)
        const offset = r.int(5)
        const limit = r.chance(0.3) ? undefined : r.int(30)
        const rev = r.chance(0.5)
        const ordered = rev ? [...expected].reverse() : expected
        expect(state.slice(interval, rev, offset, limit)).toEqual(ordered.slice(offset, limit === undefined ? undefined : offset + limit))
      }
      if (state.card !== model.entries.length) expect.fail(`card ${state.card} instead of ${model.entries.length} at step ${step}`)
      if (step % 10_000 === 0) state.check()
    }
    state.check()
    expect(Array.from(state.entries())).toEqual(model.entries)
  })

  it("answers lex intervals like Redis when every score is equal", () => {
    const r = random(SEED + 3)
    const members = Array.from({ length: 3_000 }, () => text(r) || "x")
    const state = SortedSetState.empty()
    const model = new Model()
    for (const member of members) {
      state.set(member, 0)
      model.set(member, 0)
    }
    for (let i = 0; i < 1_000; i++) {
      const min = randomLex(r, members)
      const max = randomLex(r, members)
      const interval = state.lexInterval(min, max)
      const expected = model.lexInterval(min, max)
      expect(state.slice(interval, false), JSON.stringify({ min, max })).toEqual(expected)
    }
  })

  it("bulk-builds from sorted columns, and refuses columns out of order or with a repeated member", () => {
    const r = random(SEED + 4)
    const model = new Model()
    for (let i = 0; i < 50_000; i++) model.set(`m${r.int(1_000_000)}`, r.int(1000))
    const built = SortedSetState.fromSorted(model.entries.map((entry) => entry.member), model.entries.map((entry) => entry.score))
    if (typeof built === "string") throw new Error(built)
    built.check()
    expect(Array.from(built.entries())).toEqual(model.entries)
    // The bulk-built tree keeps working under updates and deletions.
    for (let i = 0; i < 20_000; i++) {
      const member = `m${r.int(1_000_000)}`
      if (r.chance(0.5)) built.delete(member)
      else built.set(member, r.int(1000))
    }
    built.check()
    expect(SortedSetState.fromSorted(["b", "a"], [1, 1])).toMatch(/out of order/)
    expect(SortedSetState.fromSorted(["a", "a"], [1, 2])).toMatch(/twice/)
    expect(SortedSetState.fromSorted(["a"], [Number.NaN])).toMatch(/NaN/)
  })

  it("shrinks back to a single leaf when emptied", () => {
    const state = SortedSetState.empty()
    for (let i = 0; i < 10_000; i++) state.set(`m${i}`, i % 17)
    state.check()
    for (let i = 0; i < 10_000; i++) expect(state.delete(`m${i}`)).toBe(i % 17)
    state.check()
    expect(state.card).toBe(0)
    expect(state.slice({ start: 0, end: 0 }, false)).toEqual([])
  })
})
