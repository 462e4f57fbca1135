/**
 * The sorted set routes of HTTP API v1 (Redis ZSET semantics), over the SortedSet entity. Bodies
 * and queries are decoded with the entity's message schemas, so errors name the field; scores go
 * out as numbers or "+inf"/"-inf", and come in as numbers, "+inf"/"-inf", or 1e999 (which JSON
 * parsers read as infinite).
 */
import { Effect, Schema } from "effect"
import type { Rpc } from "effect/rpc"
import { Messenger } from "../../actors/Messenger.js"
import * as SortedSetClient from "../sortedset/SortedSetClient.js"
import * as SortedSetEntity from "../sortedset/SortedSetEntity.js"
import * as ApiError from "./ApiError.js"
import { json, type Request, type Route } from "./HttpServer.js"
import { fieldOf, messageOf } from "./SchemaField.js"
import { isObject } from "./Json.js"

/** JSON has no infinities: a number read as ±Infinity becomes the wire string. */
const infinities = (value: unknown): unknown =>
  value === Number.POSITIVE_INFINITY ? "+inf" : value === Number.NEGATIVE_INFINITY ? "-inf" : value

const ASK_TIMEOUT_MILLIS = 30_000

const ask = (key: string, rpc: Rpc.AnyWithProps, input: unknown) =>
  Effect.gen(function*() {
    const payload = yield* Schema.decodeUnknownEffect(rpc.payloadSchema as Schema.Codec<unknown, unknown>)(input).pipe(
      Effect.mapError((error) => ApiError.make(400, "InvalidArgument", messageOf(error), fieldOf(error)))
    )
    // Calls to one set coalesce while one is in flight: a hot leaderboard costs a message per round trip.
    const client = SortedSetClient.sharedFor(yield* Messenger, ASK_TIMEOUT_MILLIS)
    const ask = client.ask as unknown as (id: string, tag: string, payload: unknown) => Effect.Effect<unknown, unknown>
    const reply = yield* ask(key, rpc._tag, payload).pipe(Effect.mapError((error) => ApiError.fromFailure(error)))
    const encoded = yield* Schema.encodeUnknownEffect(rpc.successSchema as Schema.Codec<unknown, unknown>)(reply).pipe(Effect.orDie)
    return json(encoded)
  })

const body = (request: Request, map: (body: Record<string, unknown>) => unknown) =>
  isObject(request.body) ? map(request.body) : undefined

/** Range bounds: in a query string an unencoded `+` reads as a space, and no bound starts with one. */
const BOUNDS = new Set(["min", "max"])

const query = (request: Request, names: ReadonlyArray<string>, numbers: ReadonlyArray<string> = []) => {
  const out: Record<string, unknown> = {}
  for (const name of names) {
    const given = request.query.get(name)
    if (given === null) continue
    // `max=+` and `max=+inf` written as the contract shows them arrive as " " and " inf".
    const value = BOUNDS.has(name) && given.startsWith(" ") ? `+${given.slice(1)}` : given
    out[name] = numbers.includes(name) && /^-?\d+$/.test(value) ? Number(value) : value === "true" ? true : value === "false" ? false : value
  }
  return out
}

const as = (rpc: unknown) => rpc as Rpc.AnyWithProps

/** The bounds of the whole set for each kind of range (what a range or count without them reads). */
const WHOLE: Readonly<Record<string, readonly [string, string]>> = { rank: ["0", "-1"], score: ["-inf", "+inf"], lex: ["-", "+"] }

/** The sorted set routes. */
export const routes: ReadonlyArray<Route<Messenger>> = [
  {
    method: "POST",
    path: "/v1/zsets/:key/add",
    handler: (request) =>
      ask(request.params.key!, as(SortedSetEntity.Add), body(request, (b) => ({
        ...b,
        members: Array.isArray(b.members) ? b.members.map((m) => (isObject(m) ? { ...m, score: infinities(m.score) } : m)) : b.members
      })))
  },
  {
    method: "POST",
    path: "/v1/zsets/:key/incr",
    handler: (request) => ask(request.params.key!, as(SortedSetEntity.IncrBy), body(request, (b) => ({ ...b, by: infinities(b.by) })))
  },
  { method: "POST", path: "/v1/zsets/:key/remove", handler: (request) => ask(request.params.key!, as(SortedSetEntity.Remove), request.body) },
  { method: "GET", path: "/v1/zsets/:key/score/:member", handler: (request) => ask(request.params.key!, as(SortedSetEntity.Score), { member: request.params.member }) },
  {
    method: "GET",
    path: "/v1/zsets/:key/rank/:member",
    handler: (request) => ask(request.params.key!, as(SortedSetEntity.Rank), { member: request.params.member, ...query(request, ["rev"]) })
  },
  {
    method: "GET",
    path: "/v1/zsets/:key/range",
    handler: (request) => {
      const given = query(request, ["by", "min", "max", "rev", "offset", "limit"], ["offset", "limit"])
      // Bounds left out mean the whole set, in the range's own syntax.
      const whole = WHOLE[typeof given.by === "string" ? given.by : "rank"] ?? WHOLE.rank!
      return ask(request.params.key!, as(SortedSetEntity.Range), { by: "rank", min: whole[0], max: whole[1], ...given })
    }
  },
  {
    method: "GET",
    path: "/v1/zsets/:key/count",
    handler: (request) => ask(request.params.key!, as(SortedSetEntity.Count), { min: WHOLE.score![0], max: WHOLE.score![1], ...query(request, ["min", "max"]) })
  },
  { method: "POST", path: "/v1/zsets/:key/pop", handler: (request) => ask(request.params.key!, as(SortedSetEntity.Pop), request.body) },
  { method: "GET", path: "/v1/zsets/:key", handler: (request) => ask(request.params.key!, as(SortedSetEntity.Card), {}) }
]
