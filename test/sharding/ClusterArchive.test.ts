/**
 * Goal: on a cluster sharing a Redis store (no snapshots there), a dump is one point in time
 * although appends keep arriving, and a restore reaches the entities resident on every worker.
 * Method: two `shardfeed worker` processes on the test Redis; four writers append to eight feeds
 * through both workers, one item and one nonce per call, while worker 1 dumps the store over
 * HTTP (every worker holds its commits meanwhile). The archive goes into a fresh node, where
 * each feed must be whole: its metadata (count, last offset, last nonce) agrees with the
 * entries the archive holds, offsets 1..count, nonces 1..count. A torn read (metadata from one
 * moment, records from another) fails that. Then four feeds are deleted, two on each worker
 * (their entities stay resident with the deletion), the archive is restored through
 * worker 2 with merge, and both workers serve the archived feeds: every worker dropped its state.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { strict as assert } from "node:assert"
import { describe, inject, it } from "vitest"
import { shardOf } from "../../actors/ShardId.js"
import { call, startNode } from "../server/support.js"
import { tempDir } from "../support/tempDir.js"
import { owners, SHARDS, signal, spawnWorker, waitBalanced } from "./support.js"

/** Eight feeds, four owned by each worker now (so the deleted ones sit on both). */
const feedsOnBoth = async (base: string): Promise<Array<string>> => {
  const map = await owners(base)
  const picked: Record<string, Array<string>> = { a1: [], a2: [] }
  for (let i = 0; i < 1_000 && (picked.a1!.length < 4 || picked.a2!.length < 4); i++) {
    const feed = `archived-${Math.random().toString(36).slice(2, 8)}-${i}`
    const owner = map[shardOf("feed", feed, SHARDS)]
    if (owner !== null && owner !== undefined && picked[owner] !== undefined && picked[owner]!.length < 4) picked[owner]!.push(feed)
  }
  assert.ok(picked.a1!.length === 4 && picked.a2!.length === 4, JSON.stringify(picked))
  // Deleted below: the first four, two of each worker's.
  return [picked.a1![0]!, picked.a2![0]!, picked.a1![1]!, picked.a2![1]!, ...picked.a1!.slice(2), ...picked.a2!.slice(2)]
}

/** Reads one feed in full from `base` and checks it is whole; answers its count. */
const wholeFeed = async (base: string, feed: string): Promise<number> => {
  const metadata = await call(base, "GET", `/v1/feeds/${feed}`)
  assert.equal(metadata.status, 200, `${feed}: ${metadata.text}`)
  const items: Array<{ offset: number; nonce?: string }> = []
  let cursor: string | null = null
  // Bounded: each page advances, and feeds here hold a few thousand entries.
  for (let page = 0; page < 100; page++) {
    const answer = await call(base, "GET", `/v1/feeds/${feed}/entries?limit=1000${cursor === null ? "" : `&cursor=${encodeURIComponent(cursor)}`}`)
    items.push(...answer.body.items)
    cursor = answer.body.cursor
    if (cursor === null || answer.body.items.length === 0) break
  }
  const { count, lastOffset, lastNonce } = metadata.body
  assert.equal(items.length, count, `${feed}: metadata count ${count}, ${items.length} entries`)
  assert.deepEqual(items.map((item) => item.offset), Array.from({ length: count }, (_, i) => i + 1), `${feed}: offsets`)
  assert.deepEqual(items.map((item) => Number(item.nonce)), Array.from({ length: count }, (_, i) => i + 1), `${feed}: nonces`)
  if (count > 0) {
    assert.equal(lastOffset, count, `${feed}: last offset`)
    assert.equal(Number(lastNonce), count, `${feed}: last nonce`)
  }
  return count
}

describe("dump and restore on a cluster with a shared Redis store", () => {
  it("dumps one point in time while appends arrive, and a restore reaches every worker's entities", async () => {
    const redisUrl = inject("redisUrl")
    const cluster = `archive-${Math.random().toString(36).slice(2, 8)}`
    const logDirectory = tempDir("cluster-archive")
    const workers = await Promise.all(["a1", "a2"].map((id) => spawnWorker({ redisUrl, cluster, id, logDirectory })))
    const file = Path.join(tempDir("cluster-archive-file"), "cluster.gz")
    try {
      await waitBalanced(workers[0]!.base, ["a1", "a2"], 30_000)
      const FEEDS = await feedsOnBoth(workers[0]!.base)
      // Writers: one item per call, nonce = the feed's next entry, retried until acknowledged
      // (a call held past its deadline by the pause may time out; its nonce makes the retry safe).
      const acked = new Map(FEEDS.map((feed) => [feed, 0]))
      let writing = true
      let calls = 0
      const writer = async (lane: number) => {
        for (let step = 0; writing && step < 100_000; step++) {
          const feed = FEEDS[(lane + step * 4) % FEEDS.length]!
          const nonce = acked.get(feed)! + 1
          const base = workers[(lane + step) % 2]!.base
          const answer = await call(base, "POST", `/v1/feeds/${feed}/append`, { items: [{ value: { lane, step }, nonce }] })
          calls++
          if (answer.status === 200) acked.set(feed, nonce)
        }
      }
      // Two writers per pair of feeds would race on nonces; each feed has one writer lane.
      const lanes = [0, 1, 2, 3].map((lane) => writer(lane))
      await new Promise((resolve) => setTimeout(resolve, 1_500))
      const before = calls
      const response = await fetch(`${workers[0]!.base}/v1/admin/dump`)
      assert.equal(response.status, 200)
      Fs.writeFileSync(file, Buffer.from(await response.arrayBuffer()))
      await new Promise((resolve) => setTimeout(resolve, 500))
      writing = false
      await Promise.all(lanes)
      assert.ok(before > 20, `appends ran before the dump (${before})`)

      // The archive, restored into a fresh node with the same shard count: every feed whole.
      const copy = await startNode({ runtime: { shardCount: SHARDS } })
      const counts = new Map<string, number>()
      try {
        const restored = await fetch(`${copy.base}/v1/admin/restore`, { method: "POST", body: Fs.readFileSync(file) })
        assert.equal(restored.status, 200, await restored.text())
        for (const feed of FEEDS) counts.set(feed, await wholeFeed(copy.base, feed))
      } finally {
        await copy.close()
      }
      for (const feed of FEEDS) assert.ok(counts.get(feed)! >= 1 && counts.get(feed)! <= acked.get(feed)!, `${feed}: ${counts.get(feed)} of ${acked.get(feed)}`)

      // Delete half the feeds through both workers (their entities stay resident), then restore.
      for (const [i, feed] of FEEDS.slice(0, 4).entries()) {
        assert.deepEqual((await call(workers[i % 2]!.base, "DELETE", `/v1/feeds/${feed}`)).body, { deleted: true })
        assert.equal((await call(workers[(i + 1) % 2]!.base, "GET", `/v1/feeds/${feed}`)).status, 404)
      }
      const restored = await fetch(`${workers[1]!.base}/v1/admin/restore?merge=true`, { method: "POST", body: Fs.readFileSync(file) })
      assert.equal(restored.status, 200, await restored.text())
      for (const feed of FEEDS.slice(0, 4)) {
        for (const worker of workers) assert.equal(await wholeFeed(worker.base, feed), counts.get(feed), `${feed} through ${worker.id}`)
      }
      // Writes run again after the pause.
      const after = await call(workers[0]!.base, "POST", `/v1/feeds/${FEEDS[0]}/append`, { items: [{ value: "after" }] })
      assert.equal(after.status, 200, after.text)
    } finally {
      await Promise.all(workers.map((worker) => signal(worker, "SIGKILL")))
    }
  }, 120_000)
})
