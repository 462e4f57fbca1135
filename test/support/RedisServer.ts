/**
 * Private redis-server processes for tests and benchmarks: a standalone server and a 3-master
 * Redis Cluster, each on free loopback ports with persistence off, in a temp directory.
 *
 * Tests never touch a Redis they did not start (the machine's own on 6379 included), and they
 * never flush: each test file isolates itself with its own key prefix.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process"
import * as Fs from "node:fs/promises"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { promisify } from "node:util"

const execFileAsync = promisify(execFile)

/** A running redis-server (or cluster) that stops with `stop`. */
export interface RedisProcess {
  readonly ports: ReadonlyArray<number>
  readonly url: string
  readonly stop: () => Promise<void>
  /** Kills the servers, waits `downMillis` (default 0), restarts them on the same ports. */
  readonly restart?: (downMillis?: number) => Promise<void>
}

/** Asks the kernel for a free loopback port. */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = Net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => {
        if (address !== null && typeof address === "object") resolve(address.port)
        else reject(new Error("no port"))
      })
    })
  })

const waitForPing = async (port: number, timeoutMillis: number): Promise<void> => {
  const deadline = Date.now() + timeoutMillis
  for (;;) {
    try {
      const { stdout } = await execFileAsync("redis-cli", ["-p", String(port), "ping"])
      if (stdout.trim() === "PONG") return
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer within ${timeoutMillis} ms`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

interface ServerOptions {
  readonly port: number
  readonly dir: string
  readonly cluster?: boolean
  /** `always` or `everysec` turns the append-only file on, for restart tests. */
  readonly appendfsync?: "always" | "everysec"
}

const startServer = async (options: ServerOptions): Promise<ChildProcess> => {
  await Fs.mkdir(options.dir, { recursive: true })
  const args = [
    "--port", String(options.port),
    "--bind", "127.0.0.1",
    "--dir", options.dir,
    "--save", "",
    "--daemonize", "no",
    "--protected-mode", "yes",
    "--logfile", Path.join(options.dir, "redis.log")
  ]
  if (options.appendfsync !== undefined) {
    args.push("--appendonly", "yes", "--appendfsync", options.appendfsync)
  } else {
    args.push("--appendonly", "no")
  }
  if (options.cluster === true) {
    args.push("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000")
  }
  const child = spawn("redis-server", args, { stdio: "ignore" })
  await waitForPing(options.port, 10_000)
  return child
}

const stopChild = (child: ChildProcess): Promise<void> =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    child.once("exit", () => resolve())
    child.kill("SIGKILL")
  })

/** Starts a standalone redis-server with persistence off (or an AOF when asked). */
export const startRedis = async (
  options: { readonly appendfsync?: "always" | "everysec" } = {}
): Promise<RedisProcess> => {
  const port = await freePort()
  const dir = await Fs.mkdtemp(Path.join(Os.tmpdir(), "shardfeed-redis-"))
  const serverOptions = { port, dir, ...options }
  let child = await startServer(serverOptions)
  return {
    ports: [port],
    url: `redis://127.0.0.1:${port}`,
    stop: async () => {
      await stopChild(child)
      await Fs.rm(dir, { recursive: true, force: true })
    },
    restart: async (downMillis = 0) => {
      await stopChild(child)
      await new Promise((resolve) => setTimeout(resolve, downMillis))
      child = await startServer(serverOptions)
    }
  }
}

/** Starts a Redis Cluster of `masters` masters (no replicas) and waits until it is healthy. */
export const startRedisCluster = async (
  masters = 3,
  options: { readonly appendfsync?: "always" | "everysec" } = {}
): Promise<RedisProcess> => {
  const root = await Fs.mkdtemp(Path.join(Os.tmpdir(), "shardfeed-redis-cluster-"))
  const ports: Array<number> = []
  const children: Array<ChildProcess> = []
  const serverOptions = (port: number) => ({ port, dir: Path.join(root, String(port)), cluster: true, ...options })
  for (let i = 0; i < masters; i++) {
    const port = await freePort()
    ports.push(port)
    children.push(await startServer(serverOptions(port)))
  }
  await execFileAsync("redis-cli", [
    "--cluster", "create", ...ports.map((port) => `127.0.0.1:${port}`), "--cluster-replicas", "0", "--cluster-yes"
  ])
  const healthy = async () => {
    const deadline = Date.now() + 20_000
    for (;;) {
      const answers = await Promise.all(ports.map((port) => execFileAsync("redis-cli", ["-p", String(port), "cluster", "info"]).then(({ stdout }) => stdout, () => "")))
      if (answers.every((stdout) => stdout.includes("cluster_state:ok"))) return
      if (Date.now() > deadline) throw new Error("Redis Cluster did not reach cluster_state:ok")
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
  await healthy()
  return {
    ports,
    url: ports.map((port) => `redis://127.0.0.1:${port}`).join(","),
    stop: async () => {
      await Promise.all(children.map(stopChild))
      await Fs.rm(root, { recursive: true, force: true })
    },
    // Every node restarts from its nodes.conf (and its append-only file, when on).
    restart: async (downMillis = 0) => {
      await Promise.all(children.map(stopChild))
      await new Promise((resolve) => setTimeout(resolve, downMillis))
      const restarted = await Promise.all(ports.map((port) => startServer(serverOptions(port))))
      children.splice(0, children.length, ...restarted)
      await healthy()
    }
  }
}
