/**
 * A Redis lease: one holder at a time, identified by a random token, held for a duration and
 * renewed by check-and-set scripts (`leaseAcquire-1`, `leaseRenew-1`, `leaseRelease-1`). The
 * holder trusts its lease only for half the duration after its last successful renewal, so a
 * holder that stops renewing (paused, cut off) stops acting well before another can take over.
 * It does not fence anything by itself: callers must check `held()` before acting.
 */
import type { RedisClient } from "bullmq"
import { randomBytes } from "node:crypto"
import * as Bull from "./bullConnection.js"

/** One holder's view of a lease. */
export interface Lease {
  readonly token: string
  /** Takes the lease if free (or extends it if ours); answers the ms to wait when another holds it (0: taken). */
  readonly acquire: () => Promise<number>
  /** Extends the lease; false when it was lost. */
  readonly renew: () => Promise<boolean>
  /** Whether this holder may act now (local clock, half the lease after the last renewal). */
  readonly held: () => boolean
  readonly release: () => Promise<void>
}

/** A lease on `key` for `durationMillis`. */
export const make = (client: RedisClient, key: string, durationMillis: number, now: () => number = Date.now): Lease => {
  const token = randomBytes(12).toString("hex")
  let trustedUntil = 0
  const trust = (from: number) => {
    trustedUntil = from + Math.floor(durationMillis / 2)
  }
  return {
    token,
    acquire: async () => {
      const asked = now()
      const [taken, pttl] = await Bull.run(client, "sfLeaseAcquire-1", [key], [token, durationMillis]) as [number, number]
      if (taken === 1) {
        trust(asked)
        return 0
      }
      trustedUntil = 0
      return Math.max(1, pttl)
    },
    renew: async () => {
      const asked = now()
      const renewed = await Bull.run(client, "sfLeaseRenew-1", [key], [token, durationMillis]) as number
      if (renewed === 1) trust(asked)
      else trustedUntil = 0
      return renewed === 1
    },
    held: () => now() < trustedUntil,
    release: async () => {
      trustedUntil = 0
      await Bull.run(client, "sfLeaseRelease-1", [key], [token])
    }
  }
}
