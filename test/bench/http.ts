/**
 * `npm run bench -- http [--seconds 10] [--warmup 2] [--connections 64] [--batch 100] [--feeds 1000]`:
 * appends over the HTTP API against the same appends through the library API, in the same run,
 * each on a fresh single node (LevelDB in a fresh temp directory, 1,024 shards).
 *
 * The workload, for both: `connections` closed loops (each sends its next request once the
 * previous one is answered), each request appending a batch of `batch` items of a ~100-byte JSON
 * value (`{"v": "<90 chars>"}`) to one of `feeds` feeds. Every feed belongs to one loop (feed `f`
 * to loop `f % connections`), which visits its feeds round robin with nonces increasing per feed,
 * so every item is a real exactly-once append and none may come back as a duplicate. After
 * `warmup` seconds unrecorded, requests answered within the next `seconds` are counted and their
 * latencies (sent to answered) recorded; requests still in flight at the end are not counted.
 *
 * - Library: `Feed.client(Feed.Json).append(feed, items)` over `Node.layer` (the services a node
 *   serves HTTP with), the loops running in this process.
 * - HTTP: `Node.serve` in this process, `POST /v1/feeds/:feed/append`; the load comes from a
 *   separate process (this benchmark again, `--role client`, spawned through run.js) so that the
 *   client does not compete with the server for its event loop. The client uses node's
 *   `http.Agent` with keep-alive and `connections` sockets, and prints its figures as one JSON line.
 *
 * Every answer is checked: status 200 and `batch` results, none a duplicate. Any failure is counted
 * in the JSON line and printed as a WARNING. The target: HTTP requests/s ≥ 0.5× the library's.
 * The JSON line also gives the CPU each process used (% of one core), to tell a saturated server
 * from a saturated client on a small machine.
 */
import { Effect, Exit, ManagedRuntime, Scope } from "effect"
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Http from "node:http"
import type { Socket } from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import * as Feed from "../../src/feed/Feed.js"
import * as Node from "../../src/node/Node.js"
import { options, quantile, report, type Row } from "./report.js"

/** The value of every item: 98 bytes of JSON. */
const VALUE = { v: "x".repeat(90) }
const VALUE_JSON = JSON.stringify(VALUE)
const SHARDS = 1_024
const FAILURE_SAMPLES = 5

/** The workload, the same for HTTP and the library. */
interface Workload {
  readonly connections: number
  readonly batch: number
  readonly feeds: number
  readonly warmupMillis: number
  readonly millis: number
}

/** What one side measured. */
interface LoadResult {
  /** Requests answered correctly within the measured window. */
  readonly requests: number
  readonly requestsPerSecond: number
  readonly p50: number
  readonly p99: number
  readonly max: number
  /** Failed requests, warm-up included, and the first few reasons. */
  readonly failures: number
  readonly failureSamples: ReadonlyArray<string>
  /** CPU time of the process running the loops over the run's wall time, in % of one core. */
  readonly cpuPercent: number
  /** HTTP only: the sockets the client opened (keep-alive: `connections` of them). */
  readonly sockets?: number
}

const workload = (flags: Record<string, string>): Workload => ({
  connections: Number(flags.connections ?? 64),
  batch: Number(flags.batch ?? 100),
  feeds: Number(flags.feeds ?? 1_000),
  warmupMillis: Number(flags.warmup ?? 2) * 1000,
  millis: Number(flags.seconds ?? 10) * 1000
})

const tempDir = (label: string) => Fs.mkdtempSync(Path.join(Os.tmpdir(), `shardfeed-bench-${label}-`))
const sleep = (millis: number) => new Promise<void>((resolve) => setTimeout(resolve, millis))

/**
 * Runs `connections` closed loops for the warm-up and the measured window. `call(feed, firstNonce)`
 * sends one batch and rejects when the answer is wrong. Each loop owns the feeds `f` with
 * `f % connections === loop` and walks them round robin, so a feed's nonces only ever increase.
 */
const closedLoops = async (work: Workload, call: (feed: number, firstNonce: number) => Promise<void>): Promise<LoadResult> => {
  const latencies: Array<number> = []
  const failureSamples: Array<string> = []
  let failures = 0
  const nextNonce = Array.from({ length: work.feeds }, () => 1)
  const cpu = process.cpuUsage()
  const started = performance.now()
  const measureFrom = started + work.warmupMillis
  const deadline = measureFrom + work.millis
  await Promise.all(Array.from({ length: work.connections }, async (_, loop) => {
    const owned = Array.from({ length: Math.ceil((work.feeds - loop) / work.connections) }, (_, i) => loop + i * work.connections)
    if (owned.length === 0) return
    for (let round = 0; performance.now() < deadline; round++) {
      const feed = owned[round % owned.length]!
      const firstNonce = nextNonce[feed]!
      // Advanced whatever the outcome: a failed batch may have been written, its nonces are spent.
      nextNonce[feed] = firstNonce + work.batch
      const sent = performance.now()
      try {
        await call(feed, firstNonce)
        const answered = performance.now()
        if (answered >= measureFrom && answered < deadline) latencies.push(answered - sent)
      } catch (error) {
        failures++
        if (failureSamples.length < FAILURE_SAMPLES) failureSamples.push(error instanceof Error ? error.message : String(error))
        await sleep(10) // no tight loop against a server that keeps refusing
      }
    }
  }))
  const cpuUsed = process.cpuUsage(cpu)
  return {
    requests: latencies.length,
    requestsPerSecond: (latencies.length * 1000) / work.millis,
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
    max: latencies.reduce((a, b) => Math.max(a, b), 0),
    failures,
    failureSamples,
    cpuPercent: ((cpuUsed.user + cpuUsed.system) / 10) / (performance.now() - started)
  }
}

/** Checks the results of one batch: `batch` of them, every one a new entry (no duplicate). */
const checkResults = (results: unknown, batch: number): void => {
  if (!Array.isArray(results) || results.length !== batch) {
    throw new Error(`expected ${batch} results, got ${Array.isArray(results) ? results.length : JSON.stringify(results)?.slice(0, 200)}`)
  }
  for (const result of results) {
    if (typeof result !== "object" || result === null || typeof (result as { offset?: unknown }).offset !== "number") {
      throw new Error(`expected a new entry, got ${JSON.stringify(result)}`)
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The HTTP client: runs in its own process (`--role client`), prints one JSON line.

const httpBody = (firstNonce: number, batch: number): string => {
  let body = "{\"items\":["
  for (let i = 0; i < batch; i++) body += `${i === 0 ? "" : ","}{"value":${VALUE_JSON},"nonce":${firstNonce + i}}`
  return body + "]}"
}

/** One POST over the agent; answers the status and the body text. */
const post = (agent: Http.Agent, url: URL, path: string, body: string, sockets: Set<Socket>) =>
  new Promise<{ readonly status: number; readonly text: string }>((resolve, reject) => {
    const request = Http.request({
      agent,
      host: url.hostname,
      port: url.port,
      method: "POST",
      path,
      headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) }
    }, (response) => {
      const chunks: Array<Buffer> = []
      response.on("data", (chunk: Buffer) => chunks.push(chunk))
      response.on("end", () => resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }))
      response.on("error", reject)
    })
    request.on("socket", (socket) => sockets.add(socket))
    request.on("error", reject)
    request.end(body)
  })

const runClient = async (url: URL, work: Workload): Promise<void> => {
  const agent = new Http.Agent({ keepAlive: true, maxSockets: work.connections })
  const sockets = new Set<Socket>()
  try {
    const result = await closedLoops(work, async (feed, firstNonce) => {
      const answer = await post(agent, url, `/v1/feeds/bench-${feed}/append`, httpBody(firstNonce, work.batch), sockets)
      if (answer.status !== 200) throw new Error(`status ${answer.status}: ${answer.text.slice(0, 200)}`)
      checkResults((JSON.parse(answer.text) as { results?: unknown }).results, work.batch)
    })
    process.stdout.write(JSON.stringify({ ...result, sockets: sockets.size }) + "\n")
  } finally {
    agent.destroy()
  }
}

/** Spawns the client process against `base` and answers what it printed. */
const spawnClient = (base: string, work: Workload): Promise<LoadResult> =>
  new Promise((resolve, reject) => {
    const runner = Path.join(Path.dirname(fileURLToPath(import.meta.url)), "run.js")
    const child = spawn(process.execPath, [
      runner, "http", "--role", "client", "--url", base,
      "--connections", String(work.connections), "--batch", String(work.batch), "--feeds", String(work.feeds),
      "--warmup", String(work.warmupMillis / 1000), "--seconds", String(work.millis / 1000)
    ], { stdio: ["ignore", "pipe", "inherit"] })
    let output = ""
    child.stdout.setEncoding("utf8")
    child.stdout.on("data", (chunk: string) => (output += chunk))
    child.on("error", reject)
    child.on("exit", (code) => {
      const last = output.trim().split("\n").pop() ?? ""
      if (code !== 0) return reject(new Error(`the HTTP client exited with ${code}: ${last}`))
      try {
        resolve(JSON.parse(last) as LoadResult)
      } catch {
        reject(new Error(`the HTTP client printed no result: ${output.slice(0, 500)}`))
      }
    })
  })

// ---------------------------------------------------------------------------------------------
// The two sides, each on a fresh node.

/** HTTP: a node served in this process, the load from a client process; also the server's CPU %. */
const httpSide = async (work: Workload): Promise<{ readonly client: LoadResult; readonly serverCpuPercent: number }> => {
  const data = tempDir("http")
  const scope = Effect.runSync(Scope.make())
  try {
    const address = await Effect.runPromise(
      Node.serve({ data, host: "127.0.0.1", port: 0, runtime: { shardCount: SHARDS } }).pipe(Scope.provide(scope))
    )
    // The server's CPU over the client's run (its start-up of a few hundred ms included).
    const cpu = process.cpuUsage()
    const started = performance.now()
    const client = await spawnClient(`http://127.0.0.1:${address.port}`, work)
    const cpuUsed = process.cpuUsage(cpu)
    return { client, serverCpuPercent: ((cpuUsed.user + cpuUsed.system) / 10) / (performance.now() - started) }
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
    Fs.rmSync(data, { recursive: true, force: true })
  }
}

/** Library: the same node services without the HTTP server, the loops in this process. */
const librarySide = async (work: Workload): Promise<LoadResult> => {
  const data = tempDir("http-library")
  const runtime = ManagedRuntime.make(Node.layer({ data, host: "127.0.0.1", port: 0, runtime: { shardCount: SHARDS } }))
  try {
    const feeds = await runtime.runPromise(Feed.client(Feed.Json))
    return await closedLoops(work, async (feed, firstNonce) => {
      const items = Array.from({ length: work.batch }, (_, i) => ({ value: VALUE, nonce: firstNonce + i }))
      checkResults(await Effect.runPromise(feeds.append(`bench-${feed}`, items)), work.batch)
    })
  } finally {
    await runtime.dispose()
    Fs.rmSync(data, { recursive: true, force: true })
  }
}

export const main = async (args: ReadonlyArray<string>): Promise<void> => {
  const flags = options(args)
  const work = workload(flags)
  if (flags.role === "client") return runClient(new URL(flags.url!), work)

  const library = await librarySide(work)
  const { client: http, serverCpuPercent } = await httpSide(work)
  const items = (side: LoadResult) => side.requestsPerSecond * work.batch
  const shape = `${work.connections} ${work.connections === 1 ? "loop" : "loops"}, batches of ${work.batch}`
  const rows: Array<Row> = [
    {
      name: `HTTP appends, ${work.connections} keep-alive connections, batches of ${work.batch}`,
      value: http.requestsPerSecond,
      unit: "requests/s",
      baseline: "library API, same workload",
      ratio: http.requestsPerSecond / library.requestsPerSecond,
      target: ">= 0.5x"
    },
    { name: "HTTP appended items", value: items(http), unit: "items/s", baseline: "library API items", ratio: items(http) / items(library) },
    { name: `library appends, ${shape}`, value: library.requestsPerSecond, unit: "requests/s" },
    { name: "library appended items", value: items(library), unit: "items/s" },
    { name: "HTTP append latency p50", value: http.p50, unit: "ms" },
    { name: "HTTP append latency p99", value: http.p99, unit: "ms" },
    { name: "library append latency p50", value: library.p50, unit: "ms" },
    { name: "library append latency p99", value: library.p99, unit: "ms" }
  ]
  for (const [side, result] of [["HTTP", http], ["library", library]] as const) {
    if (result.failures > 0) {
      console.log(`WARNING: ${result.failures} failed ${side} requests, e.g. ${result.failureSamples.join(" | ")}`)
    }
  }
  if (http.sockets !== undefined && http.sockets !== work.connections) {
    console.log(`WARNING: the HTTP client opened ${http.sockets} sockets for ${work.connections} keep-alive connections`)
  }
  report("http", rows, {
    connections: work.connections,
    batch: work.batch,
    feeds: work.feeds,
    seconds: work.millis / 1000,
    warmupSeconds: work.warmupMillis / 1000,
    itemBytes: VALUE_JSON.length,
    shards: SHARDS,
    requests: { http: http.requests, library: library.requests },
    httpSockets: http.sockets,
    latencyMaxMs: { http: http.max, library: library.max },
    cpuPercentOfOneCore: { library: library.cpuPercent, httpServer: serverCpuPercent, httpClient: http.cpuPercent },
    failures: { http: http.failures, library: library.failures },
    failureSamples: { http: http.failureSamples, library: library.failureSamples }
  })
}
