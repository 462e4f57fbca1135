/**
 * The operations of the differential test: a seeded generator of random sorted-set operations,
 * a runner that applies one to the engine and the same one to a real Redis ZSET, the
 * normalisation that makes their answers comparable, and a delta-debugging shrinker.
 *
 * Two sets are driven side by side: "score" (mixed scores) and "lex" (every score 0, because
 * Redis leaves lex ranges unspecified when scores differ). Only input that both sides accept or
 * both refuse is generated; the engine's deliberate refusals (empty members, lone surrogates,
 * hexadecimal bounds) are covered by the bad-input tests instead.
 */
import { Cause, Effect, Exit, Schema } from "effect"
import type { Rpc } from "effect/rpc"
import type { Redis } from "ioredis"
import type { StoreView } from "../../persistence/StoreView.js"
import type { AddFlags, RangeBounds, RangeQuery, ScoredMember, SortedSet, Side } from "../../src/sortedset/SortedSet.js"
import { random as mulberry32 } from "../support/random.js"

/** Which of the two sets an operation addresses. */
export type SetName = "score" | "lex"

/** One operation, as data (so that a failing sequence can be printed and replayed). */
export type Operation =
  | { readonly op: "add"; readonly set: SetName; readonly members: ReadonlyArray<ScoredMember>; readonly flags: AddFlags }
  | { readonly op: "incrBy"; readonly set: SetName; readonly member: string; readonly by: number }
  | { readonly op: "remove"; readonly set: SetName; readonly members: ReadonlyArray<string> }
  | { readonly op: "score"; readonly set: SetName; readonly member: string }
  | { readonly op: "rank"; readonly set: SetName; readonly member: string; readonly rev: boolean }
  | { readonly op: "range"; readonly set: SetName; readonly query: RangeQuery }
  | { readonly op: "count"; readonly set: SetName; readonly min: string; readonly max: string }
  | { readonly op: "card"; readonly set: SetName }
  | { readonly op: "pop"; readonly set: SetName; readonly side: Side; readonly count: number | undefined }
  | { readonly op: "removeRange"; readonly set: SetName; readonly bounds: RangeBounds }

/** A comparable answer: a JSON value, or an error. */
export type Outcome = { readonly ok: unknown } | { readonly error: string }

/** mulberry32: a small seeded generator, good enough for test input. */
export const random = (seed: number) => {
  const next = mulberry32(seed)
  const int = (below: number) => Math.floor(next() * below)
  const pick = <A>(items: ReadonlyArray<A>): A => items[int(items.length)]!
  const chance = (p: number) => next() < p
  return { next, int, pick, chance }
}

export type Random = ReturnType<typeof random>

// Members: a hot few (so members repeat), many plain ones (so Redis leaves its listpack form),
// Unicode where UTF-16 and UTF-8 orders disagree, and two past the inline key limit.
const HOT = ["a", "b", "c", "ab", "abc", "B", "a\u0000b", "-", "+", "[", "(", "z"]
const UNICODE = ["é", "ü", "日本", "\u{1F600}", "\u{10FFFF}", "\uE000", "\uFFFD", "\uFFFF", "a\u{1F600}", "a\uFFFD", "\u00FF", "\u0100"]
const LONG = ["L".repeat(600), "L".repeat(599) + "\u{1F600}", "m".repeat(512)]
const PLAIN = Array.from({ length: 200 }, (_, i) => `m${String(i).padStart(3, "0")}`)

const SCORES = [
  0, -0, 1, -1, 2, 1.5, -1.5, 0.1, 0.2, 0.30000000000000004, 1e-300, -1e-300, 5e-324, -5e-324, 1.7976931348623157e308,
  -1.7976931348623157e308, Infinity, -Infinity, 2 ** 53, 2 ** 53 + 2, -(2 ** 53), 42, 1e15, 123456.789
]

const member = (r: Random): string =>
  r.chance(0.45) ? r.pick(HOT) : r.chance(0.15) ? r.pick(UNICODE) : r.chance(0.03) ? r.pick(LONG) : r.pick(PLAIN)

const score = (r: Random): number =>
  r.chance(0.6) ? r.pick(SCORES) : r.chance(0.5) ? r.int(10) - 5 : (r.next() - 0.5) * 10 ** (r.int(20) - 5)

/** A score in Redis bound syntax. */
const scoreText = (value: number): string => (value === Infinity ? "+inf" : value === -Infinity ? "-inf" : String(value))

const scoreBound = (r: Random): string => {
  if (r.chance(0.02)) return r.pick(["abc", "1e", "((1", "nan", "1 2"])
  if (r.chance(0.15)) return r.pick(["-inf", "+inf", "(-inf", "(+inf", "inf", "-Infinity"])
  return (r.chance(0.3) ? "(" : "") + scoreText(score(r))
}

const lexBound = (r: Random): string => {
  if (r.chance(0.02)) return r.pick(["a", "", "x["])
  if (r.chance(0.2)) return r.pick(["-", "+"])
  return (r.chance(0.5) ? "(" : "[") + (r.chance(0.1) ? "" : member(r))
}

const index = (r: Random): string => String(r.chance(0.5) ? r.int(12) - 6 : r.int(400) - 200)

const flags = (r: Random): AddFlags => {
  const out: { nx?: boolean; xx?: boolean; gt?: boolean; lt?: boolean; ch?: boolean } = {}
  const bad = r.chance(0.03)
  if (r.chance(0.2)) out.nx = true
  else if (r.chance(0.2)) out.xx = true
  if (out.nx !== true || bad) {
    if (r.chance(0.2)) out.gt = true
    else if (r.chance(0.2)) out.lt = true
  }
  if (bad) r.pick([() => (out.xx = true), () => (out.gt = true), () => (out.lt = true)])()
  if (r.chance(0.4)) out.ch = true
  return out
}

const paging = (r: Random) => {
  if (r.chance(0.6)) return {}
  const offset = r.chance(0.7) ? r.int(6) : undefined
  const limit = r.chance(0.8) ? r.int(8) - 1 : undefined
  return { ...(offset !== undefined ? { offset } : {}), ...(limit !== undefined ? { limit } : {}) }
}

/** Narrow removal bounds, so that the sets keep growing to a few hundred members. */
const removal = (r: Random, lex: boolean): RangeBounds => {
  const by = lex ? r.pick(["rank", "score", "lex"] as const) : r.pick(["rank", "score"] as const)
  if (by === "rank") {
    const start = r.int(400) - 200
    return { by, min: String(start), max: String(start + r.int(4) - (r.chance(0.1) ? 3 : 0)) }
  }
  if (by === "score") {
    if (r.chance(0.1)) return { by, min: scoreBound(r), max: scoreBound(r) }
    const low = score(r)
    const high = Number.isFinite(low) ? low + r.int(2) : low
    return { by, min: (r.chance(0.3) ? "(" : "") + scoreText(low), max: (r.chance(0.3) ? "(" : "") + scoreText(high) }
  }
  if (r.chance(0.1)) return { by, min: lexBound(r), max: lexBound(r) }
  const low = member(r)
  return { by, min: (r.chance(0.5) ? "[" : "(") + low, max: (r.chance(0.5) ? "[" : "(") + low + r.pick(["", "\u0000", "a", "z"]) }
}

/** One random operation on `set`. */
export const generate = (r: Random, set: SetName): Operation => {
  const lex = set === "lex"
  const value = () => (lex ? 0 : score(r))
  const roll = r.int(100)
  if (roll < 32) {
    const members = Array.from({ length: 1 + r.int(r.chance(0.1) ? 20 : 4) }, () => ({ member: member(r), score: value() }))
    return { op: "add", set, members, flags: flags(r) }
  }
  if (roll < 38 && !lex) return { op: "incrBy", set, member: member(r), by: r.chance(0.3) ? r.pick(SCORES) : r.int(7) - 3 }
  if (roll < 43) return { op: "remove", set, members: Array.from({ length: 1 + r.int(3) }, () => member(r)) }
  if (roll < 49) return { op: "score", set, member: member(r) }
  if (roll < 57) return { op: "rank", set, member: member(r), rev: r.chance(0.5) }
  if (roll < 66) {
    const rev = r.chance(0.4)
    return r.chance(0.05)
      ? { op: "range", set, query: { by: "rank", min: index(r), max: index(r), rev, offset: 0, limit: 1 } }
      : { op: "range", set, query: { by: "rank", min: index(r), max: index(r), rev } }
  }
  if (roll < 78) return { op: "range", set, query: { by: "score", min: scoreBound(r), max: scoreBound(r), rev: r.chance(0.4), ...paging(r) } }
  if (roll < 87 && lex) return { op: "range", set, query: { by: "lex", min: lexBound(r), max: lexBound(r), rev: r.chance(0.4), ...paging(r) } }
  if (roll < 87) return { op: "count", set, min: scoreBound(r), max: scoreBound(r) }
  if (roll < 90) return { op: "card", set }
  if (roll < 95) return { op: "pop", set, side: r.chance(0.5) ? "min" : "max", count: r.chance(0.3) ? undefined : r.int(4) - (r.chance(0.05) ? 2 : 0) }
  return { op: "removeRange", set, bounds: removal(r, lex) }
}

/** A random sequence of `length` operations, mostly on the score set. */
export const sequence = (seed: number, length: number): Array<Operation> => {
  const r = random(seed)
  return Array.from({ length }, () => generate(r, r.chance(0.7) ? "score" : "lex"))
}

/** −0 as 0 and infinities as strings, so answers compare with `toEqual`. */
const number = (value: number): number | string =>
  value === Infinity ? "+inf" : value === -Infinity ? "-inf" : value === 0 ? 0 : value

const parseRedisScore = (text: string): number =>
  text === "inf" || text === "+inf" ? Infinity : text === "-inf" ? -Infinity : Number(text)

const pairs = (flat: ReadonlyArray<string>) => {
  const out: Array<[string, number | string]> = []
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i]!, number(parseRedisScore(flat[i + 1]!))])
  return out
}

/** Runs one operation on the engine and normalises its answer. */
export const runEngine = async (engines: Record<SetName, SortedSet>, view: StoreView, operation: Operation): Promise<Outcome> => {
  const set = engines[operation.set]
  const effect: Effect.Effect<unknown, { readonly _tag: string; readonly field?: string }> = (() => {
    switch (operation.op) {
      case "add":
        return set.add(view, operation.members, operation.flags)
      case "incrBy":
        return Effect.map(set.incrBy(view, operation.member, operation.by), number)
      case "remove":
        return set.remove(view, operation.members)
      case "score":
        return Effect.map(set.score(operation.member), (value) => (value === undefined ? null : number(value)))
      case "rank":
        return Effect.map(set.rank(operation.member, operation.rev), (value) => value ?? null)
      case "range":
        return Effect.map(set.range(operation.query), (list) => list.map(({ member, score }) => [member, number(score)]))
      case "count":
        return set.count(operation.min, operation.max)
      case "card":
        return set.card()
      case "pop":
        return Effect.map(set.pop(view, operation.side, operation.count), (list) => list.map(({ member, score }) => [member, number(score)]))
      case "removeRange":
        return set.removeRange(view, operation.bounds)
    }
  })()
  const exit = await Effect.runPromiseExit(effect)
  if (Exit.isSuccess(exit)) return { ok: exit.value }
  const error = Cause.findErrorOption(exit.cause)
  if (error._tag === "None") throw new Error(`engine defect on ${JSON.stringify(operation)}: ${Cause.pretty(exit.cause)}`)
  return { error: `${error.value._tag}(${error.value.field ?? ""})` }
}

/** The entity message of an operation: its tag and payload (the request's fields). */
const entityMessage = (operation: Operation): { readonly tag: string; readonly payload: Record<string, unknown> } => {
  switch (operation.op) {
    case "add":
      return { tag: "Add", payload: { members: operation.members, ...operation.flags } }
    case "incrBy":
      return { tag: "IncrBy", payload: { member: operation.member, by: operation.by } }
    case "remove":
      return { tag: "Remove", payload: { members: operation.members } }
    case "score":
      return { tag: "Score", payload: { member: operation.member } }
    case "rank":
      return { tag: "Rank", payload: { member: operation.member, rev: operation.rev } }
    case "range":
      return { tag: "Range", payload: { ...operation.query } }
    case "count":
      return { tag: "Count", payload: { min: operation.min, max: operation.max } }
    case "card":
      return { tag: "Card", payload: {} }
    case "pop":
      return { tag: "Pop", payload: { side: operation.side, ...(operation.count === undefined ? {} : { count: operation.count }) } }
    case "removeRange":
      return { tag: "RemoveRange", payload: { ...operation.bounds } }
  }
}

type ScoredReply = ReadonlyArray<{ readonly member: string; readonly score: number }>

/** An entity's reply, normalised like the engine's answer. */
const entityAnswer = (operation: Operation, reply: any): unknown => {
  switch (operation.op) {
    case "add":
    case "remove":
    case "count":
    case "removeRange":
      return reply.count
    case "incrBy":
      return number(reply.score)
    case "score":
      return reply.score === null ? null : number(reply.score)
    case "rank":
      return reply.rank
    case "card":
      return reply.card
    case "range":
    case "pop":
      return (reply.members as ScoredReply).map(({ member, score }) => [member, number(score)])
  }
}

/** Sends a message to an entity: `(id, tag, payload)` to its reply, or a typed failure. */
export type Ask = (id: string, tag: string, payload: unknown) => Effect.Effect<unknown, { readonly _tag: string; readonly field?: string }>

/**
 * A JSON round trip through a message's schemas, as between two workers: the payload encoded
 * by the sender and decoded by the owner, the reply encoded by the owner and decoded by the
 * sender. A value the schemas refuse fails as `InvalidMessage`, naming the side.
 */
export const overTheWire = (rpcs: ReadonlyMap<string, Rpc.AnyWithProps>, ask: Ask): Ask => (id, tag, payload) => {
  const rpc = rpcs.get(tag)!
  const payloadCodec = Schema.toCodecJson(rpc.payloadSchema) as unknown as Schema.Codec<unknown, unknown>
  const replyCodec = Schema.toCodecJson(rpc.successSchema) as unknown as Schema.Codec<unknown, unknown>
  const refused = (side: string) => ({ _tag: "InvalidMessage", field: side })
  return Effect.gen(function*() {
    const wire = yield* Effect.mapError(Schema.encodeUnknownEffect(payloadCodec)(payload), () => refused("payload"))
    const decoded = yield* Effect.mapError(Schema.decodeUnknownEffect(payloadCodec)(JSON.parse(JSON.stringify(wire))), () => refused("payload"))
    const reply = yield* ask(id, tag, decoded)
    const encoded = yield* Effect.mapError(Schema.encodeUnknownEffect(replyCodec)(reply), () => refused("reply"))
    return yield* Effect.mapError(Schema.decodeUnknownEffect(replyCodec)(JSON.parse(JSON.stringify(encoded))), () => refused("reply"))
  })
}

/** Runs one operation as a message to the SortedSet entity `ids[set]` and normalises its reply. */
export const runEntity = async (ask: Ask, ids: Record<SetName, string>, operation: Operation): Promise<Outcome> => {
  const { tag, payload } = entityMessage(operation)
  const exit = await Effect.runPromiseExit(ask(ids[operation.set], tag, payload))
  if (Exit.isSuccess(exit)) return { ok: entityAnswer(operation, exit.value) }
  const error = Cause.findErrorOption(exit.cause)
  if (error._tag === "None") throw new Error(`entity defect on ${JSON.stringify(operation)}: ${Cause.pretty(exit.cause)}`)
  return { error: `${error.value._tag}(${error.value.field ?? ""})` }
}

const limitArgs = (query: RangeQuery): Array<string> =>
  query.offset === undefined && query.limit === undefined
    ? []
    : ["LIMIT", String(query.offset ?? 0), String(query.limit === undefined || query.limit < 0 ? -1 : query.limit)]

const redisRange = (key: string, query: RangeQuery): Array<string> => {
  const rev = query.rev === true
  const [first, second] = rev && query.by !== "rank" ? [query.max, query.min] : [query.min, query.max]
  const by = query.by === "score" ? ["BYSCORE"] : query.by === "lex" ? ["BYLEX"] : []
  return [
    "ZRANGE", key, String(first), String(second), ...by, ...(rev ? ["REV"] : []), ...limitArgs(query),
    ...(query.by === "lex" ? [] : ["WITHSCORES"])
  ]
}

/** The Redis command of an operation. */
export const redisCommand = (keys: Record<SetName, string>, operation: Operation): Array<string> => {
  const key = keys[operation.set]
  switch (operation.op) {
    case "add": {
      const f = operation.flags
      const options = [f.nx ? "NX" : "", f.xx ? "XX" : "", f.gt ? "GT" : "", f.lt ? "LT" : "", f.ch ? "CH" : ""].filter((x) => x !== "")
      return ["ZADD", key, ...options, ...operation.members.flatMap(({ member, score }) => [scoreText(score), member])]
    }
    case "incrBy":
      return ["ZINCRBY", key, scoreText(operation.by), operation.member]
    case "remove":
      return ["ZREM", key, ...operation.members]
    case "score":
      return ["ZSCORE", key, operation.member]
    case "rank":
      return [operation.rev ? "ZREVRANK" : "ZRANK", key, operation.member]
    case "range":
      return redisRange(key, operation.query)
    case "count":
      return ["ZCOUNT", key, operation.min, operation.max]
    case "card":
      return ["ZCARD", key]
    case "pop":
      return [operation.side === "min" ? "ZPOPMIN" : "ZPOPMAX", key, ...(operation.count === undefined ? [] : [String(operation.count)])]
    case "removeRange": {
      const { by, min, max } = operation.bounds
      const command = by === "rank" ? "ZREMRANGEBYRANK" : by === "score" ? "ZREMRANGEBYSCORE" : "ZREMRANGEBYLEX"
      return [command, key, String(min), String(max)]
    }
  }
}

/** Runs one operation on Redis and normalises its answer like the engine's. */
export const runRedis = async (redis: Redis, keys: Record<SetName, string>, operation: Operation): Promise<Outcome> => {
  const [command, ...args] = redisCommand(keys, operation)
  let reply: unknown
  try {
    reply = await redis.call(command!, ...args)
  } catch (error) {
    return { error: String((error as Error).message ?? error) }
  }
  switch (operation.op) {
    case "incrBy":
      return { ok: number(parseRedisScore(reply as string)) }
    case "score":
      return { ok: reply === null ? null : number(parseRedisScore(reply as string)) }
    case "range":
      return operation.query.by === "lex"
        ? { ok: (reply as Array<string>).map((member) => [member, 0]) }
        : { ok: pairs(reply as Array<string>) }
    case "pop":
      return { ok: pairs(reply as Array<string>) }
    default:
      return { ok: reply }
  }
}

/** Whether two outcomes agree: equal values, or both errors (the messages differ by design). */
export const agree = (engine: Outcome, redis: Outcome): boolean =>
  "error" in engine || "error" in redis
    ? "error" in engine && "error" in redis
    : JSON.stringify(engine.ok) === JSON.stringify(redis.ok)

/**
 * Delta debugging (ddmin): the shortest subsequence it finds for which `fails` still holds.
 * `budget` bounds the number of replays.
 */
export const shrink = async <A>(
  items: ReadonlyArray<A>,
  fails: (candidate: ReadonlyArray<A>) => Promise<boolean>,
  budget = 400
): Promise<ReadonlyArray<A>> => {
  let current = items
  let parts = 2
  let replays = 0
  while (current.length >= 2 && replays < budget) {
    const size = Math.ceil(current.length / parts)
    let reduced = false
    for (let start = 0; start < current.length && replays < budget; start += size) {
      const complement = [...current.slice(0, start), ...current.slice(start + size)]
      replays++
      if (complement.length > 0 && await fails(complement)) {
        current = complement
        parts = Math.max(parts - 1, 2)
        reduced = true
        break
      }
    }
    if (!reduced) {
      if (parts >= current.length) break
      parts = Math.min(parts * 2, current.length)
    }
  }
  return current
}
