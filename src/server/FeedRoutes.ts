/**
 * The feed routes of HTTP API v1 over the built-in JSON feed type: append, entries (paging and
 * by offset), removal, metadata, deletion and listing. Request shapes are checked here so that
 * errors name the exact field (`items[3].nonce`); semantics are the feed entity's own.
 */
import { Effect } from "effect"
import type { Messenger } from "../../actors/Messenger.js"
import type { KeyValueStore } from "../../persistence/KeyValueStore.js"
import * as Feed from "../feed/Feed.js"
import * as ApiError from "./ApiError.js"
import { json, type Request, type Route } from "./HttpServer.js"
import { isObject } from "./Json.js"

const invalid = (field: string, message: string) => ApiError.make(400, "InvalidArgument", message, field)

/** The items of an append body, or the first bad field. */
const appendItems = (body: unknown): ReadonlyArray<Feed.AppendItem<unknown>> | ApiError.ApiError => {
  if (!isObject(body)) return invalid("body", "must be a JSON object with an items array")
  const items = body.items
  if (!Array.isArray(items)) return invalid("items", "must be an array of 1 to 1000 items")
  const out: Array<Feed.AppendItem<unknown>> = []
  for (let i = 0; i < items.length; i++) {
    const item: unknown = items[i]
    if (!isObject(item)) return invalid(`items[${i}]`, "must be an object with a value")
    if (!Object.prototype.hasOwnProperty.call(item, "value")) return invalid(`items[${i}].value`, "is required")
    const nonce = item.nonce
    if (nonce !== undefined && nonce !== null && typeof nonce !== "number" && typeof nonce !== "string") {
      return invalid(`items[${i}].nonce`, "must be a non-negative integer (number or decimal string)")
    }
    const timestamp = item.timestamp
    if (timestamp !== undefined && timestamp !== null && typeof timestamp !== "number") {
      return invalid(`items[${i}].timestamp`, "must be a number of milliseconds since the epoch")
    }
    out.push({
      value: item.value,
      ...(nonce === undefined || nonce === null ? {} : { nonce: nonce as number | string }),
      ...(timestamp === undefined || timestamp === null ? {} : { timestamp: timestamp as number })
    })
  }
  return out
}

/** A numeric query parameter, or the bad field. */
const numberParam = (query: URLSearchParams, name: string, integer: boolean): number | undefined | ApiError.ApiError => {
  const text = query.get(name)
  if (text === null) return undefined
  const value = text.trim() === "" ? Number.NaN : Number(text)
  if (!Number.isFinite(value) || (integer && !Number.isSafeInteger(value))) {
    return invalid(name, integer ? "must be an integer" : "must be a finite number")
  }
  return value
}

const pageOptions = (request: Request): Feed.PageOptions | ApiError.ApiError => {
  const query = request.query
  const order = query.get("order") ?? undefined
  if (order !== undefined && order !== "forward" && order !== "backward") return invalid("order", "must be forward or backward")
  const limit = numberParam(query, "limit", true)
  const offset = numberParam(query, "offset", true)
  const timestamp = numberParam(query, "timestamp", false)
  for (const candidate of [limit, offset, timestamp]) if (typeof candidate === "object") return candidate
  return {
    order,
    limit: limit as number | undefined,
    offset: offset as number | undefined,
    timestamp: timestamp as number | undefined,
    nonce: query.get("nonce") ?? undefined,
    cursor: query.get("cursor") ?? undefined
  }
}

const offsetParam = (request: Request): number | ApiError.ApiError => {
  const text = request.params.offset!
  const offset = /^[0-9]{1,16}$/.test(text) ? Number(text) : Number.NaN
  return Number.isSafeInteger(offset) && offset >= 1 ? offset : invalid("offset", "must be an integer from 1")
}

const failWith = (error: ApiError.ApiError) => Effect.fail(error)
const mapFailure = Effect.mapError((error: unknown) => ApiError.fromFailure(error))

/** The feed routes. */
export const routes = (type: Feed.FeedType<any, any> = Feed.Json): ReadonlyArray<Route<Messenger | KeyValueStore>> => {
  const client = Feed.client(type)
  return [
    {
      method: "POST",
      path: "/v1/feeds/:feed/append",
      handler: (request) => {
        const items = appendItems(request.body)
        if ("status" in items) return failWith(items)
        return Effect.flatMap(client, (feeds) => feeds.append(request.params.feed!, items)).pipe(
          Effect.map((results) => json({ results })),
          mapFailure
        )
      }
    },
    {
      method: "GET",
      path: "/v1/feeds/:feed/entries",
      handler: (request) => {
        const options = pageOptions(request)
        if ("status" in options) return failWith(options)
        return Effect.flatMap(client, (feeds) => feeds.page(request.params.feed!, options)).pipe(Effect.map(json), mapFailure)
      }
    },
    {
      method: "GET",
      path: "/v1/feeds/:feed/entries/:offset",
      handler: (request) => {
        const offset = offsetParam(request)
        if (typeof offset !== "number") return failWith(offset)
        return Effect.flatMap(client, (feeds) => feeds.get(request.params.feed!, offset)).pipe(Effect.map(json), mapFailure)
      }
    },
    {
      method: "DELETE",
      path: "/v1/feeds/:feed/entries/:offset",
      handler: (request) => {
        const offset = offsetParam(request)
        if (typeof offset !== "number") return failWith(offset)
        return Effect.flatMap(client, (feeds) => feeds.remove(request.params.feed!, offset)).pipe(
          Effect.map((removed) => json({ removed })),
          mapFailure
        )
      }
    },
    {
      method: "GET",
      path: "/v1/feeds/:feed",
      handler: (request) => Effect.flatMap(client, (feeds) => feeds.metadata(request.params.feed!)).pipe(Effect.map(json), mapFailure)
    },
    {
      method: "DELETE",
      path: "/v1/feeds/:feed",
      handler: (request) =>
        Effect.flatMap(client, (feeds) => feeds.delete(request.params.feed!)).pipe(Effect.map((deleted) => json({ deleted })), mapFailure)
    },
    {
      method: "GET",
      path: "/v1/feeds",
      handler: (request) => {
        const limit = numberParam(request.query, "limit", true)
        if (typeof limit === "object") return failWith(limit)
        return Feed.list(type, {
          prefix: request.query.get("prefix") ?? undefined,
          limit,
          cursor: request.query.get("cursor") ?? undefined
        }).pipe(Effect.map(json), mapFailure)
      }
    }
  ]
}
