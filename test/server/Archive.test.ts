/**
 * Goal: dump and restore carry all data, refuse what they should, and work online and offline.
 * Method: a node with feeds and event-sourced state; dump it over HTTP while it runs, restore the
 * archive into a fresh node over HTTP and into a stopped node's directory through the CLI code
 * path (the Archive module on the LevelDB backend), then compare what each serves.
 */
import { Effect, Exit, Layer, Scope } from "effect"
import { execFile } from "node:child_process"
import { promisify } from "node:util"
import * as EntityRuntime from "../../actors/EntityRuntime.js"
import { WalletBehavior } from "../../examples/entities/Wallet.js"
import * as Node from "../../src/node/Node.js"
import * as HttpServer from "../../src/server/HttpServer.js"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { strict as assert } from "node:assert"
import { describe, it } from "vitest"
import * as LevelStore from "../../persistence/LevelStore.js"
import { StoreBackend } from "../../persistence/StoreBackend.js"
import * as Archive from "../../src/node/Archive.js"
import { tempDir } from "../support/tempDir.js"
import { call, startNode } from "./support.js"

const run = promisify(execFile)

const download = async (base: string, file: string) => {
  const response = await fetch(`${base}/v1/admin/dump`)
  assert.equal(response.status, 200)
  Fs.writeFileSync(file, Buffer.from(await response.arrayBuffer()))
}

const upload = (base: string, file: string, query = "") =>
  fetch(`${base}/v1/admin/restore${query}`, { method: "POST", body: Fs.readFileSync(file) }).then(async (response) => ({
    status: response.status,
    body: await response.json() as any
  }))

describe("dump and restore", () => {
  it("round-trips every feed through an archive, online and offline", async () => {
    const source = await startNode()
    const file = Path.join(tempDir("archive"), "all.gz")
    try {
      for (let i = 0; i < 20; i++) {
        await call(source.base, "POST", `/v1/feeds/f${i}/append`, { items: Array.from({ length: 30 }, (_, j) => ({ value: { i, j }, nonce: j + 1 })) })
      }
      await call(source.base, "DELETE", "/v1/feeds/f3/entries/5")
      await download(source.base, file)
    } finally {
      await source.close()
    }
    const online = await startNode()
    try {
      const restored = await upload(online.base, file)
      assert.equal(restored.status, 200)
      assert.ok(restored.body.records > 20)
      const meta = await call(online.base, "GET", "/v1/feeds/f3")
      assert.equal(meta.body.count, 29)
      assert.equal(meta.body.lastNonce, "30")
      const page = await call(online.base, "GET", "/v1/feeds/f7/entries?limit=3&offset=10")
      assert.deepEqual(page.body.items.map((item: { value: unknown }) => item.value), [{ i: 7, j: 9 }, { i: 7, j: 10 }, { i: 7, j: 11 }])
      const retry = await call(online.base, "POST", "/v1/feeds/f7/append", { items: [{ value: "again", nonce: 30 }] })
      assert.deepEqual(retry.body.results, [{ duplicate: true }], "nonces survive the archive")
      const twice = await upload(online.base, file)
      assert.equal(twice.status, 400, "a store with data is refused without merge")
      assert.equal(twice.body.error.code, "InvalidArchive")
      assert.equal((await upload(online.base, file, "?merge=true")).status, 200)
    } finally {
      await online.close()
    }
    // Offline: the archive module against a stopped node's directory, as `shardfeed restore --data` does.
    const directory = tempDir("archive-offline")
    const records = await Effect.runPromise(
      Effect.flatMap(StoreBackend, (backend) => Archive.restore(backend, Fs.createReadStream(file))).pipe(
        Effect.provide(LevelStore.layerBackend({ directory }))
      )
    )
    assert.ok(records > 20)
    const offline = await startNode({ data: directory })
    try {
      assert.equal((await call(offline.base, "GET", "/v1/feeds/f19")).body.count, 30)
    } finally {
      await offline.close()
    }
  })

  it("carries sorted sets, search indexes and event-sourced state, through the CLI's --node", async () => {
    // Nodes that also host the example Wallet (event-sourced: events plus snapshots).
    const walletNode = async () => {
      const scope = Effect.runSync(Scope.make())
      const options: Node.NodeOptions = { data: tempDir("archive-kinds"), host: "127.0.0.1", port: 0, runtime: { shardCount: 16, snapshotEvery: 5 } }
      const layer = EntityRuntime.register(WalletBehavior).pipe(Layer.provideMerge(Node.layer(options)))
      const context = await Effect.runPromise(Layer.buildWithScope(layer, scope))
      const address = await Effect.runPromise(HttpServer.make(Node.routes, { host: "127.0.0.1", port: 0 }).pipe(Effect.provideContext(context), Scope.provide(scope)))
      return { base: `http://127.0.0.1:${address.port}`, close: () => Effect.runPromise(Scope.close(scope, Exit.void)) }
    }
    const ask = (base: string, id: string, message: unknown) => call(base, "POST", `/v1/entities/wallet/${id}/ask`, { message })
    const observe = async (base: string) => ({
      zset: (await call(base, "GET", "/v1/zsets/board/range?min=0&max=-1")).body,
      rank: (await call(base, "GET", "/v1/zsets/board/rank/m7")).body,
      search: (await call(base, "GET", "/v1/indexes/books/search?q=whale")).body,
      document: (await call(base, "GET", "/v1/indexes/books/docs/b2")).body,
      wallets: await Promise.all(["w1", "w2"].map(async (id) => (await ask(base, id, { _tag: "Balance" })).body))
    })
    const cli = Path.resolve("dist/src/cli/main.js")
    const file = Path.join(tempDir("archive-kinds-file"), "all.gz")
    const source = await walletNode()
    let before: Awaited<ReturnType<typeof observe>>
    try {
      assert.equal((await call(source.base, "POST", "/v1/zsets/board/add", { members: Array.from({ length: 20 }, (_, i) => ({ member: `m${i}`, score: i % 7 })) })).status, 200)
      assert.equal((await call(source.base, "PUT", "/v1/indexes/books", { fields: { title: { type: "text" }, year: { type: "numeric" } }, partitions: 3 })).status, 201)
      const books = ["Moby Dick, or the whale", "The old man and the sea", "Whale songs", "Dune"]
      for (const [i, title] of books.entries()) {
        assert.equal((await call(source.base, "PUT", `/v1/indexes/books/docs/b${i}`, { title, year: 1850 + i })).status, 200)
      }
      for (let i = 1; i <= 12; i++) assert.equal((await ask(source.base, i % 2 === 0 ? "w1" : "w2", { _tag: "Deposit", payload: { amount: i } })).status, 200)
      before = await observe(source.base)
      assert.equal(before.zset.members.length, 20)
      assert.equal(before.search.total, 2)
      assert.deepEqual(before.wallets.map((wallet) => wallet.reply), [{ balance: 42, events: 6 }, { balance: 36, events: 6 }])
      const dumped = await run(process.execPath, [cli, "dump", "--node", source.base, "--out", file])
      assert.match(dumped.stdout, /archive written/)
    } finally {
      await source.close()
    }
    const target = await walletNode()
    try {
      // Resident before the restore, with other state: the restore restarts it.
      await ask(target.base, "w1", { _tag: "Deposit", payload: { amount: 1_000 } })
      const refused = await run(process.execPath, [cli, "restore", "--node", target.base, "--in", file]).then(() => undefined, (error: { code: number; stderr: string }) => error)
      assert.ok(refused !== undefined && refused.code === 1 && /not empty|holds data/.test(refused.stderr), refused?.stderr)
      const restored = await run(process.execPath, [cli, "restore", "--node", target.base, "--in", file, "--merge"])
      assert.match(restored.stdout, /restored/)
      const after = await observe(target.base)
      assert.deepEqual({ ...after, wallets: after.wallets.slice(1) }, { ...before!, wallets: before!.wallets.slice(1) })
      // w1 merged: the archive's events and snapshot replaced the key the target had written.
      assert.deepEqual(after.wallets[0].reply, before!.wallets[0].reply)
    } finally {
      await target.close()
    }
  }, 60_000)

  it("refuses a file that is not an archive and a truncated one", async () => {
    const directory = tempDir("archive-bad")
    const garbage = Path.join(directory, "garbage.gz")
    Fs.writeFileSync(garbage, "not gzip at all")
    const node = await startNode()
    try {
      const file = Path.join(directory, "good.gz")
      await call(node.base, "POST", "/v1/feeds/x/append", { items: [{ value: 1 }] })
      await download(node.base, file)
      const whole = Fs.readFileSync(file)
      const truncated = Path.join(directory, "truncated.gz")
      const Zlib = await import("node:zlib")
      const lines = Zlib.gunzipSync(whole).toString("utf8").split("\n")
      Fs.writeFileSync(truncated, Zlib.gzipSync(lines.slice(0, -2).join("\n") + "\n"))
      const target = await startNode()
      try {
        assert.equal((await upload(target.base, garbage)).status, 400)
        const cut = await upload(target.base, truncated)
        assert.equal(cut.status, 400)
        assert.match(cut.body.error.message, /truncated/)
      } finally {
        await target.close()
      }
    } finally {
      await node.close()
    }
  })
})

