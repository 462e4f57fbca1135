/**
 * Administration over HTTP: `GET /v1/admin/dump` streams an archive of the node's store (one
 * consistent snapshot on LevelDB), `POST /v1/admin/restore` loads one (refusing a store with data
 * unless `?merge=true`) and then restarts every shard this process owns, at the epoch it holds,
 * so none of its entities keeps state from before. On a cluster it takes no shard it does not
 * own: entities resident on other workers keep their state until those restart.
 */
import { Effect } from "effect"
import type { Readable } from "node:stream"
import * as EntityRuntime from "../../actors/EntityRuntime.js"
import type { KeyValueStore } from "../../persistence/KeyValueStore.js"
import { StoreBackend } from "../../persistence/StoreBackend.js"
import * as Archive from "../node/Archive.js"
import * as ApiError from "./ApiError.js"
import { json, type Route } from "./HttpServer.js"

const archiveFailure = (error: unknown) =>
  error instanceof Archive.ArchiveError ? ApiError.make(400, "InvalidArchive", error.message) : ApiError.fromFailure(error)

/** The admin routes. */
export const routes: ReadonlyArray<Route<StoreBackend | EntityRuntime.EntityRuntime | KeyValueStore>> = [
  {
    method: "GET",
    path: "/v1/admin/dump",
    handler: () =>
      Effect.map(StoreBackend, (backend) => ({
        _tag: "Stream" as const,
        status: 200,
        contentType: "application/gzip",
        write: (response) => Effect.runPromise(Effect.asVoid(Archive.dump(backend, response)))
      }))
  },
  {
    method: "POST",
    path: "/v1/admin/restore",
    rawBody: true,
    handler: (request) =>
      Effect.gen(function*() {
        const backend = yield* StoreBackend
        const runtime = yield* EntityRuntime.EntityRuntime
        const records = yield* Archive.restore(backend, request.body as Readable, { merge: request.query.get("merge") === "true" }).pipe(
          Effect.mapError(archiveFailure)
        )
        // Entities resident before the restore hold state the store no longer has: restart them.
        yield* Effect.forEach([...runtime.owned().keys()], runtime.restartShard, { discard: true, concurrency: 16 }).pipe(
          Effect.mapError(ApiError.fromFailure)
        )
        return json({ records })
      })
  }
]
