/**
 * Goal: workers run against a Redis that wants a password and speaks only TLS, as managed Redis
 * services do: `rediss://:<password>@host:port`, the password never printed.
 * Method: a private redis-server with `--requirepass` and a TLS port only (certificates from a
 * private CA made with openssl); two `shardfeed worker` processes given the URL, trusting the CA
 * through NODE_EXTRA_CA_CERTS (the standard Node way). They share the shards and serve feeds
 * through each other; a worker given the wrong password exits with an error that does not
 * contain it.
 */
import { strict as assert } from "node:assert"
import { execFile } from "node:child_process"
import * as Path from "node:path"
import { promisify } from "node:util"
import { afterAll, beforeAll, describe, it } from "vitest"
import { call } from "../server/support.js"
import { type RedisProcess, startRedis } from "../support/RedisServer.js"
import { tempDir } from "../support/tempDir.js"
import { signal, spawnWorker, waitBalanced } from "./support.js"

const PASSWORD = "s3cret pass/word"
const cli = Path.resolve("dist/src/cli/main.js")
const run = promisify(execFile)

describe("a password-protected, TLS-only Redis", () => {
  let redis: RedisProcess & { readonly ca?: string }
  beforeAll(async () => {
    redis = await startRedis({ password: PASSWORD, tls: true })
  }, 60_000)
  afterAll(async () => {
    await redis?.stop()
  })

  it("coordinates workers over rediss:// with the password, and never prints it", async () => {
    assert.match(redis.url, /^rediss:\/\/:.+@127\.0\.0\.1:\d+$/)
    const env = { NODE_EXTRA_CA_CERTS: redis.ca! }
    const logDirectory = tempDir("secure-redis")
    const cluster = `secure-${Math.random().toString(36).slice(2, 8)}`
    const workers = await Promise.all(["s1", "s2"].map((id) => spawnWorker({ redisUrl: redis.url, cluster, id, logDirectory, env })))
    try {
      await waitBalanced(workers[0]!.base, ["s1", "s2"], 30_000)
      for (let i = 0; i < 10; i++) {
        const appended = await call(workers[i % 2]!.base, "POST", `/v1/feeds/secure-${i}/append`, { items: [{ value: i, nonce: 1 }] })
        assert.equal(appended.status, 200, appended.text)
      }
      for (let i = 0; i < 10; i++) {
        const metadata = await call(workers[(i + 1) % 2]!.base, "GET", `/v1/feeds/secure-${i}`)
        assert.equal(metadata.body.count, 1, metadata.text)
      }
      for (const worker of workers) {
        assert.ok(!worker.output().includes(PASSWORD) && !worker.output().includes(encodeURIComponent(PASSWORD)), worker.output())
        assert.match(worker.output(), /coordination rediss:\/\/:\*\*\*@127\.0\.0\.1/)
      }
    } finally {
      await Promise.all(workers.map((worker) => signal(worker, "SIGTERM")))
    }
    // The wrong password: the worker stops at once with exit code 1 and says why.
    const wrong = redis.url.replace(encodeURIComponent(PASSWORD), "wrong-password")
    const refused = await run(process.execPath, [cli, "worker", "--redis", wrong, "--http", "127.0.0.1:0", "--shards", "16", "--cluster", cluster], {
      env: { ...process.env, ...env },
      timeout: 60_000
    }).then(() => undefined, (error: { code: number; stdout: string; stderr: string }) => error)
    assert.ok(refused !== undefined && refused.code === 1, `exit code ${refused?.code}`)
    assert.match(refused!.stderr, /WRONGPASS|invalid username-password/i)
    assert.ok(!refused!.stderr.includes("wrong-password") && !refused!.stdout.includes("wrong-password"), refused!.stderr)
  }, 90_000)
})
