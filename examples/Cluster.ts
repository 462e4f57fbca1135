/**
 * Scale out on one machine: starts a private redis-server (Debian's `redis-server`, on a free
 * port, in a temp directory) and three `shardfeed worker` processes against it, waits until the
 * 1,024 shards are spread over the three, appends to a few feeds through one worker (any worker
 * routes any request to the owner), and prints every worker's dashboard. Open one and watch the
 * shard map; stop a worker (`kill <pid>`, a graceful leave) or start another and watch it change.
 * Ctrl-C stops everything.
 *
 * Run: `npm run build && node dist/examples/Cluster.js [--seconds N]` (with `--seconds`, it stops
 * by itself after N seconds; otherwise it runs until Ctrl-C).
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

const cli = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "../src/cli/main.js")
const seconds = process.argv.includes("--seconds") ? Number(process.argv[process.argv.indexOf("--seconds") + 1]) : undefined
const children: Array<ChildProcess> = []

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = Net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as Net.AddressInfo
      server.close(() => resolve(port))
    })
  })

const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis))

/** Starts a process and resolves with what `ready` finds in its output (within 30 s). */
const start = (command: string, args: ReadonlyArray<string>, ready: RegExp) =>
  new Promise<RegExpExecArray>((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] })
    children.push(child)
    let output = ""
    const timer = setTimeout(() => reject(new Error(`${command} was not ready within 30 s:\n${output}`)), 30_000)
    const look = (chunk: Buffer) => {
      output += chunk.toString()
      const found = ready.exec(output)
      if (found !== null) {
        clearTimeout(timer)
        resolve(found)
      }
    }
    child.stdout!.on("data", look)
    child.stderr!.on("data", look)
    child.once("exit", (code) => reject(new Error(`${command} exited with ${code}:\n${output}`)))
  })

/** SIGTERM to every process (workers leave gracefully); any still running after 10 s is killed and named. */
const stopAll = () => {
  const running = [...children].reverse().filter((child) => child.exitCode === null && child.signalCode === null)
  for (const child of running) child.kill("SIGTERM")
  setTimeout(() => {
    for (const child of running) {
      if (child.exitCode !== null || child.signalCode !== null) continue
      console.error(`${child.spawnargs.slice(0, 4).join(" ")} did not stop within 10 s of SIGTERM: killed`)
      child.kill("SIGKILL")
    }
  }, 10_000).unref()
}

const main = async () => {
  const directory = Fs.mkdtempSync(Path.join(Os.tmpdir(), "shardfeed-example-redis-"))
  process.once("exit", () => Fs.rmSync(directory, { recursive: true, force: true }))
  const port = await freePort()
  await start("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--dir", directory, "--save", "", "--appendonly", "yes", "--appendfsync", "always"], /Ready to accept connections/)
  const redis = `redis://127.0.0.1:${port}`
  console.log(`redis-server on ${redis} (append-only file, fsync always)`)
  const workers = await Promise.all(["worker-1", "worker-2", "worker-3"].map(async (id) => {
    const [, base] = await start(process.execPath, [cli, "worker", "--redis", redis, "--id", id, "--http", "127.0.0.1:0"], /API\s+(http:\/\/[^\s]+)\/v1/)
    return { id, base: base! }
  }))
  // Bounded: 30 s for the three to share the shards.
  for (let waited = 0; waited < 30_000; waited += 200) {
    const { owners } = (await (await fetch(`${workers[0]!.base}/v1/cluster`, { signal: AbortSignal.timeout(10_000) })).json()) as { owners: Array<string | null> }
    const counts = workers.map(({ id }) => owners.filter((owner) => owner === id).length)
    if (counts.every((count) => count > 300)) {
      console.log(`3 workers own ${counts.join(" + ")} of ${owners.length} shards`)
      break
    }
    await sleep(200)
  }
  for (let i = 1; i <= 5; i++) {
    await fetch(`${workers[0]!.base}/v1/feeds/match-${i}/append`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      signal: AbortSignal.timeout(10_000),
      body: JSON.stringify({ items: [{ value: { minute: i * 10, event: "goal" }, nonce: 1 }] })
    })
  }
  const metadata = await (await fetch(`${workers[2]!.base}/v1/feeds/match-3`, { signal: AbortSignal.timeout(10_000) })).json()
  console.log(`appended to 5 feeds through ${workers[0]!.id}; ${workers[2]!.id} reads match-3: ${JSON.stringify(metadata)}`)
  for (const worker of workers) console.log(`dashboard of ${worker.id}: ${worker.base}/dashboard`)
  if (seconds !== undefined) {
    await sleep(seconds * 1_000)
    stopAll()
  }
}

/** Stopped from outside before it finished by itself (`--seconds`): exits non-zero. */
const interrupted = () => {
  if (seconds !== undefined) process.exitCode = 1
  stopAll()
}
process.once("SIGINT", interrupted)
process.once("SIGTERM", interrupted)
main().catch((error) => {
  console.error(error)
  stopAll()
  process.exitCode = 1
})
