/**
 * Goal: the dashboard works in a real browser with no network beyond the worker: it shows the
 * workers, the shard map and the entity rates, live, behind basic auth when a token is set.
 * Method: headless Debian Chromium driven by playwright-core against a test node; every request
 * the page makes is checked to stay on the worker's origin.
 */
import * as Fs from "node:fs"
import { strict as assert } from "node:assert"
import { chromium } from "playwright-core"
import { afterAll, beforeAll, describe, inject, it } from "vitest"
import { signal, spawnWorker, waitBalanced } from "../sharding/support.js"
import { tempDir } from "../support/tempDir.js"
import { call, startNode, type TestNode } from "./support.js"

const CHROMIUM = "/usr/bin/chromium"
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]

describe("dashboard", () => {
  let node: TestNode
  beforeAll(async () => {
    node = await startNode({ token: "dash" })
  })
  afterAll(async () => {
    await node.close()
  })

  it("shows workers, shards and live entity rates, loading nothing from elsewhere", async () => {
    assert.ok(Fs.existsSync(CHROMIUM), "Debian's chromium package is installed (.ci/run installs it)")
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS })
    try {
      const context = await browser.newContext({ httpCredentials: { username: "ops", password: "dash" } })
      const page = await context.newPage()
      const origins = new Set<string>()
      page.on("request", (request) => origins.add(new URL(request.url()).origin))
      const response = await page.goto(`${node.base}/dashboard`)
      assert.equal(response?.status(), 200)
      // Conditions are strings: they run in the page, where `document` lives.
      await page.waitForFunction("document.getElementById('worker-count')?.textContent === '1'")
      assert.equal(await page.locator("#workers tbody tr.worker").count(), 1)
      await page.waitForFunction("document.querySelectorAll('#shards div.shard').length === 16")
      assert.equal(await page.locator("#shard-count").textContent(), "16")
      assert.equal(await page.locator("#unowned-count").textContent(), "0")
      const auth = { authorization: "Bearer dash" }
      // Writes to feeds and sorted sets while the page polls: each type's row shows its own rates.
      let writing = true
      const load = (async () => {
        for (let i = 0; writing && i < 2_000; i++) {
          await call(node.base, "POST", `/v1/feeds/d${i % 20}/append`, { items: [{ value: i }] }, auth)
          await call(node.base, "POST", `/v1/zsets/z${i % 5}/add`, { members: [{ member: `m${i}`, score: i }] }, auth)
        }
      })()
      try {
        const writesOf = (type: string) =>
          `Number(document.querySelector('#rates tr.entity-type[data-type="${type}"]')?.children[3]?.textContent ?? 0) > 0`
        await page.waitForFunction(`${writesOf("feed")} && ${writesOf("zset")}`, undefined, { timeout: 15_000 })
      } finally {
        writing = false
        // A failed request of the load must not hide the assertion that failed first.
        await load.catch(() => undefined)
      }
      const stats = (await call(node.base, "GET", "/v1/stats", undefined, auth)).body
      assert.ok(stats.entities.feed.writes > 0 && stats.entities.zset.writes > 0, JSON.stringify(stats.entities))
      assert.equal(stats.entities.feed.errors, 0)
      assert.deepEqual([...origins], [node.base], "the page requested nothing beyond the worker")
    } finally {
      await browser.close()
    }
  }, 60_000)

  it("changes when a worker joins a cluster", async () => {
    const redisUrl = inject("redisUrl")
    const cluster = `dash-${Math.random().toString(36).slice(2, 8)}`
    const logDirectory = tempDir("dash-holdings")
    const workers = await Promise.all(["d1", "d2"].map((id) => spawnWorker({ redisUrl, cluster, id, logDirectory })))
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS })
    try {
      await waitBalanced(workers[0]!.base, ["d1", "d2"], 30_000)
      const page = await browser.newPage()
      const origins = new Set<string>()
      page.on("request", (request) => origins.add(new URL(request.url()).origin))
      await page.goto(`${workers[0]!.base}/dashboard`)
      await page.waitForFunction("document.getElementById('worker-count')?.textContent === '2'")
      assert.equal(await page.locator("#shard-count").textContent(), "1024")
      const owned = (id: string) => page.locator(`#shards div.shard[data-owner="${id}"]`).count()
      assert.ok((await owned("d1")) > 400 && (await owned("d2")) > 400, "the map is split between the two workers")
      workers.push(await spawnWorker({ redisUrl, cluster, id: "d3", logDirectory }))
      await page.waitForFunction("document.getElementById('worker-count')?.textContent === '3'", undefined, { timeout: 20_000 })
      await page.waitForFunction("document.querySelectorAll('#shards div.shard[data-owner=\"d3\"]').length > 300", undefined, { timeout: 20_000 })
      assert.equal(await page.locator("#workers tbody tr.worker").count(), 3)
      // Workers have durable work: its queue depths show.
      await page.waitForFunction("document.getElementById('durable').hidden === false")
      // The worker's metrics tell the same story: the shards it owns, its rebalances, its leases.
      await waitBalanced(workers[0]!.base, ["d1", "d2", "d3"], 30_000)
      const map = (await call(workers[0]!.base, "GET", "/v1/cluster")).body
      const metrics = (await call(workers[0]!.base, "GET", "/metrics")).text
      const value = (pattern: RegExp) => [...metrics.matchAll(pattern)].reduce((sum, match) => sum + Number(match[1]), 0)
      const d1 = map.workers.find((worker: { id: string }) => worker.id === "d1")
      assert.equal(value(/^shardfeed_shards_owned(?:\{[^}]*\})? (\d+)$/gm), d1.shards, "shards owned, as the cluster map says")
      assert.ok(value(/^shardfeed_rebalances_total(?:\{[^}]*\})? (\d+)$/gm) >= 2, "rebalanced when it joined and when d3 joined")
      assert.ok(value(/^shardfeed_shard_moves_total\{[^}]*action="released"[^}]*\} (\d+)$/gm) > 0, "it released shards to d3")
      assert.ok(value(/^shardfeed_lease_renewals_total\{[^}]*outcome="ok"[^}]*\} (\d+)$/gm) > 0, "its leases are renewed")
      assert.match(metrics, /^shardfeed_entity_mailbox_depth(?:\{[^}]*\})? \d+$/m)
      assert.deepEqual([...origins], [workers[0]!.base], "the page requested nothing beyond the worker")
    } finally {
      await browser.close()
      await Promise.all(workers.map((worker) => signal(worker, "SIGKILL")))
    }
  }, 90_000)
})
