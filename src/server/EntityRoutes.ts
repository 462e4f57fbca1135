/**
 * The routes for any entity type, built in or the application's own: `ask` sends a message
 * (`{"_tag": "<Message>", "payload": ...}` as the message's schemas encode it to JSON) and
 * answers `{"reply": ...}`; a declared failure of the handler is a 409 with its tag as the code.
 * Durable messages and dead letters need BullMQ and answer 404 until a worker enables them.
 */
import { Effect, Exit, Schema } from "effect"
import type { Rpc } from "effect/rpc"
import type { AnyEntityType } from "../../actors/Entity.js"
import { EntityRuntime } from "../../actors/EntityRuntime.js"
import { Messenger } from "../../actors/Messenger.js"
import * as ApiError from "./ApiError.js"
import { json, type Route } from "./HttpServer.js"
import { fieldOf, messageOf } from "./SchemaField.js"
import { isObject } from "./Json.js"

/**
 * The message of a request body `{"message": {"_tag", "payload"?}, ...}` for an entity type
 * (undefined: not registered): its tag, its definition and its payload decoded from JSON, or the
 * contract's error naming the field. The ask and durable-send routes share it.
 */
export const decodeMessage = (type: string, entity: AnyEntityType | undefined, body: unknown) =>
  Effect.gen(function*() {
    if (entity === undefined) return yield* Effect.fail(ApiError.make(404, "UnknownEntityType", `no entity type named ${type}`))
    if (!isObject(body) || !isObject(body.message)) {
      return yield* Effect.fail(ApiError.make(400, "InvalidArgument", "must be an object {\"_tag\", \"payload\"?}", "message"))
    }
    const tag = typeof body.message._tag === "string" ? body.message._tag : ""
    const rpc = entity.rpcs.get(tag) as Rpc.AnyWithProps | undefined
    if (rpc === undefined || entity.internal.has(tag)) {
      const open = [...entity.rpcs.keys()].filter((name) => !entity.internal.has(name))
      return yield* Effect.fail(ApiError.make(400, "InvalidArgument", `must name one of ${open.join(", ")}`, "message._tag"))
    }
    const payloadCodec = Schema.toCodecJson(rpc.payloadSchema) as unknown as Schema.Codec<unknown, unknown>
    const payload = yield* Schema.decodeUnknownEffect(payloadCodec)(body.message.payload ?? null).pipe(
      Effect.mapError((error) => ApiError.make(400, "InvalidArgument", messageOf(error), fieldOf(error, "message.payload")))
    )
    return { tag, rpc, payload }
  })

const ask = (type: string, id: string, body: unknown) =>
  Effect.gen(function*() {
    const runtime = yield* EntityRuntime
    const messenger = yield* Messenger
    const { tag, rpc, payload } = yield* decodeMessage(type, runtime.entityType(type), body)
    const exit = yield* Effect.callback<Exit.Exit<unknown, unknown>>((resume) => {
      messenger.deliver({
        type,
        id,
        tag,
        payload,
        reply: (outcome) => resume(Effect.succeed(outcome)),
        deadline: Date.now() + 30_000
      })
    })
    if (Exit.isFailure(exit)) {
      const failure = exit.cause.reasons.find((reason) => reason._tag === "Fail")
      return yield* Effect.fail(ApiError.fromFailure(failure?._tag === "Fail" ? failure.error : undefined))
    }
    const successCodec = Schema.toCodecJson(rpc.successSchema) as unknown as Schema.Codec<unknown, unknown>
    const reply = yield* Schema.encodeUnknownEffect(successCodec)(exit.value).pipe(Effect.orDie)
    return json({ reply })
  })

const notEnabled = ApiError.make(404, "NotEnabled", "durable messages need Redis: start the node with --redis (workers always have it)")

/** The ask route, for any registered entity type. */
export const askRoutes: ReadonlyArray<Route<EntityRuntime | Messenger>> = [
  { method: "POST", path: "/v1/entities/:type/:id/ask", handler: (request) => ask(request.params.type!, request.params.id!, request.body) }
]

/** The entity routes of a node without durable work: the durable ones answer `NotEnabled`. */
export const routes: ReadonlyArray<Route<EntityRuntime | Messenger>> = [
  ...askRoutes,
  { method: "POST", path: "/v1/entities/:type/:id/messages", handler: () => Effect.fail(notEnabled) },
  { method: "GET", path: "/v1/dead-letters", handler: () => Effect.fail(notEnabled) },
  { method: "POST", path: "/v1/dead-letters/:id/retry", handler: () => Effect.fail(notEnabled) },
  { method: "DELETE", path: "/v1/dead-letters/:id", handler: () => Effect.fail(notEnabled) }
]
