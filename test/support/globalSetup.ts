/**
 * Vitest global setup: one private standalone redis-server and one 3-master Redis Cluster per
 * test run, on free loopback ports, persistence off. Test files read their addresses with
 * `inject("redisUrl")` and `inject("redisClusterPorts")` and isolate themselves by key prefix.
 */
import type { TestProject } from "vitest/node"
import { startRedis, startRedisCluster } from "./RedisServer.js"

declare module "vitest" {
  export interface ProvidedContext {
    redisUrl: string
    redisClusterPorts: ReadonlyArray<number>
  }
}

export default async function setup(project: TestProject) {
  const [standalone, cluster] = await Promise.all([startRedis(), startRedisCluster(3)])
  project.provide("redisUrl", standalone.url)
  project.provide("redisClusterPorts", cluster.ports)
  return async () => {
    await Promise.all([standalone.stop(), cluster.stop()])
  }
}
