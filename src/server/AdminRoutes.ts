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
        const hold = yield* Effect.mapError(Effect.flatMap(WritePause, (pause) => pause.holdForDump), ApiError.fromFailure)
        return {
          _tag: "Stream" as const,
          status: 200,
          contentType: "application/gzip",
          // A hold lost meanwhile leaves the archive without its end line: a restore refuses it.
          write: (response) => Effect.runPromise(Archive.dump(backend, response, undefined, hold.intact).pipe(Effect.asVoid, Effect.ensuring(hold.release)))
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
        const merge = request.query.get("merge") === "true"
        // Refused before anything is held: a refused restore leaves the cluster's writes alone.
        yield* Effect.mapError(Archive.checkTarget(backend, merge), archiveFailure)
        const records = yield* pause.restore(Archive.restore(backend, request.body as Readable, { merge })).pipe(
          Effect.mapError(archiveFailure)
        )
        return json({ records })
      })
  }
]
