/**
 * A node for HTTP tests: served in this process on a free loopback port over a temp LevelDB
 * directory, stopped with `close`; plus small request helpers (`call` over fetch, `callVerbatim`).
 */
import { Effect, Exit, Scope } from "effect"
import * as Http from "node:http"
import * as Node from "../../src/node/Node.js"
import { tempDir } from "../support/tempDir.js"

/** A running node. */
export interface TestNode {
  readonly base: string
  readonly data: string
  readonly close: () => Promise<void>
}

/** Starts a node (options override the defaults of a test node). */
export const startNode = async (options: Partial<Node.NodeOptions> = {}): Promise<TestNode> => {
  const scope = Effect.runSync(Scope.make())
  const data = options.data ?? tempDir("http-node")
  const address = await Effect.runPromise(
    Node.serve({ data, host: "127.0.0.1", port: 0, runtime: { shardCount: 16 }, ...options }).pipe(Scope.provide(scope))
  )
  return {
    base: `http://127.0.0.1:${address.port}`,
    data,
    close: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

/** An HTTP answer: status, headers and the body parsed as JSON when it is JSON. */
export interface Answer {
  readonly status: number
  readonly headers: Headers
  readonly body: any
  readonly text: string
}

/** Sends a request; a body that is not a string is sent as JSON. */
export const call = async (base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> => {
  const response = await fetch(base + path, {
    method,
    headers: { "content-type": "application/json", ...headers },
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) })
  })
  const text = await response.text()
  let parsed: unknown = undefined
  try {
    parsed = JSON.parse(text)
  } catch {
    parsed = undefined
  }
  return { status: response.status, headers: response.headers, body: parsed, text }
}

/**
 * Sends a request with its path exactly as given: fetch resolves `%2E` and `%2E%2E` segments as
 * dots on the client side, so names `.` and `..` can only be tested this way.
 */
export const callVerbatim = (base: string, method: string, path: string, body?: unknown): Promise<{ readonly status: number; readonly body: any }> =>
  new Promise((resolve, reject) => {
    const url = new URL(base)
    const request = Http.request({ host: url.hostname, port: url.port, method, path, headers: { "content-type": "application/json" } }, (response) => {
      const chunks: Array<Buffer> = []
      response.on("data", (chunk: Buffer) => chunks.push(chunk))
      response.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8")
        let parsed: unknown = undefined
        try {
          parsed = JSON.parse(text)
        } catch {
          parsed = undefined
        }
        resolve({ status: response.statusCode ?? 0, body: parsed })
      })
      response.on("error", reject)
    })
    request.on("error", reject)
    request.end(body === undefined ? undefined : JSON.stringify(body))
  })
