/**
 * The routes of durable work: `POST /v1/entities/:type/:id/messages` (a durable send of any
 * registered entity type's message, the application's own included, answered `202 {"id",
 * "duplicate"}` once Redis holds it), the dead letters (`GET /v1/dead-letters`, `POST
 * /v1/dead-letters/:id/retry`, `DELETE /v1/dead-letters/:id`), queue depths for the dashboard
 * (`GET /v1/durable`) and the maintenance schedules (`GET /v1/maintenance`). They replace the
 * placeholders of `EntityRoutes.ts` on a worker started with Redis.
 */
import { Effect } from "effect"
import * as DeadLetters from "../durable/DeadLetters.js"
import * as DurableMessages from "../durable/DurableMessages.js"
import * as Maintenance from "../durable/Maintenance.js"
import * as ApiError from "./ApiError.js"
import { decodeMessage } from "./EntityRoutes.js"
import { json, type Route } from "./HttpServer.js"


const send = (type: string, id: string, body: unknown) =>
  Effect.gen(function*() {
    const durable = yield* DurableMessages.DurableMessages
    const entity = durable.entityType(type)
    const { tag, payload } = yield* decodeMessage(type, entity, body)
    // The message checked first, as before: the id's check comes after it.
    const dedup = (body as { readonly id?: unknown }).id
    if (dedup !== undefined && dedup !== null && typeof dedup !== "string") {
      return yield* Effect.fail(ApiError.make(400, "InvalidArgument", "must be a string", "id"))
    }
    const sent = yield* durable.sendTo(entity!, id, tag, payload, { id: typeof dedup === "string" ? dedup : undefined }).pipe(Effect.mapError((error) => ApiError.fromFailure(error)))
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
        }).pipe(Effect.mapError((error) => ApiError.fromFailure(error)))
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
      Effect.flatMap(DeadLetters.DeadLetters, (deadLetters) => Effect.mapError(deadLetters.retry(request.params.id!), (error) => ApiError.fromFailure(error))).pipe(Effect.map((sent) => json(sent)))
  },
  {
    method: "DELETE",
    path: "/v1/dead-letters/:id",
    handler: (request) =>
      Effect.flatMap(DeadLetters.DeadLetters, (deadLetters) => Effect.mapError(deadLetters.purge(request.params.id!), (error) => ApiError.fromFailure(error))).pipe(
        Effect.map((deleted) => json({ deleted }))
      )
  },
  {
    method: "GET",
    path: "/v1/durable",
    handler: () => Effect.flatMap(DurableMessages.DurableMessages, (durable) => Effect.mapError(durable.stats, (error) => ApiError.fromFailure(error))).pipe(Effect.map(json))
  }
]

/** The maintenance route: every schedule with its next run and this worker's runs. */
export const maintenanceRoutes: ReadonlyArray<Route<Maintenance.Maintenance>> = [
  {
    method: "GET",
    path: "/v1/maintenance",
    handler: () =>
      Effect.flatMap(Maintenance.Maintenance, (maintenance) => Effect.mapError(maintenance.status, (error) => ApiError.fromFailure(error))).pipe(Effect.map((schedules) => json({ schedules })))
  }
]
