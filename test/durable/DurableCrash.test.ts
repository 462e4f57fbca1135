/**
 * Goal: durable messages and the ingest bridge lose nothing and keep order when their processes
 * are killed. (1) While a sender process sends notes to 40 ledgers, the owner process (the only
 * worker, on LevelDB: a restart is the failover of a one-worker cluster) and the sender are
 * killed with SIGKILL at random points and restarted: every acknowledged note is handled, each
 * ledger's notes in send order (a crash may repeat the note being handled, never reorder).
 * (2) While jobs are added to a producer queue, the ingest process is killed with SIGKILL at
 * random points and restarted: every job's entry is in its feed exactly once, in queue order,
 * which needs the takeover to re-queue the killed holder's unfinished jobs oldest first.
 * Method: the compiled fixture `test/fixtures/durableChild.js` in real processes, the test run's
 * private Redis under a random prefix, results read back from the LevelDB directories once the
 * processes are gone. The seed is printed; kill times still depend on the scheduler, which is
 * why the invariants must hold for any timing.
 *
 * Both run on the private standalone Redis and again on the 3-master Redis Cluster of the test
 * setup (BullMQ on a cluster connection, prefixes hash-tagged).
 *
 * With several owners over a shared Redis store, messages following their shards to the
 * survivors of a SIGKILL: `test/sharding/DurableFailover.test.ts`.
 */
import { type ConnectionOptions, Queue } from "bullmq"
import { Cluster } from "ioredis"
import { type ChildProcess, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { Effect, Layer, ManagedRuntime } from "effect"
import { strict as assert } from "node:assert"
import { describe, inject, it } from "vitest"
import * as EntityClient from "../../actors/EntityClient.js"
import * as EntityRuntime from "../../actors/EntityRuntime.js"
import { defaults, RuntimeConfig } from "../../actors/RuntimeConfig.js"
import * as LevelStore from "../../persistence/LevelStore.js"
import * as MemoryStore from "../../persistence/MemoryStore.js"
import * as DurableMessages from "../../src/durable/DurableMessages.js"
import * as Feed from "../../src/feed/Feed.js"
import { tempDir } from "../support/tempDir.js"
import { durableNode, Ledger, testPrefix } from "./support.js"
import { random as generator } from "../support/random.js"

/** Where a run's Redis is: its URL for the processes, and the connection and prefix form BullMQ needs there. */
interface Target {
  readonly url: string
  /** A BullMQ connection for the test's own queue handles, and how to close it afterwards. */
  readonly connection: () => { readonly options: ConnectionOptions; readonly close: () => Promise<unknown> }
  /** The prefix as BullMQ sees it (the durable modules hash-tag an untagged prefix on a cluster). */
  readonly slotted: (prefix: string) => string
}

const standalone = (): Target => {
  const url = inject("redisUrl")
  return {
    url,
    connection: () => ({ options: { host: "127.0.0.1", port: Number(new URL(url).port) }, close: async () => undefined }),
    slotted: (prefix) => prefix
  }
}

const redisCluster = (): Target => {
  const ports = inject("redisClusterPorts")
  return {
    url: ports.map((port) => `redis://127.0.0.1:${port}`).join(","),
    connection: () => {
      const cluster = new Cluster(ports.map((port) => ({ host: "127.0.0.1", port })), { scaleReads: "master" })
      return { options: cluster as unknown as ConnectionOptions, close: () => cluster.quit() }
    },
    slotted: (prefix) => `{${prefix}}`
  }
}
const fixture = Path.resolve("dist/test/fixtures/durableChild.js")
const seed = Number(process.env.DURABLE_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31))


interface Child {
  readonly process: ChildProcess
  readonly exited: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
  readonly stderr: () => string
}

/** Starts the fixture in `role` and resolves once it printed `ready`. */
const start = (args: ReadonlyArray<string>): Promise<Child> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fixture, ...args], { stdio: ["ignore", "pipe", "pipe"] })
    let errors = ""
    child.stderr!.on("data", (chunk: Buffer) => {
      errors = (errors + chunk.toString()).slice(-4_000)
    })
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => child.once("exit", (code, signal) => done({ code, signal })))
    let output = ""
    child.stdout!.on("data", (chunk: Buffer) => {
      output += chunk.toString()
      if (output.includes("ready")) resolve({ process: child, exited, stderr: () => errors })
    })
    exited.then(({ code, signal }) => reject(new Error(`${args[0]} exited (${code ?? signal}) before it was ready: ${errors}`)))
  })

const kill = async (child: Child) => {
  child.process.kill("SIGKILL")
  await child.exited
}

const stop = async (child: Child) => {
  child.process.kill("SIGTERM")
  const { code } = await child.exited
  assert.equal(code, 0, `graceful stop: ${child.stderr()}`)
}

const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis))

const waitFor = async (what: string, check: () => Promise<boolean>, timeoutMillis = 120_000) => {
  const deadline = Date.now() + timeoutMillis
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await sleep(50)
  }
}

const suite = (name: string, target: () => Target) => describe(name, () => {
  it("delivers every acknowledged durable message, in order per entity, across kills of the owner and the sender", async () => {
    const { url, connection, slotted } = target()
    console.log(`durable crash seed ${seed} (set DURABLE_CRASH_SEED to replay its choices)`)
    const random = generator(seed)
    const prefix = testPrefix("crash")
    const dataDir = tempDir("durable-owner")
    const logFile = Path.join(tempDir("durable-sender"), "acks.log")
    const entities = 40
    const perEntity = 100
    const queueConnection = connection()
    const queue = new Queue("shardfeed-durable", { connection: queueConnection.options, prefix: slotted(prefix) })
    let owner = await start(["owner", url, prefix, dataDir])
    let sender: Child | undefined = await start(["sender", url, prefix, logFile, String(entities), String(perEntity), "6"])
    const senderDone = () => Fs.existsSync(logFile) && Fs.readFileSync(logFile, "utf8").includes("DONE")
    try {
      // Three owner kills and two sender kills, in a random order, at random moments; the owner
      // only while it holds messages (BullMQ's active list is not empty), so each kill interrupts
      // deliveries in flight.
      const events = ["owner", "owner", "owner", "sender", "sender"].sort(() => random() - 0.5)
      let interrupted = 0
      for (const victim of events) {
        await sleep(100 + Math.floor(random() * 500))
        if (victim === "owner") {
          await waitFor("the owner is handling messages", async () => senderDone() || ((await queue.getJobCounts("active")).active ?? 0) > 0, 30_000)
          interrupted += (await queue.getJobCounts("active")).active ?? 0
          await kill(owner)
          owner = await start(["owner", url, prefix, dataDir])
        } else if (sender !== undefined && !senderDone()) {
          await kill(sender)
          sender = await start(["sender", url, prefix, logFile, String(entities), String(perEntity), "6"])
        }
      }
      console.log(`durable crash: the owner kills interrupted about ${interrupted} messages in flight`)
      await waitFor("the sender finishes", async () => senderDone())
      await waitFor("every durable message is handled", async () => {
        const counts = await queue.getJobCounts("waiting", "active", "delayed", "failed")
        return (counts.waiting ?? 0) + (counts.active ?? 0) + (counts.delayed ?? 0) === 0
      })
      assert.equal((await queue.getJobCounts("failed")).failed, 0, "no message failed")
      await stop(owner)
      if (sender !== undefined) await sender.exited
    } finally {
      owner.process.kill("SIGKILL")
      sender?.process.kill("SIGKILL")
      await queue.close()
      await queueConnection.close()
    }

    const acked = new Map<string, number>()
    for (const line of Fs.readFileSync(logFile, "utf8").split("\n").slice(0, -1)) {
      const [kind, entity, seq] = line.split(" ")
      if (kind === "A") acked.set(entity!, Math.max(acked.get(entity!) ?? 0, Number(seq)))
    }
    const reader = ManagedRuntime.make(durableNode({ url, prefix: `${prefix}-reader`, stores: LevelStore.layer({ directory: dataDir }), config: { consume: false } }))
    try {
      const ledgers = await reader.runPromise(EntityClient.make(Ledger))
      let repeats = 0
      for (let i = 0; i < entities; i++) {
        const entity = `e${i}`
        const notes = await reader.runPromise(ledgers.ask(entity, "Notes"))
        assert.equal(acked.get(entity), perEntity, `every note to ${entity} was acknowledged in the end`)
        for (let k = 1; k < notes.length; k++) {
          assert.ok(notes[k]! >= notes[k - 1]!, `${entity}'s notes keep send order: ${notes.join(",")}`)
          if (notes[k] === notes[k - 1]) repeats++
        }
        assert.deepEqual([...new Set(notes)], Array.from({ length: perEntity }, (_, k) => k + 1), `${entity} handled every note`)
      }
      console.log(`durable crash: ${repeats} notes handled twice (a kill between handling and completion)`)
    } finally {
      await reader.dispose()
    }

    // A kill between a completion and its release leaves a lane naming a finished message; once
    // everything is handled, a sweep leaves no lane and nothing in the open-lane registry.
    const sweeper = ManagedRuntime.make(durableNode({ url, prefix, stores: MemoryStore.layer, config: { laneSweepEveryMillis: 0 } }))
    try {
      const after = await sweeper.runPromise(Effect.gen(function*() {
        const durable = yield* DurableMessages.DurableMessages
        const swept = yield* durable.sweepLanes(Date.now())
        const { client, keys } = durable.queue
        return yield* Effect.promise(async () => {
          let lanes = 0
          for (let i = 0; i < entities; i++) lanes += (await client.zcard(keys.lane("ledger", `e${i}`))) + (await client.hexists(keys.laneMeta("ledger", `e${i}`), "seq"))
          return { swept, lanes, registered: await client.zcard(keys.openLanes) }
        })
      }))
      console.log(`durable crash: the sweep dropped ${after.swept.dropped} finished heads and deleted ${after.swept.emptied} lanes left by the kills`)
      assert.equal(after.lanes, 0, "no lane is left")
      assert.equal(after.registered, 0, "the open-lane registry is empty")
    } finally {
      await sweeper.dispose()
    }
  }, 240_000)

  it("appends every ingested job exactly once, in queue order, across kills of the ingest process", async () => {
    const { url, connection, slotted } = target()
    const random = generator(seed + 1)
    // The producers' prefix: on a cluster they must tag it themselves.
    const prefix = slotted(testPrefix("ingest-crash"))
    const dataDir = tempDir("durable-ingest")
    const producerConnection = connection()
    const producer = new Queue("incoming", { connection: producerConnection.options, prefix })
    const feeds = 30
    const perFeed = 300
    const args = ["ingest", url, prefix, "incoming", dataDir, "800"]
    let ingest = await start(args)
    try {
      // Jobs arrive in rounds while the ingest process is killed up to five times mid-stream.
      let seq = 0
      let kills = 0
      // Kills that found jobs taken by the ingest process and not yet completed (mid-batch).
      let midBatch = 0
      while (seq < perFeed) {
        const round = Math.min(perFeed - seq, 10 + Math.floor(random() * 40))
        const jobs = []
        for (let n = seq + 1; n <= seq + round; n++) {
          for (let feed = 0; feed < feeds; feed++) jobs.push({ name: "event", data: { feed: `f${feed}`, n, body: "x".repeat(100) } })
        }
        await producer.addBulk(jobs)
        seq += round
        // The last round is killed for certain if none was yet: at least one kill, always.
        if (kills < 5 && (random() < 0.5 || (kills === 0 && seq >= perFeed))) {
          await sleep(Math.floor(random() * 300))
          // Mid-batch: wait (bounded) until the process holds jobs it has not completed.
          for (let wait = 0; wait < 100 && ((await producer.getJobCounts("active")).active ?? 0) === 0; wait++) await sleep(5)
          if (((await producer.getJobCounts("active")).active ?? 0) > 0) midBatch++
          await kill(ingest)
          kills++
          ingest = await start(args)
        }
      }
      assert.ok(kills >= 1 && midBatch >= 1, `${kills} kills, ${midBatch} of them with jobs in flight`)
      await waitFor("every job is appended", async () => {
        const counts = await producer.getJobCounts("waiting", "active", "delayed", "failed")
        return (counts.waiting ?? 0) + (counts.active ?? 0) + (counts.delayed ?? 0) + (counts.failed ?? 0) === 0
      })
      await stop(ingest)
    } finally {
      ingest.process.kill("SIGKILL")
      await producer.obliterate({ force: true })
      await producer.close()
      await producerConnection.close()
    }

    const reader = ManagedRuntime.make(Feed.layer(Feed.Json).pipe(
      Layer.provideMerge(EntityRuntime.layerLocal),
      Layer.provideMerge(LevelStore.layer({ directory: dataDir })),
      Layer.provideMerge(Layer.succeed(RuntimeConfig)({ ...defaults, shardCount: 16 }))
    ))
    try {
      const client = await reader.runPromise(Feed.client(Feed.Json))
      for (let feed = 0; feed < feeds; feed++) {
        const page = await reader.runPromise(Effect.orDie(client.page(`f${feed}`, { limit: 1_000 })))
        const nonces = page.items.map((item) => Number(item.nonce))
        assert.deepEqual(nonces, Array.from({ length: perFeed }, (_, k) => k + 1), `feed f${feed} holds every job exactly once, in queue order`)
        assert.deepEqual(page.items.map((item) => (item.value as { n: number }).n), nonces)
      }
    } finally {
      await reader.dispose()
    }
  }, 240_000)
})

suite("durable work under SIGKILL", standalone)
suite("durable work under SIGKILL on a 3-master Redis Cluster", redisCluster)
