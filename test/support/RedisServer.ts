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

/** Whether `port` can be bound on loopback now (0: any port); answers the port bound, or undefined. */
const probe = (port: number): Promise<number | undefined> =>
  new Promise((resolve) => {
    const server = Net.createServer()
    server.once("error", () => resolve(undefined))
    server.listen(port, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => resolve(address !== null && typeof address === "object" ? address.port : undefined))
    })
  })

/** Ports this process handed out: the kernel may offer a probed port again. */
const handedOut = new Set<number>()
/** A cluster node also listens on its port + 10000 (its cluster bus). */
const BUS_OFFSET = 10_000

/**
 * Asks the kernel for a free loopback port (and, for a cluster node, one whose bus port is free
 * too). Another process may still take it before the server binds it: `startServer` checks.
 */
export const freePort = async (options: { readonly bus?: boolean } = {}): Promise<number> => {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = await probe(0)
    if (port === undefined || handedOut.has(port)) continue
    const bus = port + BUS_OFFSET
    if (options.bus === true && (bus > 65_535 || handedOut.has(bus) || (await probe(bus)) === undefined)) continue
    handedOut.add(port)
    if (options.bus === true) handedOut.add(bus)
    return port
  }
  throw new Error("no free loopback port after 100 tries")
}

/** The pid of the redis-server answering on `port`, once it answers (undefined: none did in time). */
const answeringPid = async (options: ServerOptions, timeoutMillis: number, exited: () => boolean): Promise<number | undefined> => {
  const deadline = Date.now() + timeoutMillis
  const access = [
    ...(options.password === undefined ? [] : ["--no-auth-warning", "-a", options.password]),
    ...(options.tls === undefined ? [] : ["--tls", "--cacert", options.tls.ca])
  ]
  while (!exited()) {
    try {
      const { stdout } = await execFileAsync("redis-cli", ["-p", String(options.port), ...access, "info", "server"])
      const pid = /process_id:(\d+)/.exec(stdout)?.[1]
      if (pid !== undefined) return Number(pid)
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) return undefined
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return undefined
}

interface ServerOptions {
  readonly port: number
  readonly dir: string
  readonly cluster?: boolean
  /** `always` or `everysec` turns the append-only file on, for restart tests. */
  readonly appendfsync?: "always" | "everysec"
  /** Clients must AUTH with this password. */
  readonly password?: string
  /** TLS only (no plain port), with these PEM files; clients need not present a certificate. */
  readonly tls?: { readonly cert: string; readonly key: string; readonly ca: string }
}

const startServer = async (options: ServerOptions): Promise<ChildProcess> => {
  await Fs.mkdir(options.dir, { recursive: true })
  const args = [
    ...(options.tls === undefined
      ? ["--port", String(options.port)]
      : ["--port", "0", "--tls-port", String(options.port), "--tls-cert-file", options.tls.cert, "--tls-key-file", options.tls.key,
        "--tls-ca-cert-file", options.tls.ca, "--tls-auth-clients", "no"]),
    ...(options.password === undefined ? [] : ["--requirepass", options.password]),
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
  // The server answering must be this one: a server that lost the port to another process exits,
  // and a ping alone would reach the other process's server.
  const exited = () => child.exitCode !== null || child.signalCode !== null
  const pid = await answeringPid(options, 10_000, exited)
  if (pid === child.pid) return child
  const lost = exited() || pid !== undefined
  await stopChild(child)
  if (lost) throw new PortTaken(options.port)
  throw new Error(`redis-server on port ${options.port} did not answer within 10 s`)
}

/** Another process took the port first. */
class PortTaken extends Error {
  constructor(readonly port: number) {
    super(`redis-server could not serve on port ${port}: another process has it`)
  }
}

/** Starts a server on a fresh free port, again on another one when a port is lost to a race. */
const startOnFreePort = async (options: (port: number) => ServerOptions, bus: boolean): Promise<{ port: number; child: ChildProcess }> => {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort({ bus })
    try {
      return { port, child: await startServer(options(port)) }
    } catch (error) {
      if (!(error instanceof PortTaken) || attempt >= 5) throw error
    }
  }
}

const stopChild = (child: ChildProcess): Promise<void> =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    child.once("exit", () => resolve())
    child.kill("SIGKILL")
  })

/**
 * A private certificate authority and a server certificate for 127.0.0.1 in `dir`, made with
 * openssl: what a TLS Redis needs, and the CA a client must trust.
 */
const makeCertificates = async (dir: string) => {
  const at = (name: string) => Path.join(dir, name)
  const openssl = (...args: Array<string>) => execFileAsync("openssl", args)
  await openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=shardfeed test CA", "-keyout", at("ca.key"), "-out", at("ca.pem"))
  await openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", at("server.key"), "-out", at("server.csr"))
  await Fs.writeFile(at("san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
  await openssl("x509", "-req", "-in", at("server.csr"), "-CA", at("ca.pem"), "-CAkey", at("ca.key"), "-CAcreateserial", "-days", "2",
    "-extfile", at("san.ext"), "-out", at("server.pem"))
  return { cert: at("server.pem"), key: at("server.key"), ca: at("ca.pem") }
}

/**
 * Starts a standalone redis-server with persistence off (or an AOF when asked), optionally with
 * a password and TLS only; `url` carries both (`rediss://:<password>@...`), and `ca` is the
 * certificate a TLS client must trust.
 */
export const startRedis = async (
  options: { readonly appendfsync?: "always" | "everysec"; readonly password?: string; readonly tls?: boolean } = {}
): Promise<RedisProcess & { readonly ca?: string }> => {
  const dir = await Fs.mkdtemp(Path.join(Os.tmpdir(), "shardfeed-redis-"))
  const tls = options.tls === true ? await makeCertificates(dir) : undefined
  const base = { dir, appendfsync: options.appendfsync, password: options.password, tls }
  const started = await startOnFreePort((port) => ({ port, ...base }), false)
  const port = started.port
  const serverOptions = { port, ...base }
  let child = started.child
  const auth = options.password === undefined ? "" : `:${encodeURIComponent(options.password)}@`
  return {
    ports: [port],
    url: `${tls === undefined ? "redis" : "rediss"}://${auth}127.0.0.1:${port}`,
    ...(tls === undefined ? {} : { ca: tls.ca }),
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
    const started = await startOnFreePort(serverOptions, true)
    ports.push(started.port)
    children.push(started.child)
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
