/**
 * The routes of durable work: `POST /v1/entities/:type/:id/messages` (a durable send of any
 * registered entity type's message, the application's own included, answered `202 {"id",
 * "duplicate"}` once Redis holds it), the dead letters (`GET /v1/dead-letters`, `POST
 * /v1/dead-letters/:id/retry`, `DELETE /v1/dead-letters/:id`), queue depths for the dashboard
 * (`GET /v1/durable`) and the maintenance schedules (`GET /v1/maintenance`). They replace the
 * placeholders of `EntityRoutes.ts` on a worker started with Redis.
 */
import { Effect, Schema } from "effect"
import type { Rpc } from "effect/rpc"
import * as DeadLetters from "../durable/DeadLetters.js"
import * as DurableMessages from "../durable/DurableMessages.js"
import * as Maintenance from "../durable/Maintenance.js"
import * as ApiError from "./ApiError.js"
import { json, type Route } from "./HttpServer.js"
import { fieldOf, messageOf } from "./SchemaField.js"

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** The answer for a failure of durable work: its own errors first, then the contract's table. */
const failure = (error: unknown): ApiError.ApiError => {
  const tag = (error as { readonly _tag?: unknown } | undefined)?._tag
  if (tag === "DurableUnavailable") {
    return ApiError.make(503, "DurableUnavailable", `Redis is not available for durable work right now; retry (${String((error as { message?: unknown }).message ?? "")})`)
  }
  if (tag === "DeadLetterNotFound") return ApiError.make(404, "DeadLetterNotFound", `no dead letter has the id ${String((error as { id?: unknown }).id)}`)
  return ApiError.fromFailure(error)
}

const send = (type: string, id: string, body: unknown) =>
  Effect.gen(function*() {
    const durable = yield* DurableMessages.DurableMessages
    const entity = durable.entityType(type)
    if (entity === undefined) return yield* Effect.fail(ApiError.make(404, "UnknownEntityType", `no entity type named ${type}`))
    if (!isObject(body) || !isObject(body.message)) {
      return yield* Effect.fail(ApiError.make(400, "InvalidArgument", "must be an object {\"_tag\", \"payload\"?}", "message"))
    }
    if (body.id !== undefined && body.id !== null && typeof body.id !== "string") {
      return yield* Effect.fail(ApiError.make(400, "InvalidArgument", "must be a string", "id"))
    }
    const tag = typeof body.message._tag === "string" ? body.message._tag : ""
    const rpc = entity.rpcs.get(tag) as Rpc.AnyWithProps | undefined
    if (rpc === undefined) {
      return yield* Effect.fail(ApiError.make(400, "InvalidArgument", `must name one of ${[...entity.rpcs.keys()].join(", ")}`, "message._tag"))
    }
    const payloadCodec = Schema.toCodecJson(rpc.payloadSchema) as unknown as Schema.Codec<unknown, unknown>
    const payload = yield* Schema.decodeUnknownEffect(payloadCodec)(body.message.payload ?? null).pipe(
      Effect.mapError((error) => ApiError.make(400, "InvalidArgument", messageOf(error), fieldOf(error, "message.payload")))
    )
    const dedupId = typeof body.id === "string" ? body.id : undefined
    const sent = yield* durable.sendTo(entity, id, tag, payload, { id: dedupId }).pipe(Effect.mapError(failure))
    return json(sent, 202)
  })

const limitOf = (text: string | null): number | ApiError.ApiError => {
  if (text === null) return 100
  const limit = Number(text)
  return /^[0-9]{1,4}$/.test(text) && limit >= 1 && limit <= 1_000 ? limit : ApiError.make(400, "InvalidArgument", "must be an integer from 1 to 1000", "limit")
}

/** The durable-message and dead-letter routes. */
export const routes: ReadonlyArray<Route<DurableMessages.DurableMessages | DeadLetters.DeadLetters>> = [
  { method: "POST", path: "/v1/entities/:type/:id/messages", handler: (request) => send(request.params.type!, request.params.id!, request.body) },
  {
    method: "GET",
    path: "/v1/dead-letters",
    handler: (request) =>
      Effect.gen(function*() {
        const limit = limitOf(request.query.get("limit"))
        if (typeof limit !== "number") return yield* Effect.fail(limit)
        const deadLetters = yield* DeadLetters.DeadLetters
        const page = yield* deadLetters.list({
          type: request.query.get("type") ?? undefined,
          limit,
          cursor: request.query.get("cursor") ?? undefined
        }).pipe(Effect.mapError(failure))
        return json({
          items: page.items.map((item) => ({
            id: item.id,
            type: item.type,
            entity: item.entity,
            message: item.message,
            attempts: item.attempts,
            error: item.error,
            deadAt: item.deadAt
          })),
          cursor: page.cursor
        })
      })
  },
  {
    method: "POST",
    path: "/v1/dead-letters/:id/retry",
    handler: (request) =>
      Effect.flatMap(DeadLetters.DeadLetters, (deadLetters) => Effect.mapError(deadLetters.retry(request.params.id!), failure)).pipe(Effect.map((sent) => json(sent)))
  },
  {
    method: "DELETE",
    path: "/v1/dead-letters/:id",
    handler: (request) =>
      Effect.flatMap(DeadLetters.DeadLetters, (deadLetters) => Effect.mapError(deadLetters.purge(request.params.id!), failure)).pipe(
        Effect.map((deleted) => json({ deleted }))
      )
  },
  {
    method: "GET",
    path: "/v1/durable",
    handler: () => Effect.flatMap(DurableMessages.DurableMessages, (durable) => Effect.mapError(durable.stats, failure)).pipe(Effect.map(json))
  }
]

/** The maintenance route: every schedule with its next run and this worker's runs. */
export const maintenanceRoutes: ReadonlyArray<Route<Maintenance.Maintenance>> = [
  {
    method: "GET",
    path: "/v1/maintenance",
    handler: () =>
      Effect.flatMap(Maintenance.Maintenance, (maintenance) => Effect.mapError(maintenance.status, failure)).pipe(Effect.map((schedules) => json({ schedules })))
  }
]
