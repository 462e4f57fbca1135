/**
 * Goal: overload gets a typed answer, not memory growth: past its bound of requests in flight the
 * server answers 429 `Overloaded` without reading the body, `/health` still answers, and request
 * bodies held at once stay within their shared budget (stalled uploads included).
 * Method: a server with small bounds and a route held open by a gate; raw sockets for bodies that
 * stall half-sent.
 */
import { Deferred, Effect, Exit, Scope } from "effect"
import { strict as assert } from "node:assert"
import * as Net from "node:net"
import { describe, it } from "vitest"
import * as HttpServer from "../../src/server/HttpServer.js"
import { call } from "./support.js"

const serve = async (gate: Deferred.Deferred<void>, options: Partial<HttpServer.ServerOptions>) => {
  const scope = Effect.runSync(Scope.make())
  const routes: ReadonlyArray<HttpServer.Route<never>> = [
    { method: "GET", path: "/health", public: true, handler: () => Effect.succeed(HttpServer.json({ status: "ok" })) },
    { method: "POST", path: "/held", handler: () => Effect.as(Deferred.await(gate), HttpServer.json({ held: true })) }
  ]
  const address = await Effect.runPromise(Scope.provide(scope)(HttpServer.make(routes, { host: "127.0.0.1", port: 0, ...options })))
  return { base: `http://127.0.0.1:${address.port}`, port: address.port, close: () => Effect.runPromise(Scope.close(scope, Exit.void)) }
}

/** Opens a socket and sends a POST whose body declares `declared` bytes but carries only `sent`. */
const stalledUpload = (port: number, declared: number, sent: number): Promise<Net.Socket> =>
  new Promise((resolve, reject) => {
    const socket = Net.connect(port, "127.0.0.1", () => {
      socket.write(`POST /held HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${declared}\r\n\r\n`)
      socket.write("x".repeat(sent), () => resolve(socket))
    })
    socket.on("error", reject)
  })

describe("HTTP admission", () => {
  it("answers 429 past the requests in flight, and /health meanwhile", async () => {
    const gate = Deferred.makeUnsafe<void>()
    const server = await serve(gate, { requestsInFlightMax: 2 })
    try {
      const held = [call(server.base, "POST", "/held", {}), call(server.base, "POST", "/held", {})]
      await new Promise((resolve) => setTimeout(resolve, 100))
      const refused = await call(server.base, "POST", "/held", {})
      assert.deepEqual([refused.status, refused.body.error.code], [429, "Overloaded"])
      assert.equal((await call(server.base, "GET", "/health")).status, 200, "/health is not counted")
      Deferred.doneUnsafe(gate, Exit.void)
      assert.deepEqual((await Promise.all(held)).map((answer) => answer.status), [200, 200])
      assert.equal((await call(server.base, "POST", "/held", {})).status, 200, "room again once they ended")
    } finally {
      await server.close()
    }
  })

  it("keeps the bodies held at once within their budget, stalled uploads included", async () => {
    const gate = Deferred.makeUnsafe<void>()
    Deferred.doneUnsafe(gate, Exit.void)
    const server = await serve(gate, { bodyBytesInFlightMax: 100_000 })
    const sockets: Array<Net.Socket> = []
    try {
      // Two uploads stall with 40 KB each held: 80 KB of the 100 KB budget.
      sockets.push(await stalledUpload(server.port, 200_000, 40_000), await stalledUpload(server.port, 200_000, 40_000))
      await new Promise((resolve) => setTimeout(resolve, 100))
      const refused = await call(server.base, "POST", "/held", JSON.stringify({ pad: "y".repeat(30_000) }))
      assert.deepEqual([refused.status, refused.body?.error?.code], [429, "Overloaded"])
      assert.equal((await call(server.base, "POST", "/held", JSON.stringify({ pad: "y".repeat(10_000) }))).status, 200, "a body that fits still goes")
      for (const socket of sockets.splice(0)) socket.destroy()
      await new Promise((resolve) => setTimeout(resolve, 100))
      assert.equal((await call(server.base, "POST", "/held", JSON.stringify({ pad: "y".repeat(30_000) }))).status, 200, "closed uploads gave their bytes back")
    } finally {
      for (const socket of sockets) socket.destroy()
      await server.close()
    }
  })
})
