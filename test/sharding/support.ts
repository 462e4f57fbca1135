/**
 * Real processes for the cluster tests: `shardfeed worker` children (the compiled CLI), the
 * client process of `test/fixtures/clusterClient.ts` driven over IPC, a monitor of every
 * worker's shard holdings, and the checks the scenarios share (exactly-once data, no shard held
 * twice, shards moved).
 */
import { type ChildProcess, fork, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { expect } from "vitest"

const cli = Path.resolve("dist/src/cli/main.js")
const clientFixture = Path.resolve("dist/test/fixtures/clusterClient.js")

/** Shards of the test clusters: the default, so that assignment and rebalancing run at full size. */
export const SHARDS = 1_024

/** Milliseconds to sleep. */
export const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis))

/** Polls `check` until it answers a value (not undefined) or `timeoutMillis` pass. */
export const waitFor = async <A>(label: string, timeoutMillis: number, check: () => Promise<A | undefined>, everyMillis = 100): Promise<A> => {
  const deadline = Date.now() + timeoutMillis
  for (;;) {
    const value = await check().catch(() => undefined)
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMillis} ms waiting for ${label}`)
    await sleep(everyMillis)
  }
}

/** GETs JSON from a worker (throws on a non-2xx answer or no answer within 2 s). */
export const getJson = async (base: string, path: string): Promise<any> => {
  // One retry of this idempotent read on a connection error ("fetch failed"): a pooled
  // keep-alive socket the server closed at the same moment fails the request before it is sent.
  const attempt = () => fetch(base + path, { signal: AbortSignal.timeout(2_000) })
  const response = await attempt().catch((error: unknown) => {
    if (error instanceof TypeError && error.message === "fetch failed") return attempt()
    throw error
  })
  if (!response.ok) throw new Error(`${path}: ${response.status}`)
  return response.json()
}

/** A worker process. */
export interface WorkerProcess {
  readonly id: string
  /** The worker's `--holdings-log` file. */
  readonly holdingsLog: string
  readonly base: string
  readonly child: ChildProcess
  readonly output: () => string
  readonly exited: () => Promise<number | null>
}

/** Options of a worker process. */
export interface WorkerSpawnOptions {
  readonly redisUrl: string
  readonly cluster: string
  readonly id: string
  readonly weight?: number
  readonly extra?: ReadonlyArray<string>
  /** Directory of the worker's holdings log. */
  readonly logDirectory: string
  /** Environment variables added to the worker's. */
  readonly env?: Record<string, string>
}

/** Starts `shardfeed worker` on free ports and waits for its banner. */
export const spawnWorker = async (options: WorkerSpawnOptions): Promise<WorkerProcess> => {
  const holdingsLog = Path.join(options.logDirectory, `${options.id}-${Date.now()}-${Math.random().toString(36).slice(2, 6)}.jsonl`)
  const args = [
    cli, "worker",
    "--redis", options.redisUrl,
    "--store", "redis",
    "--cluster", options.cluster,
    "--id", options.id,
    "--http", "127.0.0.1:0",
    "--shards", String(SHARDS),
    "--weight", String(options.weight ?? 1),
    "--holdings-log", holdingsLog,
    ...(options.extra ?? [])
  ]
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...options.env } })
  let output = ""
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()))
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()))
  const exit = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
  const base = await waitFor(`worker ${options.id} to start`, 30_000, async () => {
    if (child.exitCode !== null) throw new Error(`worker ${options.id} exited: ${output}`)
    return /API\s+(http:\/\/127\.0\.0\.1:\d+)\/v1/.exec(output)?.[1]
  }, 50).catch((error) => {
    child.kill("SIGKILL")
    throw new Error(`${String(error)}\n${output}`)
  })
  return { id: options.id, holdingsLog, base, child, output: () => output, exited: () => exit }
}

/** Sends a signal to a worker; for SIGKILL and SIGTERM, waits for it to exit. */
export const signal = async (worker: WorkerProcess, name: NodeJS.Signals): Promise<number | null> => {
  worker.child.kill(name)
  if (name === "SIGKILL" || name === "SIGTERM") return worker.exited()
  return null
}

/** What the client acknowledged for one feed. */
export interface FeedRecord {
  readonly feed: string
  readonly acked: ReadonlyArray<[nonce: number, offset: number]>
  readonly pending: number | null
  readonly firstAfterMark: number | null
}

/** The client's report when it stops. */
export interface ClientReport {
  readonly feeds: ReadonlyArray<FeedRecord>
  readonly errors: Readonly<Record<string, number>>
  readonly errorLog: ReadonlyArray<[number, string]>
}

/** The client process. */
export interface ClientProcess {
  readonly start: () => Promise<void>
  readonly mark: () => Promise<number>
  /** Feeds written since the mark. */
  readonly progress: () => Promise<number>
  readonly stop: () => Promise<ClientReport>
  readonly verify: () => Promise<Record<string, ReadonlyArray<[offset: number, nonce: number]>>>
  readonly close: () => Promise<void>
}

/** Starts the client process for `feeds` feeds named `<prefix>-<i>`. */
export const startClient = async (redisUrl: string, cluster: string, prefix: string, feeds: number): Promise<ClientProcess> => {
  const child = fork(clientFixture, [redisUrl, cluster, prefix, String(feeds), String(SHARDS)], { stdio: ["ignore", "pipe", "pipe", "ipc"] })
  let output = ""
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()))
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()))
  const replies: Array<any> = []
  const waiting: Array<(reply: any) => void> = []
  child.on("message", (reply: any) => {
    const next = waiting.shift()
    if (next !== undefined) next(reply)
    else replies.push(reply)
  })
  const exit = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  const next = (label: string, timeoutMillis: number): Promise<any> =>
    new Promise((resolve, reject) => {
      const queued = replies.shift()
      if (queued !== undefined) return resolve(queued)
      const timer = setTimeout(() => reject(new Error(`client: no answer to ${label} within ${timeoutMillis} ms\n${output}`)), timeoutMillis)
      waiting.push((reply) => {
        clearTimeout(timer)
        if (reply.type === "error") reject(new Error(`client: ${reply.message}`))
        else resolve(reply)
      })
    })
  const ask = (cmd: string, timeoutMillis = 60_000) => {
    child.send({ cmd })
    return next(cmd, timeoutMillis)
  }
  await next("ready", 30_000)
  return {
    start: async () => void (await ask("start")),
    mark: async () => (await ask("mark")).at,
    progress: async () => (await ask("progress")).writtenSinceMark,
    stop: async () => (await ask("stop", 90_000)) as ClientReport,
    verify: async () => (await ask("verify", 120_000)).feeds,
    close: async () => {
      if (child.exitCode === null) child.send({ cmd: "exit" })
      await Promise.race([exit, sleep(10_000).then(() => void child.kill("SIGKILL"))])
    }
  }
}

/**
 * Every acknowledged entry is in its feed exactly once, at the offset it was acknowledged with;
 * offsets run 1, 2, 3... and nonces increase; the only entry not acknowledged may be a writer's
 * last, pending nonce (its append failed as far as the client knows, yet may have been written).
 */
export const expectExactlyOnce = (report: ClientReport, entries: Record<string, ReadonlyArray<[number, number]>>) => {
  let acknowledged = 0
  for (const record of report.feeds) {
    const stored = entries[record.feed] ?? []
    const offsets = stored.map(([offset]) => offset)
    expect(offsets, `${record.feed}: offsets`).toEqual(Array.from({ length: stored.length }, (_, i) => i + 1))
    const nonces = stored.map(([, nonce]) => nonce)
    const expected = record.acked.map(([nonce]) => nonce)
    const extra = nonces.filter((nonce) => !expected.includes(nonce))
    expect(extra.every((nonce) => nonce === record.pending), `${record.feed}: entries never acknowledged: ${extra.join(", ")}`).toBe(true)
    expect(nonces.filter((nonce) => nonce !== record.pending || expected.includes(nonce)), `${record.feed}: acknowledged nonces, once each, in order`).toEqual(expected)
    const offsetOf = new Map(stored.map(([offset, nonce]) => [nonce, offset]))
    for (const [nonce, offset] of record.acked) {
      if (offset !== -1) expect(offsetOf.get(nonce), `${record.feed}: offset of nonce ${nonce}`).toBe(offset)
    }
    acknowledged += record.acked.length
  }
  return acknowledged
}

/** The owners of every shard as a worker reads the map. */
export const owners = async (base: string): Promise<ReadonlyArray<string | null>> => (await getJson(base, "/v1/cluster")).owners

/** Waits until every shard is owned by one of `live` (and no other), in Redis as `base` reads it. */
export const waitAllOwnedBy = (base: string, live: ReadonlyArray<string>, timeoutMillis: number) =>
  waitFor(`every shard owned by ${live.join(", ")}`, timeoutMillis, async () => {
    const map = await owners(base)
    return map.every((owner) => owner !== null && live.includes(owner)) ? map : undefined
  }, 50)

/** Waits until the map is the balanced assignment of `live`: each within ±10% of its equal share. */
export const waitBalanced = (base: string, live: ReadonlyArray<string>, timeoutMillis: number) =>
  waitFor(`a balanced map over ${live.join(", ")}`, timeoutMillis, async () => {
    const map = await owners(base)
    if (!map.every((owner) => owner !== null && live.includes(owner))) return undefined
    const share = map.length / live.length
    const counts = live.map((id) => map.filter((owner) => owner === id).length)
    return counts.every((count) => Math.abs(count - share) <= share * 0.1 + 1) ? map : undefined
  }, 100)

/** The fraction of shards whose owner differs between two maps. */
export const movedFraction = (before: ReadonlyArray<string | null>, after: ReadonlyArray<string | null>) =>
  before.filter((owner, shard) => owner !== after[shard]).length / before.length

interface Holding {
  readonly worker: string
  readonly shard: number
  readonly epoch: number
  readonly since: number
  until: number
}

/**
 * Reads every worker's holdings log (`--holdings-log`: a line, written synchronously, as each
 * shard holding begins and ends) and checks that no two holdings of one shard ever overlapped in
 * time (one machine, one clock). A holding still open in the log of a worker that was killed
 * ends at the kill; of a worker still running, it is open (and must match Redis's map).
 */
export const holdingsMonitor = () => {
  const logs: Array<{ readonly worker: WorkerProcess; end: number }> = []
  const read = () => {
    const holdings: Array<Holding> = []
    for (const log of logs) {
      const open = new Map<string, Holding>()
      const text = Fs.existsSync(log.worker.holdingsLog) ? Fs.readFileSync(log.worker.holdingsLog, "utf8") : ""
      for (const line of text.split("\n")) {
        if (line === "") continue
        const record = JSON.parse(line) as { shard: number; epoch: number; since: number; until?: number; ended: boolean }
        const key = `${record.shard}/${record.epoch}/${record.since}`
        if (!record.ended) {
          const holding = { worker: log.worker.id, shard: record.shard, epoch: record.epoch, since: record.since, until: log.end }
          open.set(key, holding)
          holdings.push(holding)
        } else {
          const holding = open.get(key)
          if (holding !== undefined) holding.until = record.until!
          open.delete(key)
        }
      }
    }
    return holdings
  }
  return {
    add: (worker: WorkerProcess) => void logs.push({ worker, end: Number.POSITIVE_INFINITY }),
    /** The worker was killed (or exited) at `at`: nothing it held lasted beyond. */
    ended: (worker: WorkerProcess, at: number) => {
      for (const log of logs) if (log.worker === worker) log.end = at
    },
    /** Checks every log, and that the open holdings are the map `owners` reads from Redis. */
    check: (owners: ReadonlyArray<string | null>) => {
      const holdings = read()
      const byShard = new Map<number, Array<Holding>>()
      for (const holding of holdings) {
        const list = byShard.get(holding.shard) ?? []
        list.push(holding)
        byShard.set(holding.shard, list)
      }
      const overlaps: Array<string> = []
      for (const [shard, list] of byShard) {
        list.sort((a, b) => a.since - b.since)
        // The holding reaching furthest so far: any later one of another worker must start after it.
        let reach = list[0]!
        for (let i = 1; i < list.length; i++) {
          const current = list[i]!
          if (current.worker !== reach.worker && current.since < reach.until) {
            overlaps.push(`shard ${shard}: ${reach.worker} (epoch ${reach.epoch}, until ${reach.until}) and ${current.worker} (epoch ${current.epoch}, since ${current.since})`)
          }
          if (current.worker !== list[i - 1]!.worker) expect(current.epoch, `shard ${shard}: epochs grow with owners`).toBeGreaterThan(list[i - 1]!.epoch)
          if (current.until >= reach.until) reach = current
        }
      }
      expect(overlaps.slice(0, 20), "shards held by two workers at once").toEqual([])
      const holders = owners.map((_, shard) => (byShard.get(shard) ?? []).filter((holding) => holding.until === Number.POSITIVE_INFINITY).map((holding) => holding.worker))
      const disagreements = owners.flatMap((owner, shard) => (holders[shard]!.length === 1 && holders[shard]![0] === owner ? [] : [`shard ${shard}: Redis ${owner}, holders ${holders[shard]!.join(", ")}`]))
      expect(disagreements.slice(0, 20), "the map in Redis and the workers' own holdings").toEqual([])
      return holdings.length
    }
  }
}
