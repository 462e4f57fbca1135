/**
 * The search routes of HTTP API v1 over the Search entities: documents by id, searches, the
 * index's size, and (beyond the contract's table) `PUT /v1/indexes/:index` to create an index
 * with declared field types. An index written to before it was created is defined from its
 * first document's field types.
 *
 * Query parameters are passed to the engine as given (numbers converted), so its typed errors
 * name the parameter at fault: `limit`, `offset`, `fuzzy`, `prefix`, `fields`, `filter`, `q`.
 */
import { Effect } from "effect"
import * as IndexSchema from "../search/IndexSchema.js"
import { Search } from "../search/Search.js"
import { InvalidQuery } from "../search/SearchError.js"
import type { SearchRequest } from "../search/SearchMessages.js"
import * as ApiError from "./ApiError.js"
import { json, type Request, type Route } from "./HttpServer.js"

const mapFailure = Effect.mapError((error: unknown) => ApiError.fromFailure(error))

/** A numeric parameter as a number (NaN when it is not one, which the engine names as invalid). */
const numberParam = (query: URLSearchParams, name: string): number | undefined => {
  const text = query.get(name)
  if (text === null) return undefined
  return /^\s*-?\d+(\.\d+)?\s*$/.test(text) ? Number(text) : Number.NaN
}

/** `fields` as repeated parameters and/or comma-separated lists. */
const listParam = (query: URLSearchParams, name: string): ReadonlyArray<string> | undefined => {
  const values = query.getAll(name)
  if (values.length === 0) return undefined
  return values.flatMap((value) => value.split(",")).map((value) => value.trim()).filter((value) => value.length > 0)
}

/** The search request of a query string, or the first parameter the engine cannot be given. */
const searchRequest = (query: URLSearchParams): SearchRequest | InvalidQuery => {
  const q = query.get("q")
  if (q === null) return new InvalidQuery({ field: "q", message: "is required" })
  const prefix = query.get("prefix")
  if (prefix !== null && prefix !== "true" && prefix !== "false") return new InvalidQuery({ field: "prefix", message: "must be true or false" })
  const limit = numberParam(query, "limit")
  const offset = numberParam(query, "offset")
  const fuzzy = numberParam(query, "fuzzy")
  const fields = listParam(query, "fields")
  const filter = query.getAll("filter")
  return {
    q,
    ...(limit === undefined ? {} : { limit }),
    ...(offset === undefined ? {} : { offset }),
    ...(fuzzy === undefined ? {} : { fuzzy }),
    ...(prefix === null ? {} : { prefix: prefix === "true" }),
    ...(fields === undefined ? {} : { fields }),
    ...(filter.length === 0 ? {} : { filter })
  }
}

const index = (request: Request) => request.params.index!
const docId = (request: Request) => request.params.id!

/** The search routes. */
export const routes: ReadonlyArray<Route<Search>> = [
  {
    method: "PUT",
    path: "/v1/indexes/:index",
    handler: (request) =>
      Effect.flatMap(Search, (search) => search.define(index(request), request.body as IndexSchema.IndexSchemaInput)).pipe(
        Effect.map(({ created }) => json({ index: index(request), created }, created ? 201 : 200)),
        mapFailure
      )
  },
  {
    method: "GET",
    path: "/v1/indexes/:index",
    handler: (request) =>
      Effect.flatMap(Search, (search) => Effect.flatMap(search.open(index(request)), (remote) => remote.stats())).pipe(
        Effect.map(({ docs, terms }) => json({ docs, terms })),
        mapFailure
      )
  },
  {
    method: "PUT",
    path: "/v1/indexes/:index/docs/:id",
    handler: (request) =>
      Effect.gen(function*() {
        const search = yield* Search
        const remote = yield* search.openOrInfer(index(request), request.body)
        const outcome = yield* remote.put(docId(request), request.body as Record<string, never>)
        return json({ id: outcome.id })
      }).pipe(mapFailure)
  },
  {
    method: "GET",
    path: "/v1/indexes/:index/docs/:id",
    handler: (request) =>
      Effect.gen(function*() {
        const search = yield* Search
        const remote = yield* search.open(index(request))
        const document = yield* remote.get(docId(request))
        if (document === undefined) {
          return yield* Effect.fail(ApiError.make(404, "DocumentNotFound", `index ${index(request)} has no document ${docId(request)}`, "id"))
        }
        return json(document)
      }).pipe(Effect.mapError((error) => ("status" in error ? error : ApiError.fromFailure(error))))
  },
  {
    method: "DELETE",
    path: "/v1/indexes/:index/docs/:id",
    handler: (request) =>
      Effect.gen(function*() {
        const search = yield* Search
        const remote = yield* search.open(index(request)).pipe(Effect.catchTag("IndexNotFound", () => Effect.succeed(undefined)))
        // A document of an index that was never created was never there.
        const removed = remote === undefined ? false : yield* remote.remove(docId(request))
        return json({ removed })
      }).pipe(mapFailure)
  },
  {
    method: "GET",
    path: "/v1/indexes/:index/search",
    handler: (request) =>
      Effect.gen(function*() {
        const searchRequest_ = searchRequest(request.query)
        if (searchRequest_ instanceof InvalidQuery) return yield* Effect.fail(searchRequest_)
        const search = yield* Search
        const remote = yield* search.open(index(request))
        const result = yield* remote.search(searchRequest_)
        return json({ total: result.total, hits: result.hits })
      }).pipe(mapFailure)
  }
]
