/**
 * The worker's HTTP server on node:http: routing with path parameters, bearer or basic auth with
 * a constant-time compare, a body limit, JSON parsing, typed errors in the contract's shape, and
 * request metrics. Handlers are Effects run with the node's services.
 *
 * node:http rather than a framework: the contract fixes every status (405 with `Allow` on a known
 * path, 413 before a body is read whole, 401 with `WWW-Authenticate`), and the append path is the
 * hot one, so this module keeps both in plain sight.
 */
import { Cause, type Context, Effect, Exit, Metric, type Scope } from "effect"
import { createHash, timingSafeEqual } from "node:crypto"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import { utf8Length } from "../../persistence/internal/bytes.js"
import { metricsContext } from "../../actors/EntityMetrics.js"
import * as ApiError from "./ApiError.js"
import * as Json from "./Json.js"

/** A request as handlers see it. */
export interface Request {
  readonly method: string
  readonly params: Readonly<Record<string, string>>
  readonly query: URLSearchParams
  /** The parsed JSON body (undefined when the request has none). */
  readonly body: unknown
  readonly headers: Http.IncomingHttpHeaders
}

/** What a handler answers. */
export type Response =
  | { readonly _tag: "Json"; readonly status: number; readonly body: unknown }
  | { readonly _tag: "Text"; readonly status: number; readonly contentType: string; readonly body: string }
  | {
    readonly _tag: "Stream"
    readonly status: number
    readonly contentType: string
    /** Writes the body; the server ends the response when it completes. */
    readonly write: (response: Http.ServerResponse) => Promise<void>
  }

/** A JSON answer. */
export const json = (body: unknown, status = 200): Response => ({ _tag: "Json", status, body })

/** A route: a method, a path pattern with `:params`, and its handler. */
export interface Route<R> {
  readonly method: "GET" | "POST" | "PUT" | "DELETE"
  readonly path: string
  readonly handler: (request: Request) => Effect.Effect<Response, ApiError.ApiError, R>
  /** Routes open without a token (only `/health`). */
  readonly public?: boolean
  /** The handler reads the body itself (`request.body` is the request stream), e.g. an archive to restore. */
  readonly rawBody?: boolean
}

/** Options of the server. */
export interface ServerOptions {
  readonly host: string
  readonly port: number
  /** When set, every route but the public ones needs this token (bearer, or basic password). */
  readonly token?: string | undefined
  /** Largest JSON body, in bytes (default 1 MiB). */
  readonly bodyLimitBytes?: number | undefined
  /**
   * Requests handled at once (default 1,024); past it a request is answered 429 `Overloaded`
   * before its body is read. Public routes (`/health`) are not counted, so they answer under load.
   */
  readonly requestsInFlightMax?: number | undefined
  /**
   * Bytes of request bodies held at once, all requests together (default 256 MiB): a body that
   * would go past it is answered 429 `Overloaded`, so stalled uploads cannot fill the memory.
   */
  readonly bodyBytesInFlightMax?: number | undefined
}

const NAME_BYTES_MAX = 512

/** HTTP requests, by `route`, `method` and `status`. */
export const requests = Metric.counter("shardfeed_http_requests_total", { description: "HTTP requests by route, method and status" })
/** HTTP request latency in seconds, by `route`. */
export const requestSeconds = Metric.histogram("shardfeed_http_request_seconds", {
  description: "HTTP request latency",
  boundaries: Metric.exponentialBoundaries({ start: 0.0001, factor: 2, count: 16 })
})

interface Compiled<R> {
  readonly route: Route<R>
  readonly segments: ReadonlyArray<string>
}

const compile = <R>(routes: ReadonlyArray<Route<R>>): ReadonlyArray<Compiled<R>> =>
  routes.map((route) => ({ route, segments: route.path.split("/").slice(1) }))

/** Matches a path: the route for the method, or the methods the path allows. */
const match = <R>(compiled: ReadonlyArray<Compiled<R>>, method: string, segments: ReadonlyArray<string>) => {
  const allowed: Array<string> = []
  for (const candidate of compiled) {
    if (candidate.segments.length !== segments.length) continue
    let fits = true
    for (let i = 0; i < segments.length && fits; i++) {
      const pattern = candidate.segments[i]!
      // An empty name still matches its route, whose parameter check then refuses it, naming it (400).
      fits = pattern.startsWith(":") || pattern === segments[i]
    }
    if (!fits) continue
    if (candidate.route.method === method) return { found: candidate, allowed }
    allowed.push(candidate.route.method)
  }
  return { found: undefined, allowed }
}

/**
 * The path and query of a request target as sent. Not `new URL(...)`: it resolves dot segments,
 * `%2E` and `%2E%2E` included, so a feed or member named `.` or `..` (valid names, URL-encoded)
 * would address another path.
 */
export const requestTarget = (target: string): { readonly pathname: string; readonly searchParams: URLSearchParams } => {
  // An absolute-form target (`http://host/path`, as proxies send) keeps only its path.
  const origin = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i.exec(target)
  const rest = origin === null ? target : target.slice(origin[0].length)
  const hash = rest.indexOf("#")
  const withoutHash = hash < 0 ? rest : rest.slice(0, hash)
  const question = withoutHash.indexOf("?")
  const path = question < 0 ? withoutHash : withoutHash.slice(0, question)
  return {
    pathname: path.startsWith("/") ? path : `/${path}`,
    searchParams: new URLSearchParams(question < 0 ? "" : withoutHash.slice(question + 1))
  }
}

const params = (pattern: ReadonlyArray<string>, segments: ReadonlyArray<string>): Record<string, string> | ApiError.ApiError => {
  const out: Record<string, string> = Object.create(null)
  for (let i = 0; i < pattern.length; i++) {
    const name = pattern[i]!
    if (!name.startsWith(":")) continue
    let value: string
    try {
      value = decodeURIComponent(segments[i]!)
    } catch {
      return ApiError.make(400, "InvalidArgument", "is not valid URL-encoded UTF-8", name.slice(1))
    }
    if (value.length === 0 || utf8Length(value) > NAME_BYTES_MAX) {
      return ApiError.make(400, "InvalidArgument", `must be 1 to ${NAME_BYTES_MAX} bytes of UTF-8`, name.slice(1))
    }
    // U+0000 separates keys in the store: no name holds it (refused here so the error names the parameter).
    if (value.includes("\u0000")) return ApiError.make(400, "InvalidArgument", "must not contain U+0000", name.slice(1))
    out[name.slice(1)] = value
  }
  return out
}

const digest = (text: string) => createHash("sha256").update(text).digest()

/** Checks the request's credentials against the token in constant time. */
const authorized = (headers: Http.IncomingHttpHeaders, token: Buffer): boolean => {
  const header = headers.authorization
  if (typeof header !== "string") return false
  let presented: string | undefined
  // The scheme is case-insensitive (RFC 9110), the credentials are not.
  const scheme = header.slice(0, header.indexOf(" ") + 1).toLowerCase()
  if (scheme === "bearer ") presented = header.slice(7)
  else if (scheme === "basic ") {
    const decoded = Buffer.from(header.slice(6), "base64").toString("utf8")
    const colon = decoded.indexOf(":")
    presented = colon < 0 ? undefined : decoded.slice(colon + 1)
  }
  return presented !== undefined && timingSafeEqual(digest(presented), token)
}

const send = (response: Http.ServerResponse, status: number, contentType: string, body: string, extra: Http.OutgoingHttpHeaders = {}) => {
  response.writeHead(status, { "content-type": contentType, "content-length": Buffer.byteLength(body), ...extra })
  response.end(body)
}

const sendError = (response: Http.ServerResponse, error: ApiError.ApiError, extra: Http.OutgoingHttpHeaders = {}) =>
  send(response, error.status, "application/json", ApiError.body(error), extra)

const OVERLOADED_REQUESTS = ApiError.make(429, "Overloaded", "the worker is handling as many requests as it takes; retry later")
const OVERLOADED_BODIES = ApiError.make(429, "Overloaded", "the worker holds as many request bodies as it takes; retry later")

/** The bytes of request bodies held at once, against a budget shared by all requests. */
class BodyBudget {
  held = 0
  constructor(readonly max: number) {}
}

/**
 * Reads a body up to `limit` bytes: "too large" when it is larger (the caller answers 413),
 * "overloaded" when the bodies held at once would go past the budget (429), "aborted" when the
 * client went away first.
 */
const readBody = (request: Http.IncomingMessage, limit: number, budget: BodyBudget): Promise<Buffer | "too large" | "overloaded" | "aborted"> =>
  new Promise((resolve) => {
    const declared = Number(request.headers["content-length"] ?? "0")
    if (declared > limit) return resolve("too large")
    const chunks: Array<Buffer> = []
    let size = 0
    const stop = (outcome: "too large" | "overloaded") => {
      request.removeAllListeners("data")
      request.pause()
      resolve(outcome)
    }
    // What this body holds goes back to the budget however the request ends.
    const release = () => {
      budget.held -= size
      size = 0
    }
    request.once("close", release)
    request.on("data", (chunk: Buffer) => {
      if (size + chunk.length > limit) return stop("too large")
      if (budget.held + chunk.length > budget.max) return stop("overloaded")
      size += chunk.length
      budget.held += chunk.length
      chunks.push(chunk)
    })
    request.on("end", () => {
      const body = Buffer.concat(chunks)
      release()
      resolve(body)
    })
    // A client that went away is nobody to answer, not a failure of the server.
    request.on("error", () => resolve("aborted"))
  })

/** Starts the server for the scope; answers with the bound address. */
export const make = <R>(routes: ReadonlyArray<Route<R>>, options: ServerOptions): Effect.Effect<AddressInfo, Error, R | Scope.Scope> =>
  Effect.gen(function*() {
    const context = yield* Effect.context<R>()
    const compiled = compile(routes)
    const limit = options.bodyLimitBytes ?? 1024 * 1024
    const token = options.token === undefined ? undefined : digest(options.token)
    const run = Effect.runPromiseExitWith(context as Context.Context<R>)
    const budget = new BodyBudget(options.bodyBytesInFlightMax ?? 256 * 1024 * 1024)
    const requestsMax = options.requestsInFlightMax ?? 1_024
    let inFlight = 0
    const metricContext = metricsContext(context as Context.Context<never>)
    // Metric handles per route (latency) and per route, method and status (count), made once.
    const latencies = new Map<string, Metric.Metric<number, unknown>>()
    const counts = new Map<string, Metric.Metric<number, unknown>>()
    const record = (route: string, method: string, status: number, seconds: number) => {
      const countKey = `${route} ${method} ${status}`
      let count = counts.get(countKey)
      if (count === undefined) {
        count = Metric.withAttributes(requests, { route, method, status: String(status) })
        counts.set(countKey, count)
      }
      count.updateUnsafe(1, metricContext)
      let latency = latencies.get(route)
      if (latency === undefined) {
        latency = Metric.withAttributes(requestSeconds, { route })
        latencies.set(route, latency)
      }
      latency.updateUnsafe(seconds, metricContext)
    }

    const handle = async (incoming: Http.IncomingMessage, response: Http.ServerResponse): Promise<void> => {
      const started = performance.now()
      const method = incoming.method ?? "GET"
      const url = requestTarget(incoming.url ?? "/")
      const segments = url.pathname.split("/").slice(1)
      const { found, allowed } = match(compiled, method, segments)
      const label = found?.route.path ?? (allowed.length > 0 ? "method-not-allowed" : "unmatched")
      const finish = (status: number) => record(label, method, status, (performance.now() - started) / 1000)
      if (found === undefined) {
        // Unknown path first answers 401 when a token is required, so routes are not probed freely.
        if (token !== undefined && !authorized(incoming.headers, token)) {
          finish(401)
          return sendError(response, ApiError.make(401, "Unauthorized", "a valid token is required"), { "www-authenticate": "Basic realm=\"shardfeed\"" })
        }
        const error = allowed.length > 0
          ? ApiError.make(405, "MethodNotAllowed", `${method} is not allowed here; use ${allowed.join(", ")}`)
          : ApiError.make(404, "NotFound", `no route for ${url.pathname}`)
        finish(error.status)
        return sendError(response, error, allowed.length > 0 ? { allow: allowed.join(", ") } : {})
      }
      if (token !== undefined && found.route.public !== true && !authorized(incoming.headers, token)) {
        finish(401)
        return sendError(response, ApiError.make(401, "Unauthorized", "a valid token is required"), { "www-authenticate": "Basic realm=\"shardfeed\"" })
      }
      if (found.route.public !== true) {
        // Admission: past the bound a request costs nothing but its answer (its body is not read).
        if (inFlight >= requestsMax) {
          finish(429)
          return sendError(response, OVERLOADED_REQUESTS, { connection: "close" })
        }
        inFlight++
        response.once("close", () => void inFlight--)
      }
      const pathParams = params(found.segments, segments)
      if ("status" in pathParams && "code" in pathParams) {
        finish(pathParams.status as number)
        return sendError(response, pathParams as ApiError.ApiError)
      }
      let body: unknown = undefined
      if (found.route.rawBody === true) body = incoming
      else if (method === "POST" || method === "PUT") {
        const raw = await readBody(incoming, limit, budget)
        if (raw === "too large") {
          finish(413)
          return sendError(response, ApiError.make(413, "PayloadTooLarge", `the body is over the limit of ${limit} bytes`), { connection: "close" })
        }
        if (raw === "overloaded") {
          finish(429)
          return sendError(response, OVERLOADED_BODIES, { connection: "close" })
        }
        if (raw === "aborted") return finish(499)
        if (raw.length > 0) {
          const parsed = Json.parse(raw.toString("utf8"))
          if (parsed instanceof Json.MalformedJson) {
            finish(400)
            return sendError(response, ApiError.make(400, "MalformedJson", `the body is not JSON: ${parsed.message}`))
          }
          body = parsed
        }
      }
      const exit = await run(found.route.handler({ method, params: pathParams as Record<string, string>, query: url.searchParams, body, headers: incoming.headers }))
      if (Exit.isFailure(exit)) {
        const failure = Cause.findErrorOption(exit.cause)
        const error = failure._tag === "Some" ? failure.value : ApiError.make(500, "InternalError", "an unexpected error happened; it was logged")
        if (error.status >= 500) Effect.runFork(Effect.logError(`${method} ${url.pathname} failed`, Cause.pretty(exit.cause)))
        finish(error.status)
        return sendError(response, error)
      }
      const answer = exit.value
      finish(answer.status)
      if (answer._tag === "Json") return send(response, answer.status, "application/json", JSON.stringify(answer.body))
      if (answer._tag === "Text") return send(response, answer.status, answer.contentType, answer.body)
      response.writeHead(answer.status, { "content-type": answer.contentType })
      await answer.write(response)
      response.end()
    }

    const server = Http.createServer({ requestTimeout: 60_000, headersTimeout: 20_000, keepAliveTimeout: 10_000 }, (incoming, response) => {
      handle(incoming, response).catch((defect: unknown) => {
        Effect.runFork(Effect.logError("request handling failed", String(defect)))
        if (!response.headersSent) sendError(response, ApiError.make(500, "InternalError", "an unexpected error happened; it was logged"))
        else response.destroy()
      })
    })
    server.maxHeadersCount = 100
    const address = yield* Effect.acquireRelease(
      Effect.callback<AddressInfo, Error>((resume) => {
        server.once("error", (error) => resume(Effect.fail(error)))
        server.listen(options.port, options.host, () => resume(Effect.succeed(server.address() as AddressInfo)))
      }),
      () =>
        Effect.callback<void>((resume) => {
          server.close(() => resume(Effect.void))
          server.closeIdleConnections()
        })
    )
    return address
  })
