/**
 * Goal: dump and restore carry all data, refuse what they should, and work online and offline.
 * Method: a node with feeds and event-sourced state; dump it over HTTP while it runs, restore the
 * archive into a fresh node over HTTP and into a stopped node's directory through the CLI code
 * path (the Archive module on the LevelDB backend), then compare what each serves.
 */
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { strict as assert } from "node:assert"
import { describe, it } from "vitest"
import * as LevelStore from "../../persistence/LevelStore.js"
import { StoreBackend } from "../../persistence/StoreBackend.js"
import * as Archive from "../../src/node/Archive.js"
import { tempDir } from "../support/tempDir.js"
import { call, startNode } from "./support.js"

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

