/**
 * `npm run bench -- cluster [--seconds 5] [--inflight 1000] [--keys 10000]`: scale-out on real
 * processes and a private redis-server (redis store), in one run.
 *
 * - In-process baseline: one process that is a worker of a one-worker cluster (redis store) and
 *   asks its own entities: `inflight` asks in flight for `seconds`, round robin over `keys`
 *   sorted sets (`Card`, a read answered from memory, so the figure is messaging, not storage).
 * - Cross-worker: three `shardfeed worker` processes and a client process (a client-only member,
 *   hosting no shard, sending straight to the owners over the worker transport), the same asks.
 * - Latency at half load: the client sends open-loop at half the cross-worker throughput it just
 *   measured, every ask timed from its scheduled send (so queueing counts), p50 and p99; and the
 *   same at a light 1,000 asks/s, which shows the latency of the path itself.
 * - The floor at that rate: three plain Node TCP echo processes and a client sending lines of an
 *   ask's size open-loop at the same rate, timed the same way (no shardfeed, no Effect): what
 *   this machine's scheduling alone costs four processes on its cores.
 * - Failover: SIGKILL one of the three workers; the time until every shard is owned by the
 *   survivors (polling the map a survivor reads from Redis) and until the client's asks succeed
 *   again on every key.
 * - Rebalance: a fourth worker joins; the time from its join (its banner) until the map is
 *   balanced over the four (each within ±10% of 1,024 / 4).
 *
 * Children are this same file, re-entered with `--role inproc|client` over IPC.
 */
import { type ChildProcess, fork, spawn } from "node:child_process"
import * as Net from "node:net"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { Exit, Layer, ManagedRuntime } from "effect"
import * as EntityClient from "../../actors/EntityClient.js"
import * as SortedSetEntity from "../../src/sortedset/SortedSetEntity.js"
import * as Worker from "../../sharding/Worker.js"
import { startRedis } from "../support/RedisServer.js"
import { options, quantile, report, type Row } from "./report.js"

const SHARDS = 1_024
const LEASE_MILLIS = 3_000
const here = Path.dirname(fileURLToPath(import.meta.url))
const runner = Path.join(here, "run.js")
const cli = Path.resolve(here, "../../src/cli/main.js")

/** `SHARDFEED_BENCH_PROFILE=<dir>` writes a CPU profile of every child process there. */
const profile = process.env.SHARDFEED_BENCH_PROFILE
const execArgv = profile === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${profile}`]

const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis))

/**
 * An open loop at `rate` calls/s for `seconds`: call `i` is due at `i / rate` s, everything due
 * goes out at once, and each call's latency counts from when it was due (so queueing, here or
 * anywhere, counts). The sender never waits for answers, so a slow answer cannot delay later
 * calls. Calls in flight are bounded by the calls' own timeouts.
 */
const openLoop = async (rate: number, seconds: number, call: (i: number) => Promise<boolean>) => {
  const latencies: Array<number> = []
  let failed = 0
  let outstanding = 0
  let drained: (() => void) | undefined
  const started = performance.now()
  const total = Math.floor(rate * seconds)
  let sent = 0
  while (sent < total) {
    const due = started + (sent * 1_000) / rate
    const now = performance.now()
    if (due > now) await sleep(Math.min(5, due - now))
    while (sent < total && started + (sent * 1_000) / rate <= performance.now()) {
      const scheduled = started + (sent * 1_000) / rate
      outstanding++
      void call(sent++).then((ok) => {
        if (ok) latencies.push(performance.now() - scheduled)
        else failed++
        if (--outstanding === 0) drained?.()
      })
    }
  }
  if (outstanding > 0) await new Promise<void>((resolve) => (drained = resolve))
  return { p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99), failed }
}

// ---------------------------------------------------------------------------------------------
// The floor: plain TCP echo between Node processes, no shardfeed at all

/** An echo server: sends every byte back as it comes (newline-delimited JSON passes through). */
const echoMain = () => {
  const server = Net.createServer((socket) => {
    socket.setNoDelay(true)
    socket.on("data", (chunk) => socket.write(chunk))
    socket.on("error", () => undefined)
  })
  server.listen(0, "127.0.0.1", () => process.send!({ type: "ready", port: (server.address() as Net.AddressInfo).port }))
  process.on("message", (message: { cmd: string }) => {
    if (message.cmd === "exit") process.exit(0)
  })
}

/**
 * A client of three echo servers: open loop at `rate` JSON lines/s, round robin, each line the
 * size of an ask's frame, answered when its echo comes back.
 */
const rawClientMain = () => {
  process.on("message", async (message: { cmd: string; ports?: ReadonlyArray<number>; rate?: number; seconds?: number }) => {
    if (message.cmd === "exit") process.exit(0)
    if (message.cmd !== "open") return
    const waiting = new Map<number, () => void>()
    const sockets = await Promise.all(message.ports!.map((port) =>
      new Promise<Net.Socket>((resolve) => {
        const socket = Net.connect({ host: "127.0.0.1", port }, () => resolve(socket))
        socket.setNoDelay(true)
        let buffered = ""
        socket.on("data", (chunk) => {
          buffered += chunk.toString()
          let newline = buffered.indexOf("\n")
          while (newline >= 0) {
            const line = buffered.slice(0, newline)
            buffered = buffered.slice(newline + 1)
            const id = (JSON.parse(line) as { id: number }).id
            waiting.get(id)?.()
            waiting.delete(id)
            newline = buffered.indexOf("\n")
          }
        })
      })))
    const result = await openLoop(message.rate!, message.seconds!, (i) =>
      new Promise<boolean>((resolve) => {
        waiting.set(i, () => resolve(true))
        sockets[i % sockets.length]!.write(`${JSON.stringify({ id: i, type: "sortedset", key: `bench-${i % 10_000}`, tag: "Card", payload: {}, deadline: Date.now() + 10_000 })}\n`)
      }))
    for (const socket of sockets) socket.destroy()
    process.send!({ type: "open", ...result })
  })
  process.send!({ type: "ready" })
}

// ---------------------------------------------------------------------------------------------
// Children: a process that asks (in-process on its own worker, or as a client-only member)

interface AskLoad {
  readonly keys: number
  readonly inflight: number
  readonly seconds: number
}

const childMain = async (role: "inproc" | "client", option: Record<string, string>) => {
  const runtime = ManagedRuntime.make(
    Worker.layer(
      {
        redisUrl: option.redis!,
        store: { _tag: "Redis" },
        transport: { host: "127.0.0.1", port: 0 },
        sharding: { clusterName: option.cluster!, workerId: `${role}-${process.pid}` },
        runtime: { shardCount: SHARDS },
        clientOnly: role === "client"
      },
      role === "inproc" ? SortedSetEntity.layer : Layer.empty
    ).pipe(Layer.orDie)
  )
  const sets = await runtime.runPromise(EntityClient.make(SortedSetEntity.SortedSetEntity))
  const ask = (key: number) => runtime.runPromiseExit(sets.ask(`bench-${key}`, "Card", {}, { timeoutMillis: 10_000 }))

  /** Closed loop: `inflight` asks always outstanding; answers asks per second and failures. */
  const closed = async ({ keys, inflight, seconds }: AskLoad) => {
    let done = 0
    let failed = 0
    let firstError: string | undefined
    let next = 0
    const until = performance.now() + seconds * 1_000
    const started = performance.now()
    await Promise.all(Array.from({ length: inflight }, async () => {
      while (performance.now() < until) {
        const exit = await ask(next++ % keys)
        if (Exit.isSuccess(exit)) done++
        else {
          failed++
          firstError ??= String(exit.cause).slice(0, 300)
        }
      }
    }))
    return { rate: (done * 1_000) / (performance.now() - started), failed, firstError }
  }

  const open = (rate: number, keys: number, seconds: number) =>
    openLoop(rate, seconds, (i) => ask(i % keys).then(Exit.isSuccess))

  /** Asks every key until each has answered once after `since`; answers when the last did. */
  const everyKeyServes = async (keys: number) => {
    const waiting = new Set(Array.from({ length: keys }, (_, key) => key))
    // Bounded: gives up after 60 s.
    const deadline = Date.now() + 60_000
    while (waiting.size > 0 && Date.now() < deadline) {
      await Promise.all([...waiting].slice(0, 1_000).map(async (key) => {
        if (Exit.isSuccess(await ask(key))) waiting.delete(key)
      }))
    }
    return { at: Date.now(), missing: waiting.size }
  }

  process.on("message", async (message: { cmd: string; load?: AskLoad; rate?: number }) => {
    if (message.cmd === "warm") {
      await everyKeyServes(message.load!.keys)
      process.send!({ type: "warm" })
    } else if (message.cmd === "closed") {
      process.send!({ type: "closed", ...(await closed(message.load!)) })
    } else if (message.cmd === "open") {
      process.send!({ type: "open", ...(await open(message.rate!, message.load!.keys, message.load!.seconds)) })
    } else if (message.cmd === "serves") {
      process.send!({ type: "serves", ...(await everyKeyServes(message.load!.keys)) })
    } else if (message.cmd === "exit") {
      await runtime.dispose()
      process.exit(0)
    }
  })
  process.send!({ type: "ready" })
}

// ---------------------------------------------------------------------------------------------
// The parent: processes, phases, report

const child = (role: string, redis: string, cluster: string) => {
  const process_ = fork(runner, ["cluster", "--role", role, "--redis", redis, "--cluster", cluster], { stdio: ["ignore", "inherit", "inherit", "ipc"], execArgv })
  const replies: Array<any> = []
  const waiting: Array<(reply: any) => void> = []
  process_.on("message", (reply) => {
    const next = waiting.shift()
    if (next !== undefined) next(reply)
    else replies.push(reply)
  })
  const next = () => new Promise<any>((resolve) => (replies.length > 0 ? resolve(replies.shift()) : waiting.push(resolve)))
  return {
    ready: next(),
    ask: (message: Record<string, unknown>) => {
      process_.send(message)
      return next()
    },
    exit: async () => {
      process_.send({ cmd: "exit" })
      await new Promise((resolve) => process_.once("exit", resolve))
    }
  }
}

const worker = async (redis: string, cluster: string, id: string) => {
  const started = Date.now()
  const process_: ChildProcess = spawn(process.execPath, [...execArgv, cli, "worker", "--redis", redis, "--store", "redis", "--cluster", cluster, "--id", id, "--http", "127.0.0.1:0", "--shards", String(SHARDS)], {
    stdio: ["ignore", "pipe", "pipe"]
  })
  let output = ""
  process_.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()))
  process_.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()))
  // Bounded: 30 s to print the banner.
  for (let waited = 0; waited < 30_000; waited += 20) {
    const base = /API\s+(http:\/\/127\.0\.0\.1:\d+)\/v1/.exec(output)?.[1]
    if (base !== undefined) return { id, base, process: process_, joinedAt: Date.now(), spawnedAt: started }
    if (process_.exitCode !== null) break
    await sleep(20)
  }
  process_.kill("SIGKILL")
  throw new Error(`worker ${id} did not start:\n${output}`)
}

const ownersOf = async (base: string): Promise<ReadonlyArray<string | null>> =>
  ((await (await fetch(`${base}/v1/cluster`)).json()) as { owners: Array<string | null> }).owners

/** Polls until `done(owners)`; answers when (ms since the epoch). Bounded by `timeoutMillis`. */
const until = async (base: string, done: (owners: ReadonlyArray<string | null>) => boolean, timeoutMillis = 60_000) => {
  const deadline = Date.now() + timeoutMillis
  while (Date.now() < deadline) {
    const owners = await ownersOf(base).catch(() => undefined)
    if (owners !== undefined && done(owners)) return Date.now()
    await sleep(20)
  }
  throw new Error("the cluster did not settle")
}

const balanced = (ids: ReadonlyArray<string>) => (owners: ReadonlyArray<string | null>) =>
  owners.every((owner) => owner !== null && ids.includes(owner)) &&
  ids.every((id) => Math.abs(owners.filter((owner) => owner === id).length - SHARDS / ids.length) <= (SHARDS / ids.length) * 0.1)

export const main = async (args: ReadonlyArray<string>): Promise<void> => {
  const option = options(args)
  if (option.role === "inproc" || option.role === "client") return childMain(option.role, option)
  if (option.role === "echo") return echoMain()
  if (option.role === "rawclient") return rawClientMain()
  const load: AskLoad = { keys: Number(option.keys ?? 10_000), inflight: Number(option.inflight ?? 1_000), seconds: Number(option.seconds ?? 5) }
  const redis = await startRedis()
  const processes: Array<{ process: ChildProcess }> = []
  try {
    // In-process baseline: one worker asking its own entities.
    const single = child("inproc", redis.url, "bench-single")
    await single.ready
    await single.ask({ cmd: "warm", load })
    const inproc = await single.ask({ cmd: "closed", load })
    await single.exit()

    // Three workers and a client.
    const workers = await Promise.all(["w1", "w2", "w3"].map((id) => worker(redis.url, "bench-three", id)))
    processes.push(...workers)
    await until(workers[0]!.base, balanced(["w1", "w2", "w3"]))
    const client = child("client", redis.url, "bench-three")
    await client.ready
    await client.ask({ cmd: "warm", load })
    const cross = await client.ask({ cmd: "closed", load })
    const half = await client.ask({ cmd: "open", rate: cross.rate / 2, load })
    const light = await client.ask({ cmd: "open", rate: 1_000, load })

    // The floor at the same rate: three echo processes and a client, plain TCP (workers idle).
    const echoes = ["echo", "echo", "echo"].map((role) => child(role, redis.url, "none"))
    const ports = (await Promise.all(echoes.map((echo) => echo.ready))).map((ready: { port: number }) => ready.port)
    const rawClient = child("rawclient", redis.url, "none")
    await rawClient.ready
    const floor = await rawClient.ask({ cmd: "open", ports, rate: cross.rate / 2, seconds: load.seconds })
    await Promise.all([...echoes, rawClient].map((process_) => process_.exit()))

    // Failover: SIGKILL w3.
    const killedAt = Date.now()
    workers[2]!.process.kill("SIGKILL")
    const ownedAt = await until(workers[0]!.base, (owners) => owners.every((owner) => owner === "w1" || owner === "w2"))
    const serving = await client.ask({ cmd: "serves", load })
    await until(workers[0]!.base, balanced(["w1", "w2"]))

    // Rebalance: w3 comes back, then a fourth worker joins a cluster of three.
    processes.push(await worker(redis.url, "bench-three", "w3"))
    await until(workers[0]!.base, balanced(["w1", "w2", "w3"]))
    const fourth = await worker(redis.url, "bench-three", "w4")
    processes.push(fourth)
    const balancedAt = await until(workers[0]!.base, balanced(["w1", "w2", "w3", "w4"]))
    await client.exit()

    console.log(`in-process ${JSON.stringify(inproc)}; cross-worker ${JSON.stringify(cross)}; half load ${JSON.stringify(half)}; light load ${JSON.stringify(light)}; tcp floor ${JSON.stringify(floor)}; after failover ${JSON.stringify(serving)}`)
    const rows: Array<Row> = [
      { name: "in-process ask, one worker", value: inproc.rate, unit: "asks/s" },
      { name: "cross-worker ask, 3 workers + client", value: cross.rate, unit: "asks/s", baseline: "in-process", ratio: cross.rate / inproc.rate, target: ">= 0.3x" },
      { name: `latency at half load (${Math.round(cross.rate / 2).toLocaleString("en-US")} asks/s), p50`, value: half.p50, unit: "ms" },
      { name: "latency at half load, p99", value: half.p99, unit: "ms", target: "<= 5 ms" },
      { name: "  plain TCP echo, 3 processes + client, same rate, p50", value: floor.p50, unit: "ms" },
      { name: "  plain TCP echo, same rate, p99", value: floor.p99, unit: "ms" },
      { name: "latency at 1,000 asks/s, p50", value: light.p50, unit: "ms" },
      { name: "latency at 1,000 asks/s, p99", value: light.p99, unit: "ms" },
      { name: "failover: shards owned again", value: ownedAt - killedAt, unit: "ms", target: `<= ${LEASE_MILLIS + 2_000} ms` },
      { name: "failover: every key answers again", value: serving.at - killedAt, unit: "ms", target: `<= ${LEASE_MILLIS + 2_000} ms` },
      { name: "rebalance of 1,024 shards, 4th joins", value: balancedAt - fourth.joinedAt, unit: "ms", target: "<= 5000 ms" },
      { name: "  (from spawning the 4th process)", value: balancedAt - fourth.spawnedAt, unit: "ms" }
    ]
    report("cluster", rows, {
      shards: SHARDS,
      keys: load.keys,
      inflight: load.inflight,
      seconds: load.seconds,
      leaseMillis: LEASE_MILLIS,
      failures: { inproc: inproc.failed, cross: cross.failed, half: half.failed, light: light.failed, floor: floor.failed, missingAfterFailover: serving.missing }
    })
  } finally {
    for (const { process: process_ } of processes) process_.kill("SIGKILL")
    await redis.stop()
  }
}
