/**
 * Cuts client connections to a Redis (every node of a Redis Cluster), sparing those open when the
 * cutter was made and its own: on a Redis of a test's own, what it cuts is what the test started
 * afterwards (the node under test), never the test's producers or readers made before.
 */
import { Redis } from "ioredis"
import type { RedisProcess } from "./RedisServer.js"

export interface ConnectionCutter {
  /** Cuts every connection opened since the cutter was made; answers how many it cut. */
  readonly cut: () => Promise<number>
  readonly close: () => void
}

const clientIds = async (admin: Redis) =>
  [...String(await admin.call("CLIENT", "LIST")).matchAll(/(?:^| )id=(\d+)/gm)].map((match) => match[1]!)

export const connectionCutter = async (redis: RedisProcess): Promise<ConnectionCutter> => {
  const admins = redis.ports.map((port) => new Redis({ host: "127.0.0.1", port, lazyConnect: true }))
  await Promise.all(admins.map((admin) => admin.connect()))
  const spared = await Promise.all(admins.map(async (admin) => new Set(await clientIds(admin))))
  return {
    cut: async () => {
      let cut = 0
      for (const [i, admin] of admins.entries()) {
        for (const id of await clientIds(admin)) {
          if (spared[i]!.has(id)) continue
          // A connection that closed meanwhile is fine: it is cut already.
          await admin.call("CLIENT", "KILL", "ID", id).catch(() => undefined)
          cut++
        }
      }
      return cut
    },
    close: () => {
      for (const admin of admins) admin.disconnect()
    }
  }
}
