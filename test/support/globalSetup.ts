/**
 * Vitest global setup: one private standalone redis-server and one 3-master Redis Cluster per
 * test run, on free loopback ports, persistence off. Test files read their addresses with
 * `inject("redisUrl")` and `inject("redisClusterPorts")` and isolate themselves by key prefix.
 * It also builds `dist/` so tests can spawn compiled worker processes.
 */
import { execFileSync } from "node:child_process"
import { createRequire } from "node:module"
import * as Path from "node:path"
import type { TestProject } from "vitest/node"
import { startRedis, startRedisCluster } from "./RedisServer.js"

declare module "vitest" {
  export interface ProvidedContext {
    redisUrl: string
    redisClusterPorts: ReadonlyArray<number>
  }
}

/**
 * Builds `dist/` first: multi-process tests spawn workers and fixtures from the compiled code.
 * tsc emits even when it reports type errors; `npm test` type-checks strictly before vitest
 * starts, so here the errors are only printed.
 */
const build = () => {
  const manifest = createRequire(import.meta.url).resolve("typescript/package.json")
  const tsc = Path.join(Path.dirname(manifest), "bin", "tsc")
  try {
    execFileSync(process.execPath, [tsc, "-p", "tsconfig.json"], { stdio: "pipe" })
  } catch (error) {
    console.warn(`tsc reported errors while building dist/:\n${String((error as { stdout?: unknown }).stdout ?? error)}`)
  }
}

export default async function setup(project: TestProject) {
  build()
  const [standalone, cluster] = await Promise.all([startRedis(), startRedisCluster(3)])
  project.provide("redisUrl", standalone.url)
  project.provide("redisClusterPorts", cluster.ports)
  return async () => {
    await Promise.all([standalone.stop(), cluster.stop()])
  }
}
