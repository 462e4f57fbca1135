/**
 * Goal: durable work is usable as a person uses it: over HTTP (a durable send of any registered
 * entity type, duplicates, bad input with its field and status, dead letters listed, retried and
 * purged) and from the command line (`dead-letters list|retry|purge`, `ingest` feeding feeds until a
 * graceful SIGTERM, a bad parser refused with the flag named).
 * Method: the routes served in this process over a node on the memory store; the commands run
 * from the compiled `shardfeed` command line in real processes. Real Redis under random prefixes.
 */
import { Queue } from "bullmq"
import { Effect, Exit, Layer, Scope } from "effect"
import { execFile, spawn } from "node:child_process"
import * as Path from "node:path"
import { promisify } from "node:util"
import { strict as assert } from "node:assert"
import { describe, inject, it } from "vitest"
import type { EntityRuntime } from "../../actors/EntityRuntime.js"
import type { Messenger } from "../../actors/Messenger.js"
import * as MemoryStore from "../../persistence/MemoryStore.js"
import * as DurableRoutes from "../../src/server/DurableRoutes.js"
import * as EntityRoutes from "../../src/server/EntityRoutes.js"
import * as HttpServer from "../../src/server/HttpServer.js"
import { call } from "../server/support.js"
import { tempDir } from "../support/tempDir.js"
import { durableNode, Knobs, testPrefix } from "./support.js"

const url = inject("redisUrl")
const port = Number(new URL(url).port)
const cli = Path.resolve("dist/src/cli/main.js")
const run = promisify(execFile)

const serve = async (prefix: string, knobs: Knobs) => {
  const scope = Effect.runSync(Scope.make())
  const layer = durableNode({ url, prefix, stores: MemoryStore.layer, knobs, config: { attemptsMax: 2, backoffBaseMillis: 20, backoffMaxMillis: 50 } })
  const routes: ReadonlyArray<HttpServer.Route<any>> = [...DurableRoutes.routes, ...EntityRoutes.routes]
  const address = await Effect.runPromise(
    Effect.flatMap(Layer.build(layer), (context) =>
      HttpServer.make(routes as ReadonlyArray<HttpServer.Route<EntityRuntime | Messenger>>, { host: "127.0.0.1", port: 0 }).pipe(Effect.provideContext(context))).pipe(Scope.provide(scope))
  )
  return { base: `http://127.0.0.1:${address.port}`, close: () => Effect.runPromise(Scope.close(scope, Exit.void)) }
}

const waitFor = async (what: string, check: () => Promise<boolean>, timeoutMillis = 30_000) => {
  const deadline = Date.now() + timeoutMillis
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

describe("durable work over HTTP and the CLI", () => {
  it("sends durably over HTTP, reports bad input by field, and lists, retries and purges dead letters", async () => {
    const prefix = testPrefix("http")
    const knobs = new Knobs()
    knobs.refuse = (_, seq) => seq === 666
    const node = await serve(prefix, knobs)
    try {
      const note = (entity: string, seq: number, id?: string) =>
        call(node.base, "POST", `/v1/entities/ledger/${entity}/messages`, { message: { _tag: "Note", payload: { seq } }, ...(id === undefined ? {} : { id }) })
      const first = await note("h", 1, "n-1")
      assert.equal(first.status, 202, first.text)
      assert.equal(first.body.duplicate, false)
      const again = await note("h", 1, "n-1")
      assert.deepEqual([again.status, again.body], [202, { id: first.body.id, duplicate: true }])
      assert.equal((await note("h", 2)).status, 202)
      const notes = async () => (await call(node.base, "POST", "/v1/entities/ledger/h/ask", { message: { _tag: "Notes" } })).body?.reply
      await waitFor("both notes are handled", async () => (await notes())?.length === 2)
      assert.deepEqual(await notes(), [1, 2])

      const badPayload = await call(node.base, "POST", "/v1/entities/ledger/h/messages", { message: { _tag: "Note", payload: { seq: "x" } } })
      assert.deepEqual([badPayload.status, badPayload.body.error.code, badPayload.body.error.field], [400, "InvalidArgument", "message.payload.seq"])
      const badTag = await call(node.base, "POST", "/v1/entities/ledger/h/messages", { message: { _tag: "Nope" } })
      assert.deepEqual([badTag.status, badTag.body.error.field], [400, "message._tag"])
      const badId = await call(node.base, "POST", "/v1/entities/ledger/h/messages", { message: { _tag: "Note", payload: { seq: 3 } }, id: 5 })
      assert.deepEqual([badId.status, badId.body.error.field], [400, "id"])
      const unknown = await call(node.base, "POST", "/v1/entities/nope/h/messages", { message: { _tag: "Note" } })
      assert.deepEqual([unknown.status, unknown.body.error.code], [404, "UnknownEntityType"])

      assert.equal((await note("p", 666)).status, 202)
      await waitFor("the poison is dead-lettered", async () => (await call(node.base, "GET", "/v1/dead-letters?type=ledger")).body.items.length === 1)
      const listed = await call(node.base, "GET", "/v1/dead-letters?limit=10")
      const letter = listed.body.items[0]
      assert.deepEqual({ type: letter.type, entity: letter.entity, message: letter.message, attempts: letter.attempts }, {
        type: "ledger",
        entity: "p",
        message: { _tag: "Note", payload: { seq: 666 } },
        attempts: 2
      })
      assert.equal(listed.body.cursor, null)
      assert.equal((await call(node.base, "GET", "/v1/dead-letters?limit=0")).status, 400)
      const stats = await call(node.base, "GET", "/v1/durable")
      assert.equal(stats.body.deadLetters, 1)

      knobs.refuse = () => false
      const retried = await call(node.base, "POST", `/v1/dead-letters/${letter.id}/retry`)
      assert.equal(retried.status, 200, retried.text)
      await waitFor("the retried note is handled", async () => {
        const reply = (await call(node.base, "POST", "/v1/entities/ledger/p/ask", { message: { _tag: "Notes" } })).body?.reply
        return reply?.length === 1
      })
      assert.equal((await call(node.base, "POST", `/v1/dead-letters/${letter.id}/retry`)).status, 404, "a retried dead letter is gone")
      assert.deepEqual((await call(node.base, "DELETE", `/v1/dead-letters/${letter.id}`)).body, { deleted: false })
    } finally {
      await node.close()
    }
  })

  it("lists, retries and purges dead letters from the command line", async () => {
    // The prefix a worker cluster's durable messages live under, which --cluster names.
    const cluster = testPrefix("cli")
    const prefix = `shardfeed.${cluster}`
    const knobs = new Knobs()
    knobs.refuse = () => true
    const node = await serve(prefix, knobs)
    const entities = ["a", "b", "c", "d", "e"]
    try {
      for (const entity of entities) await call(node.base, "POST", `/v1/entities/ledger/${entity}/messages`, { message: { _tag: "Note", payload: { seq: 1 } } })
      await waitFor("all are dead-lettered", async () => (await call(node.base, "GET", "/v1/dead-letters")).body.items.length === entities.length)
    } finally {
      await node.close()
    }
    const common = ["--redis", url, "--cluster", cluster]
    const cliRun = (...args: Array<string>) => run(process.execPath, [cli, "dead-letters", ...args, ...common])
    const byPrefix = await run(process.execPath, [cli, "dead-letters", "list", "--redis", url, "--prefix", prefix, "--json"])
    assert.equal(byPrefix.stdout.trim().split("\n").length, entities.length, "--prefix finds them too")
    const listed = await cliRun("list", "--limit", "1")
    // Oldest first, by the time each was dead-lettered (retries with jitter: any of them first).
    assert.match(listed.stdout, /ledger\/[a-e] {2}Note {2}attempts=2/)
    assert.match(listed.stdout, /more: --cursor /)
    const letters = async () =>
      (await cliRun("list", "--json")).stdout.trim().split("\n").filter((line) => line.length > 0).map((line) => JSON.parse(line) as { id: string; entity: string })
    const all = await letters()
    assert.deepEqual(all.map((letter) => letter.entity).sort(), entities)
    const idOf = (entity: string) => all.find((letter) => letter.entity === entity)!.id
    // Retried: sent again (to the end of its entity's order) and gone from the list.
    assert.match((await cliRun("retry", "--id", idOf("a"))).stdout, /sent again as \S+/)
    assert.match((await cliRun("purge", "--id", idOf("b"))).stdout, new RegExp(`purged ${idOf("b")}`))
    assert.match((await cliRun("purge", "--id", "nope")).stdout, /no dead letter nope/)
    assert.deepEqual((await letters()).map((letter) => letter.entity).sort(), ["c", "d", "e"])
    const ambiguous = await cliRun("purge").then(() => undefined, (error: { readonly code?: number; readonly stderr?: string }) => error)
    assert.equal(ambiguous?.code, 1)
    assert.match(ambiguous?.stderr ?? "", /give exactly one of --id, --type and --all/)
    assert.match((await cliRun("purge", "--type", "other")).stdout, /purged 0 dead letters/)
    assert.match((await cliRun("purge", "--type", "ledger")).stdout, /purged 3 dead letters/)
    assert.match((await cliRun("list")).stdout, /no dead letters/)
    assert.match((await cliRun("purge", "--all")).stdout, /purged 0 dead letters/)
    // The retried message waits in the queue for a consumer, as any durable message.
    const queue = new Queue("shardfeed-durable", { connection: { host: "127.0.0.1", port }, prefix })
    try {
      assert.equal((await queue.getJobCounts("waiting")).waiting, 1)
    } finally {
      await queue.close()
    }
  })

  it("runs ingest from the command line until a graceful SIGTERM, and refuses a bad parser naming the flag", async () => {
    const prefix = testPrefix("cli-ingest")
    const data = tempDir("cli-ingest")
    const refused = await run(process.execPath, [cli, "ingest", "--redis", url, "--queue", "q", "--prefix", prefix, "--keyspace", "None", "--feed", "JobTimestamp", "--data", data]).then(
      () => undefined,
      (error: { readonly code?: number; readonly stderr?: string }) => error
    )
    assert.equal(refused?.code, 1)
    assert.match(refused?.stderr ?? "", /--feed: JobTimestamp cannot give the feed/)

    const producer = new Queue("q", { connection: { host: "127.0.0.1", port }, prefix })
    const child = spawn(process.execPath, [
      cli, "ingest", "--redis", url, "--queue", "q", "--prefix", prefix, "--keyspace", "Static(ks)", "--feed", "Data(feed)", "--nonce", "Data(n)",
      "--value", "Data(body)", "--data", data, "--http", "127.0.0.1:0", "--shards", "16", "--lease", "1000"
    ], { stdio: ["ignore", "pipe", "pipe"] })
    let output = ""
    child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()))
    child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()))
    try {
      await waitFor("ingest serves", async () => /API\s+http:\/\/127\.0\.0\.1:\d+\/v1/.test(output))
      assert.doesNotMatch(output, /password/)
      const base = /API\s+(http:\/\/127\.0\.0\.1:\d+)\/v1/.exec(output)![1]!
      await producer.addBulk(Array.from({ length: 30 }, (_, i) => ({ name: "e", data: { feed: "scores", n: i + 1, body: { point: i } } })))
      await waitFor("the jobs are appended", async () => (await call(base, "GET", "/v1/feeds/ks%2Fscores")).body?.count === 30)
      const page = await call(base, "GET", "/v1/feeds/ks%2Fscores/entries?limit=100")
      assert.deepEqual(page.body.items.map((item: { value: { point: number } }) => item.value.point), Array.from({ length: 30 }, (_, i) => i))
    } finally {
      child.kill("SIGTERM")
      const code = await new Promise((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once("exit", resolve)))
      assert.equal(code, 0, output)
      await producer.obliterate({ force: true })
      await producer.close()
    }
  })
})
