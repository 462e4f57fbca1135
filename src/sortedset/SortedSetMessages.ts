/**
 * The sorted set's messages as Schemas, for an entity that exposes the engine across process
 * boundaries: one tagged request per operation, its reply (shaped as the HTTP API answers), the
 * errors a request can fail with, and `handle`, which runs a request on an engine.
 *
 * Scores cross the wire as JSON numbers, or the strings "+inf" and "-inf" (JSON has no
 * infinities). Bounds cross as Redis syntax strings. Validation of members and bounds stays in
 * the engine, which names the field; these Schemas check only the shape.
 */
import { Effect, Schema, SchemaGetter } from "effect"
import { Fenced, InvalidArgument, StoreClosed, StoreUnavailable, type WriteError } from "../../persistence/StoreError.js"
import type { StoreView } from "../../persistence/StoreView.js"
import type { ScoredMember, SortedSet } from "./SortedSet.js"
import { SortedSetCorrupt } from "./SortedSetError.js"

/** A score: a number on the inside, a JSON number or "+inf"/"-inf" on the wire ("inf" is read as "+inf"). */
export const Score = Schema.Union([Schema.Finite, Schema.Literals(["+inf", "-inf", "inf"])]).pipe(
  Schema.decodeTo(Schema.Number, {
    decode: SchemaGetter.transform((wire: number | "+inf" | "-inf" | "inf") =>
      wire === "-inf" ? -Infinity : wire === "+inf" || wire === "inf" ? Infinity : wire
    ),
    // NaN stays a number and fails `Finite` on the wire side: it is not a score.
    encode: SchemaGetter.transform((score: number) => (score === Infinity ? "+inf" : score === -Infinity ? "-inf" : score))
  })
)

/** A member with its score. */
export const ScoredMemberSchema = Schema.Struct({ member: Schema.String, score: Score })

const Bound = Schema.Union([Schema.String, Schema.Finite])
const Flag = Schema.optionalKey(Schema.Boolean)
const RangeBy = Schema.Literals(["rank", "score", "lex"])
const NonNegativeInt = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))

/** ZADD. */
export const Add = Schema.TaggedStruct("Add", {
  members: Schema.Array(ScoredMemberSchema),
  nx: Flag,
  xx: Flag,
  gt: Flag,
  lt: Flag,
  ch: Flag
})
/** ZINCRBY. */
export const IncrBy = Schema.TaggedStruct("IncrBy", { member: Schema.String, by: Score })
/** ZREM. */
export const Remove = Schema.TaggedStruct("Remove", { members: Schema.Array(Schema.String) })
/** ZSCORE. */
export const GetScore = Schema.TaggedStruct("Score", { member: Schema.String })
/** ZRANK, or ZREVRANK with `rev`. */
export const Rank = Schema.TaggedStruct("Rank", { member: Schema.String, rev: Flag })
/** ZRANGE with BYSCORE/BYLEX, REV and LIMIT. */
export const Range = Schema.TaggedStruct("Range", {
  by: RangeBy,
  min: Bound,
  max: Bound,
  rev: Flag,
  offset: Schema.optionalKey(NonNegativeInt),
  limit: Schema.optionalKey(Schema.Int)
})
/** ZCOUNT. */
export const Count = Schema.TaggedStruct("Count", { min: Bound, max: Bound })
/** ZCARD. */
export const Card = Schema.TaggedStruct("Card", {})
/** ZPOPMIN / ZPOPMAX. */
export const Pop = Schema.TaggedStruct("Pop", { side: Schema.Literals(["min", "max"]), count: Schema.optionalKey(NonNegativeInt) })
/** ZREMRANGEBYRANK / BYSCORE / BYLEX. */
export const RemoveRange = Schema.TaggedStruct("RemoveRange", { by: RangeBy, min: Bound, max: Bound })

/** Every request. */
export const Request = Schema.Union([Add, IncrBy, Remove, GetScore, Rank, Range, Count, Card, Pop, RemoveRange])
/** A decoded request. */
export type Request = typeof Request.Type

const CountReply = Schema.Struct({ count: NonNegativeInt })
const MembersReply = Schema.Struct({ members: Schema.Array(ScoredMemberSchema) })

/** The reply Schema of each request, by tag. */
export const Replies = {
  Add: CountReply,
  IncrBy: Schema.Struct({ score: Score }),
  Remove: CountReply,
  Score: Schema.Struct({ score: Schema.NullOr(Score) }),
  Rank: Schema.Struct({ rank: Schema.NullOr(NonNegativeInt) }),
  Range: MembersReply,
  Count: CountReply,
  Card: Schema.Struct({ card: NonNegativeInt }),
  Pop: MembersReply,
  RemoveRange: CountReply
} as const

/** The reply type of a request. */
export type ReplyOf<R extends Request> = (typeof Replies)[R["_tag"]]["Type"]

/** Requests in one `Batch` message at most. */
export const BATCH_REQUESTS_MAX = 1_000

/** Any request's reply: the reply shapes differ in their keys, so each decodes as itself. */
export const AnyReply = Schema.Union([
  CountReply,
  Schema.Struct({ score: Schema.NullOr(Score) }),
  Replies.Rank,
  MembersReply,
  Replies.Card
])

/**
 * The outcome of one request of a `Batch`: its reply, or the bad input it was refused for
 * (nothing written for it).
 */
export const BatchOutcome = Schema.Union([
  Schema.Struct({ ok: Schema.Literal(true), reply: AnyReply }),
  Schema.Struct({ ok: Schema.Literal(false), error: InvalidArgument })
])
export type BatchOutcome = typeof BatchOutcome.Type

/**
 * Runs requests one after the other on an engine, as if each came as its own message: each has
 * its own outcome, and one refused for bad input writes nothing and does not stop the others.
 * A store failure fails them all (the entity restarts; none was acknowledged).
 */
export const handleBatch = (
  set: SortedSet,
  view: StoreView,
  requests: ReadonlyArray<Request>
): Effect.Effect<{ readonly outcomes: ReadonlyArray<BatchOutcome> }, Exclude<WriteError, InvalidArgument>> =>
  Effect.map(
    Effect.forEach(requests, (request) =>
      handle(set, view, request).pipe(
        Effect.map((reply): BatchOutcome => ({ ok: true, reply: reply as typeof AnyReply.Type })),
        Effect.catchTag("InvalidArgument", (error) => Effect.succeed<BatchOutcome>({ ok: false, error }))
      )),
    (outcomes) => ({ outcomes })
  )

/** What a request can fail with: bad input (naming the field) or the store (writes only). */
export const RequestError = Schema.Union([InvalidArgument, StoreClosed, StoreUnavailable, Fenced])

/** What activating (loading) a set can fail with. */
export const LoadError = Schema.Union([SortedSetCorrupt, InvalidArgument, StoreClosed, StoreUnavailable])

const members = (list: ReadonlyArray<ScoredMember>) => ({ members: list })

/** Runs one request on an engine; writes are staged on `view`. */
export const handle = <R extends Request>(set: SortedSet, view: StoreView, request: R): Effect.Effect<ReplyOf<R>, WriteError> => {
  const reply = ((): Effect.Effect<unknown, WriteError> => {
    const r = request as Request
    switch (r._tag) {
      case "Add":
        return Effect.map(set.add(view, r.members, r), (count) => ({ count }))
      case "IncrBy":
        return Effect.map(set.incrBy(view, r.member, r.by), (score) => ({ score }))
      case "Remove":
        return Effect.map(set.remove(view, r.members), (count) => ({ count }))
      case "Score":
        return Effect.map(set.score(r.member), (score) => ({ score: score ?? null }))
      case "Rank":
        return Effect.map(set.rank(r.member, r.rev === true), (rank) => ({ rank: rank ?? null }))
      case "Range":
        return Effect.map(set.range(r), members)
      case "Count":
        return Effect.map(set.count(r.min, r.max), (count) => ({ count }))
      case "Card":
        return Effect.map(set.card(), (card) => ({ card }))
      case "Pop":
        return Effect.map(set.pop(view, r.side, r.count), members)
      case "RemoveRange":
        return Effect.map(set.removeRange(view, r), (count) => ({ count }))
    }
  })()
  return reply as Effect.Effect<ReplyOf<R>, WriteError>
}
