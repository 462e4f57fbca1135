/**
 * Administration over HTTP: `GET /v1/admin/dump` streams an archive of the store, one point in
 * time (a LevelDB snapshot on a single node; on a cluster every worker's writes are held while
 * it runs), and `POST /v1/admin/restore` loads one (refusing a store with data unless
 * `?merge=true`) with every write held, then makes every resident entity, on every worker,
 * recover from the restored store. Both go through `WritePause`.
 */
import { Effect } from "effect"
import type { Readable } from "node:stream"
import { WritePause } from "../../actors/WritePause.js"
import type { KeyValueStore } from "../../persistence/KeyValueStore.js"
import { StoreBackend } from "../../persistence/StoreBackend.js"
import * as Archive from "../node/Archive.js"
import * as ApiError from "./ApiError.js"
import { json, type Route } from "./HttpServer.js"

const archiveFailure = (error: unknown) =>
  error instanceof Archive.ArchiveError ? ApiError.make(400, "InvalidArchive", error.message) : ApiError.fromFailure(error)

/** The admin routes. */
export const routes: ReadonlyArray<Route<StoreBackend | WritePause | KeyValueStore>> = [
  {
    method: "GET",
    path: "/v1/admin/dump",
    handler: () =>
      Effect.gen(function*() {
        const backend = yield* StoreBackend
        const release = yield* Effect.mapError(Effect.flatMap(WritePause, (pause) => pause.holdForDump), ApiError.fromFailure)
        return {
          _tag: "Stream" as const,
          status: 200,
          contentType: "application/gzip",
          write: (response) => Effect.runPromise(Archive.dump(backend, response).pipe(Effect.asVoid, Effect.ensuring(release)))
        }
      })
  },
  {
    method: "POST",
    path: "/v1/admin/restore",
    rawBody: true,
    handler: (request) =>
      Effect.gen(function*() {
        const backend = yield* StoreBackend
        const pause = yield* WritePause
        const records = yield* pause.restore(Archive.restore(backend, request.body as Readable, { merge: request.query.get("merge") === "true" })).pipe(
          Effect.mapError(archiveFailure)
        )
        return json({ records })
      })
  }
]
