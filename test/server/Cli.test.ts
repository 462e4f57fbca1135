/**
 * Goal: the `shardfeed` command works as a person uses it — `serve` starts, keeps data across a
 * restart, and exits 0 after a graceful SIGTERM; `dump` and `restore` move all data offline;
 * every command explains itself with `--help`.
 * Method: the compiled CLI in real child processes, over temp directories and free ports.
 */
import { Queue } from "bullmq"
import { type ChildProcess, execFile, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { promisify } from "node:util"
import { strict as assert } from "node:assert"
import { describe, inject, it } from "vitest"
import { freePort } from "../support/RedisServer.js"
import { tempDir } from "../support/tempDir.js"
import { call } from "./support.js"

const cli = Path.resolve("dist/src/cli/main.js")
const run = promisify(execFile)

/**
 * Starts `serve` on port 0 and reads the bound address from its banner: asking for a free port
 * first would race with other test files' servers taking it in between.
 */
const serve = async (data: string, extra: ReadonlyArray<string> = ["--shards", "16"], env: Record<string, string> = {}) => {
  const child = spawn(process.execPath, [cli, "serve", "--data", data, "--http", "127.0.0.1:0", ...extra], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env }
  })
  let output = ""
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()))
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()))
  const deadline = Date.now() + 20_000
  let base: string | undefined
  while (base === undefined) {
    base = /API\s+(http:\/\/127\.0\.0\.1:\d+)\/v1/.exec(output)?.[1]
    if (base !== undefined) break
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill("SIGKILL")
      throw new Error(`serve did not start: ${output}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  const address = base
  return { child, base: address, output: () => output }
}

const exited = (child: ChildProcess): Promise<number | null> =>
  new Promise((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once("exit", (code) => resolve(code))))

describe("shardfeed CLI", () => {
  it("serves, keeps data across a restart, and exits 0 on SIGTERM after draining", async () => {
    const data = tempDir("cli-serve")
    const first = await serve(data)
    assert.match(first.output(), /dashboard\s+http:\/\/127\.0\.0\.1:\d+\/dashboard/)
    const appended = await call(first.base, "POST", "/v1/feeds/kept/append", { items: Array.from({ length: 50 }, (_, i) => ({ value: i, nonce: i + 1 })) })
    assert.equal(appended.status, 200)
    first.child.kill("SIGTERM")
    assert.equal(await exited(first.child), 0, first.output())
    const second = await serve(data)
    try {
      const metadata = await call(second.base, "GET", "/v1/feeds/kept")
      assert.equal(metadata.body?.count, 50, `after the restart: ${metadata.status} ${metadata.text}`)
      assert.equal(metadata.body.lastNonce, "50")
    } finally {
      second.child.kill("SIGTERM")
      assert.equal(await exited(second.child), 0)
    }
    const file = Path.join(tempDir("cli-archive"), "dump.gz")
    const dumped = await run(process.execPath, [cli, "dump", "--data", data, "--out", file])
    assert.match(dumped.stdout, /records written/)
    const copy = tempDir("cli-restore")
    const restored = await run(process.execPath, [cli, "restore", "--data", copy, "--in", file])
    assert.match(restored.stdout, /records restored/)
    const refused = await run(process.execPath, [cli, "restore", "--data", copy, "--in", file]).then(() => undefined, (error: { code: number; stderr: string }) => error)
    assert.ok(refused !== undefined && refused.code === 1 && /not empty/.test(refused.stderr), "a second restore without --merge is refused")
    const third = await serve(copy)
    try {
      assert.equal((await call(third.base, "GET", "/v1/feeds/kept")).body.count, 50)
    } finally {
      third.child.kill("SIGTERM")
      await exited(third.child)
    }
  }, 90_000)

  it("explains every command and its defaults with --help", async () => {
    const top = await run(process.execPath, [cli, "--help"])
    for (const command of ["serve", "worker", "ingest", "dead-letters", "dump", "restore", "bench"]) assert.match(top.stdout, new RegExp(`\\b${command}\\b`))
    const serveHelp = await run(process.execPath, [cli, "serve", "--help"])
    assert.match(serveHelp.stdout, /--data.*default \.\/data/)
    assert.match(serveHelp.stdout, /--http.*default 127\.0\.0\.1:7070/)
    const workerHelp = await run(process.execPath, [cli, "worker", "--help"])
    assert.match(workerHelp.stdout, /--redis.*env SHARDFEED_REDIS/)
    assert.match(workerHelp.stdout, /--store.*env SHARDFEED_STORE; default redis/)
    assert.match(workerHelp.stdout, /--weight.*env SHARDFEED_WEIGHT; default 1\)/)
    assert.match(workerHelp.stdout, /--lease-ms.*env SHARDFEED_LEASE_MS; default 3000/)
    assert.match(workerHelp.stdout, /--client-only.*env SHARDFEED_CLIENT_ONLY; default off/)
    for (const command of ["dump", "restore", "bench", "ingest", "dead-letters list"]) {
      const help = await run(process.execPath, [cli, ...command.split(" "), "--help"])
      assert.match(help.stdout, /USAGE/)
    }
  })

  it("takes each setting from its flag, then the environment, then the config file", async () => {
    const dir = tempDir("cli-config")
    const config = Path.join(dir, "settings.json")
    Fs.writeFileSync(config, JSON.stringify({ shards: 8, bodyLimit: 2_000 }))
    const shardCount = async (extra: ReadonlyArray<string>, env: Record<string, string>) => {
      const node = await serve(tempDir("cli-config-data"), extra, { SHARDFEED_CONFIG: config, ...env })
      try {
        const cluster = await call(node.base, "GET", "/v1/cluster")
        // The file's body limit holds in every run: no flag or variable sets it.
        const big = await call(node.base, "POST", "/v1/feeds/big/append", { items: [{ value: "x".repeat(3_000) }] })
        assert.equal(big.status, 413, big.text)
        return cluster.body.shardCount as number
      } finally {
        node.child.kill("SIGTERM")
        assert.equal(await exited(node.child), 0, node.output())
      }
    }
    assert.equal(await shardCount(["--shards", "16"], { SHARDFEED_SHARDS: "12" }), 16, "the flag wins")
    assert.equal(await shardCount([], { SHARDFEED_SHARDS: "12" }), 12, "then the environment")
    assert.equal(await shardCount([], {}), 8, "then the config file")

    // Switches too: client-only from the environment, then from the file.
    Fs.writeFileSync(config, JSON.stringify({ clientOnly: true, http: "127.0.0.1:0", shards: 16 }))
    for (const env of [{ SHARDFEED_CLIENT_ONLY: "true" }, { SHARDFEED_CONFIG: config }]) {
      const worker = spawn(process.execPath, [cli, "worker", "--redis", inject("redisUrl"), "--http", "127.0.0.1:0", "--shards", "16", "--cluster", `cli-${Math.random().toString(36).slice(2, 8)}`], {
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, ...env }
      })
      let output = ""
      worker.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()))
      worker.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()))
      try {
        for (let tries = 0; tries < 200 && !/API\s+http/.test(output) && worker.exitCode === null; tries++) await new Promise((resolve) => setTimeout(resolve, 50))
        assert.match(output, /\(client only\)/, JSON.stringify(env))
      } finally {
        worker.kill("SIGTERM")
        assert.equal(await exited(worker), 0, output)
      }
    }
  }, 90_000)

  it("stops at a config file with a mistake, naming the file and the key", async () => {
    const dir = tempDir("cli-bad-config")
    const config = Path.join(dir, "shardfeed.json")
    const attempt = (text: string) => {
      Fs.writeFileSync(config, text)
      return run(process.execPath, [cli, "serve", "--data", Path.join(dir, "data"), "--http", "127.0.0.1:0"], { env: { ...process.env, SHARDFEED_CONFIG: config } })
        .then(() => undefined, (error: { code: number; stderr: string }) => error)
    }
    const malformed = await attempt(`{"shards": 8`)
    assert.equal(malformed?.code, 2)
    assert.match(malformed!.stderr, new RegExp(`config file ${config.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: .*JSON`))
    const unknown = await attempt(`{"shard": 8}`)
    assert.equal(unknown?.code, 2)
    assert.match(unknown!.stderr, /unknown setting "shard" \(known: .*shards/)
    const nested = await attempt(`{"shards": {"count": 8}}`)
    assert.equal(nested?.code, 2)
    assert.match(nested!.stderr, /"shards" must be a string, number or boolean/)
    const notObject = await attempt(`[1, 2]`)
    assert.match(notObject!.stderr, /must be a JSON object/)
    assert.equal(Fs.existsSync(Path.join(dir, "data")), false, "nothing was opened")
  }, 30_000)

  it("drains and exits 0 on SIGINT too", async () => {
    const data = tempDir("cli-sigint")
    const node = await serve(data)
    const appended = await call(node.base, "POST", "/v1/feeds/interrupted/append", { items: [{ value: 1 }, { value: 2 }] })
    assert.equal(appended.status, 200)
    node.child.kill("SIGINT")
    assert.equal(await exited(node.child), 0, node.output())
    const again = await serve(data)
    try {
      assert.equal((await call(again.base, "GET", "/v1/feeds/interrupted")).body.count, 2)
    } finally {
      again.child.kill("SIGTERM")
      await exited(again.child)
    }
  }, 60_000)

  it("refuses a directory another node holds, naming it", async () => {
    const data = tempDir("cli-locked")
    const holder = await serve(data)
    try {
      const failure = await run(process.execPath, [cli, "serve", "--data", data, "--http", "127.0.0.1:0"]).then(() => undefined, (error: { code: number; stderr: string }) => error)
      assert.ok(failure !== undefined && failure.code === 1, "the second node exits with 1")
      assert.match(failure!.stderr, /StoreLocked/)
      assert.ok(failure!.stderr.includes(data))
    } finally {
      holder.child.kill("SIGTERM")
      await exited(holder.child)
    }
  }, 60_000)

  it("stops at a Redis it cannot reach, at start and on SIGTERM meanwhile, instead of waiting forever", async () => {
    // A loopback port nobody listens on: every connection is refused, and ioredis retries forever.
    const unreachable = `redis://127.0.0.1:${await freePort()}`
    const failure = await run(process.execPath, [cli, "serve", "--data", tempDir("cli-no-redis"), "--http", "127.0.0.1:0", "--redis", unreachable])
      .then(() => undefined, (error: { code: number; stderr: string }) => error)
    assert.ok(failure !== undefined && failure.code === 1, "serve exits with 1")
    assert.match(failure!.stderr, /DurableUnavailable.*did not answer within/)
    const child = spawn(process.execPath, [cli, "serve", "--data", tempDir("cli-no-redis-term"), "--http", "127.0.0.1:0", "--redis", unreachable], { stdio: "ignore" })
    await new Promise((resolve) => setTimeout(resolve, 1_000))
    child.kill("SIGTERM")
    const ended = await Promise.race([exited(child).then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 30_000))])
    if (!ended) child.kill("SIGKILL")
    assert.ok(ended, "SIGTERM during the start ends the process")
  }, 60_000)

  it("refuses a malformed --advertise, naming the flag", async () => {
    const failure = await run(process.execPath, [cli, "worker", "--redis", inject("redisUrl"), "--http", "127.0.0.1:0", "--advertise", "no-port-here"])
      .then(() => undefined, (error: { code: number; stderr: string }) => error)
    assert.ok(failure !== undefined && failure.code === 1, "the worker exits with 1")
    assert.match(failure!.stderr, /--advertise no-port-here must be host:port/)
  }, 30_000)

  it("passes the durable settings to durable messages, refusing a bad one with its field named", async () => {
    const failure = await run(process.execPath, [cli, "worker", "--redis", inject("redisUrl"), "--http", "127.0.0.1:0", "--cluster", `durable-flags-${Date.now()}`, "--durable-attempts", "0"])
      .then(() => undefined, (error: { code: number; stderr: string }) => error)
    assert.ok(failure !== undefined && failure.code === 1, "the worker exits with 1")
    assert.match(failure!.stderr, /InvalidArgument \(attemptsMax\): must be an integer from 1 to 1000/)
  }, 30_000)

  it("takes durable messages with --redis, and answers NotEnabled without it", async () => {
    const plain = await serve(tempDir("cli-plain"))
    try {
      const refused = await call(plain.base, "POST", "/v1/entities/feed/f/messages", { message: { _tag: "Append", payload: { items: [{ value: 1 }] } } })
      assert.equal(refused.status, 404)
      assert.equal(refused.body.error.code, "NotEnabled")
    } finally {
      plain.child.kill("SIGTERM")
      await exited(plain.child)
    }
    const durable = await serve(tempDir("cli-durable"), ["--shards", "16", "--redis", inject("redisUrl"), "--compact-every", "1"])
    try {
      const feed = `durable-${Math.random().toString(36).slice(2, 8)}`
      const sent = await call(durable.base, "POST", `/v1/entities/feed/${feed}/messages`, { message: { _tag: "Append", payload: { items: [{ value: "hello", nonce: 1 }] } }, id: "m1" })
      assert.equal(sent.status, 202, sent.text)
      assert.equal(typeof sent.body.id, "string")
      // Delivered by BullMQ's consumer through the entity runtime, soon after.
      let count = 0
      for (let tries = 0; tries < 100 && count === 0; tries++) {
        const metadata = await call(durable.base, "GET", `/v1/feeds/${feed}`)
        count = metadata.status === 200 ? metadata.body.count : 0
        if (count === 0) await new Promise((resolve) => setTimeout(resolve, 100))
      }
      assert.equal(count, 1, "the durable message was delivered")
      const depths = await call(durable.base, "GET", "/v1/durable")
      assert.equal(depths.status, 200, depths.text)
      // Maintenance runs with durable work: the API's feeds are compacted every --compact-every seconds.
      for (let i = 2; i <= 6; i++) {
        const appended = await call(durable.base, "POST", `/v1/feeds/${feed}/append`, { items: [{ value: i }] })
        assert.equal(appended.status, 200, appended.text)
      }
      // And the API's search indexes are merged on the same period.
      type Schedule = { task: string; runs: { ok: number; error: number } }
      let compaction: Schedule | undefined
      let merge: Schedule | undefined
      for (let tries = 0; tries < 100 && ((compaction?.runs.ok ?? 0) === 0 || (merge?.runs.ok ?? 0) === 0); tries++) {
        const maintenance = await call(durable.base, "GET", "/v1/maintenance")
        assert.equal(maintenance.status, 200, maintenance.text)
        compaction = maintenance.body.schedules.find((schedule: Schedule) => schedule.task === "compaction.feed")
        merge = maintenance.body.schedules.find((schedule: Schedule) => schedule.task === "merge.search")
        if ((compaction?.runs.ok ?? 0) === 0 || (merge?.runs.ok ?? 0) === 0) await new Promise((resolve) => setTimeout(resolve, 100))
      }
      assert.ok(compaction !== undefined && compaction.runs.ok >= 1 && compaction.runs.error === 0, JSON.stringify(compaction))
      assert.ok(merge !== undefined && merge.runs.ok >= 1 && merge.runs.error === 0, JSON.stringify(merge))
      const page = await call(durable.base, "GET", `/v1/feeds/${feed}/entries?limit=10`)
      assert.deepEqual(page.body.items.map((item: { value: unknown }) => item.value), ["hello", 2, 3, 4, 5, 6])
    } finally {
      durable.child.kill("SIGTERM")
      assert.equal(await exited(durable.child), 0, durable.output())
    }
    // The built-in schedule lives in Redis; a node started with --compact-every 0 removes it.
    const redisUrl = new URL(inject("redisUrl"))
    const schedules = new Queue("shardfeed-builtin-maintenance", { connection: { host: redisUrl.hostname, port: Number(redisUrl.port) }, prefix: "shardfeed" })
    try {
      assert.deepEqual((await schedules.getJobSchedulers()).map((scheduler) => scheduler.key).sort(), ["compaction.feed", "merge.search"])
      const off = await serve(tempDir("cli-compact-off"), ["--shards", "16", "--redis", inject("redisUrl"), "--compact-every", "0"])
      try {
        assert.deepEqual((await schedules.getJobSchedulers()).map((scheduler) => scheduler.key), [])
        const maintenance = await call(off.base, "GET", "/v1/maintenance")
        assert.deepEqual(maintenance.body, { schedules: [] })
      } finally {
        off.child.kill("SIGTERM")
        assert.equal(await exited(off.child), 0, off.output())
      }
    } finally {
      await schedules.close()
    }
  }, 60_000)
})
