/**
 * Goal: durable messages follow their entities' shards when the owner dies. With three worker
 * processes over one Redis store, the owner of some of the receiving entities is killed with
 * SIGKILL while messages are being sent and handled: every acknowledged message is delivered
 * after the failover, each entity's messages in send order (a message handled as the owner died
 * may be delivered again; each is an append with its sequence number as nonce, so a repeat is a
 * reported duplicate, never a second entry, and a reordering would show as a gap).
 * Method: real `shardfeed worker` processes (durable work on the coordination Redis); the test
 * sends `Append` messages to 24 JSON feeds through `POST /v1/entities/feed/:id/messages` of a
 * worker it never kills, each feed's sends one after another, and reads the feeds back through
 * the same worker's HTTP API.
 */
import { strict as assert } from "node:assert"
import { describe, inject, it } from "vitest"
import { shardOf } from "../../actors/ShardId.js"
import { tempDir } from "../support/tempDir.js"
import { getJson, SHARDS, signal, spawnWorker, waitBalanced, waitFor, type WorkerProcess } from "./support.js"

const FEEDS = 24
const PER_FEED = 60

const post = async (base: string, path: string, body: unknown) => {
  const response = await fetch(`${base}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
  const text = await response.text()
  if (response.status !== 202) throw new Error(`${path}: ${response.status} ${text}`)
  return JSON.parse(text)
}

describe("durable messages across a failover", () => {
  it("delivers every acknowledged message after the owner is killed, each entity's in send order", async () => {
    const redisUrl = inject("redisUrl")
    const cluster = `durable-failover-${Math.random().toString(36).slice(2, 8)}`
    const logDirectory = tempDir("durable-failover")
    const workers: Array<WorkerProcess> = []
    try {
      for (const id of ["a", "b", "c"]) workers.push(await spawnWorker({ redisUrl, cluster, id, logDirectory }))
      const [front] = workers
      const map = await waitBalanced(front!.base, ["a", "b", "c"], 60_000)
      const { epochs } = await getJson(front!.base, "/v1/cluster")
      assert.ok(epochs.length === SHARDS && epochs.every((epoch: unknown) => typeof epoch === "number" && epoch >= 1), "the map carries each shard's epoch")
      const feeds = Array.from({ length: FEEDS }, (_, i) => `d${i}`)
      // The victim: the worker other than the front one that owns the most of these feeds.
      const ownerOf = (feed: string) => map[shardOf("feed", feed, SHARDS)]
      const victimId = ["b", "c"].sort((x, y) => feeds.filter((feed) => ownerOf(feed) === y).length - feeds.filter((feed) => ownerOf(feed) === x).length)[0]!
      const victim = workers.find((worker) => worker.id === victimId)!
      const victimFeeds = feeds.filter((feed) => ownerOf(feed) === victimId)
      assert.ok(victimFeeds.length > 0, "the victim owns some of the feeds")
      let sent = 0
      let killed = false
      const sender = async (feed: string) => {
        for (let seq = 1; seq <= PER_FEED; seq++) {
          await post(front!.base, `/v1/entities/feed/${feed}/messages`, { message: { _tag: "Append", payload: { items: [{ value: { seq }, nonce: seq }] } } })
          sent++
        }
      }
      const sending = Promise.all(feeds.map(sender))
      // Bounded: 30 s.
      await waitFor("a third of the messages sent", 30_000, async () => (sent >= (FEEDS * PER_FEED) / 3 ? true : undefined), 5)
      await signal(victim, "SIGKILL")
      killed = true
      await sending
      assert.ok(killed)
      // Delivery waits for the dead consumer's locks to expire (30 s by default) and its shards to move.
      const read = async (feed: string) =>
        (await getJson(front!.base, `/v1/feeds/${feed}/entries?limit=1000`).catch(() => ({ items: [] }))).items as ReadonlyArray<{ value: { seq: number } }>
      await waitFor("every message delivered", 90_000, async () => {
        for (const feed of feeds) if ((await read(feed)).length < PER_FEED) return undefined
        return true
      }, 250)
      for (const feed of feeds) {
        const seqs = (await read(feed)).map((entry) => entry.value.seq)
        assert.deepEqual(seqs, Array.from({ length: PER_FEED }, (_, i) => i + 1), `feed ${feed}${victimFeeds.includes(feed) ? " (its owner was killed)" : ""}: every message once, in send order`)
      }
    } finally {
      for (const worker of workers) if (worker.child.exitCode === null && worker.child.signalCode === null) await signal(worker, "SIGKILL")
    }
  }, 180_000)
})
