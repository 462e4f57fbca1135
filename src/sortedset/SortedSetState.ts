/**
 * The in-memory state of one sorted set: an order-statistics tree over (score, member) and a
 * member → score map. It answers in Redis's order (score, then member bytes) in O(log n) per
 * update and rank, O(log n + m) per range of m members; its memory is proportional to the set.
 *
 * It is pure data: no validation beyond assertions (the engine in `SortedSet` validates input,
 * speaks Redis's bound syntax and persists), no Effects, no store.
 */
import { compareMembers } from "./internal/memberOrder.js"
import { MemberTable } from "./internal/memberTable.js"
import { OrderTree } from "./internal/orderTree.js"

/** A member with its score. */
export interface ScoredMember {
  readonly member: string
  readonly score: number
}

/** A score bound: a number (±Infinity allowed), inclusive unless `exclusive`. */
export interface ScoreBound {
  readonly value: number
  readonly exclusive: boolean
}

/** A lex bound: Redis's `-` (below every member), `+` (above every member), `[m` or `(m`. */
export type LexBound =
  | { readonly _tag: "Minimum" }
  | { readonly _tag: "Maximum" }
  | { readonly _tag: "Member"; readonly member: string; readonly exclusive: boolean }

/** Ranks from `start` (inclusive) to `end` (exclusive) in ascending order; empty when start ≥ end. */
export interface RankInterval {
  readonly start: number
  readonly end: number
}

/** The state. Scores are never NaN and never −0 (the engine stores 0 for it, as Redis ties them). */
export class SortedSetState {
  private constructor(private readonly tree: OrderTree, private readonly scores: MemberTable) {}

  /** An empty set. */
  static empty(): SortedSetState {
    return new SortedSetState(new OrderTree(), new MemberTable())
  }

  /**
   * A set built from members already in (score, member) order, each once; linear time. Returns
   * why not when the order is broken or a member repeats (a stored set can be corrupt).
   */
  static fromSorted(members: Array<string>, scores: Array<number>): SortedSetState | string {
    if (members.length !== scores.length) return "members and scores differ in number"
    for (let i = 0; i < members.length; i++) {
      const score = scores[i]!
      if (Number.isNaN(score)) return `the score of member ${i} is NaN`
      if (i > 0) {
        const previous = scores[i - 1]!
        if (previous > score || (previous === score && compareMembers(members[i - 1]!, members[i]!) >= 0)) {
          return `members ${i - 1} and ${i} are out of order`
        }
      }
    }
    const table = MemberTable.fromColumns(members, scores)
    if (typeof table === "number") return `member ${table} appears twice`
    return new SortedSetState(OrderTree.fromSorted(members, scores), table)
  }

  /** How many members. */
  get card(): number {
    return this.scores.size
  }

  /** The score of `member`, or undefined when absent. */
  score(member: string): number | undefined {
    return this.scores.get(member)
  }

  /** Sets the score of `member`, adding it when absent; returns the previous score (undefined: added). */
  set(member: string, score: number): number | undefined {
    const previous = this.scores.set(member, score)
    if (previous === score) return previous
    if (previous !== undefined) this.tree.remove(previous, member)
    this.tree.insert(score, member)
    return previous
  }

  /** Removes `member`; returns its score, or undefined when it was absent. */
  delete(member: string): number | undefined {
    const previous = this.scores.delete(member)
    if (previous !== undefined) this.tree.remove(previous, member)
    return previous
  }

  /** The 0-based rank of `member` (from the highest score when `reverse`), or undefined. */
  rank(member: string, reverse: boolean): number | undefined {
    const score = this.scores.get(member)
    if (score === undefined) return undefined
    const rank = this.tree.rankOf(score, member)
    return reverse ? this.scores.size - 1 - rank : rank
  }

  /** The ranks of the members whose score lies within the bounds. */
  scoreInterval(min: ScoreBound, max: ScoreBound): RankInterval {
    const start = min.exclusive
      ? this.tree.firstRank((score) => score > min.value)
      : this.tree.firstRank((score) => score >= min.value)
    const end = max.exclusive
      ? this.tree.firstRank((score) => score >= max.value)
      : this.tree.firstRank((score) => score > max.value)
    return { start, end: Math.max(start, end) }
  }

  /**
   * The ranks of the members within lex bounds. As in Redis, this is meaningful only when every
   * member has the same score; otherwise the answer is some interval, but not a specified one.
   */
  lexInterval(min: LexBound, max: LexBound): RankInterval {
    const start = this.lexRank(min, true)
    const end = this.lexRank(max, false)
    return { start, end: Math.max(start, end) }
  }

  /**
   * The members of the ranks `interval`, ascending, or descending when `reverse`, after skipping
   * `offset` of them and keeping at most `limit` (all when undefined).
   */
  slice(interval: RankInterval, reverse: boolean, offset = 0, limit?: number): Array<ScoredMember> {
    const available = Math.max(0, interval.end - interval.start - offset)
    const count = limit === undefined ? available : Math.min(limit, available)
    const out: Array<ScoredMember> = []
    if (count <= 0) return out
    const from = reverse ? interval.end - 1 - offset : interval.start + offset
    this.tree.walk(from, count, reverse, (member, score) => {
      out.push({ member, score })
    })
    return out
  }

  /** Calls `visit` with every member in order; O(n). */
  forEach(visit: (member: string, score: number) => void): void {
    this.tree.walk(0, this.tree.size, false, visit)
  }

  /** Every member in order (for tests and exports; O(n)). */
  *entries(): Generator<ScoredMember> {
    for (const [member, score] of this.tree.entries()) yield { member, score }
  }

  /** Checks the tree's invariants and that the map agrees with it; throws on a break. For tests. */
  check(): void {
    this.tree.check()
    if (this.tree.size !== this.scores.size) throw new Error("SortedSetState: tree and map sizes differ")
    for (const [member, score] of this.tree.entries()) {
      if (this.scores.get(member) !== score) throw new Error("SortedSetState: tree and map disagree")
    }
  }

  /** The first rank past a lower (`lower`) or upper lex bound. */
  private lexRank(bound: LexBound, lower: boolean): number {
    switch (bound._tag) {
      case "Minimum":
        return 0
      case "Maximum":
        return this.scores.size
      case "Member": {
        const { member, exclusive } = bound
        // A lower bound starts at the first member past it; an upper bound ends at the first member past it.
        const strictlyAfter = lower === exclusive
        return this.tree.firstRank((_, candidate) =>
          strictlyAfter ? compareMembers(candidate, member) > 0 : compareMembers(candidate, member) >= 0
        )
      }
    }
  }
}
