/**
 * The lane operations of a consumer, batched by group commit: claims and releases go out as (at
 * most) two script calls, with one round in flight; what arrives meanwhile goes out together when
 * it returns, so batches grow with the load. The Node process, not Redis, limits how many durable messages a worker handles,
 * and per-call costs dominate per-item ones. Releases answer through a callback (no promise per
 * message: nobody awaits a release). Bounded: a flush takes at most `BATCH_MAX` of each kind, and
 * at most `waitingMax` operations may wait.
 */
import type { RedisClient } from "bullmq"
import type { DurableKeys } from "../durableKeys.js"
import { BatcherFull } from "./batcher.js"
import * as Bull from "./bullConnection.js"
import { BATCH_MAX } from "./durableScripts.js"

/** A claim's verdict for one message. */
export type Claim =
  | { readonly _tag: "Run"; readonly starts: number }
  | { readonly _tag: "Wait"; readonly head: string; readonly retryAt: number }
  | { readonly _tag: "Dead" }
  | { readonly _tag: "FailedHead"; readonly head: string }

/** A lane's new head after a release or a dead letter ('' when the lane emptied). */
export interface NewHead {
  readonly head: string
  readonly parked: boolean
}

interface PendingClaim {
  readonly laneId: string
  readonly jobId: string
  readonly park: boolean
  readonly resolve: (claim: Claim) => void
  readonly reject: (error: unknown) => void
}

interface PendingRelease {
  readonly laneId: string
  readonly jobId: string
  readonly done: (head: NewHead) => void
  readonly failed: (error: unknown) => void
}

const decodeClaim = (value: number | string): Claim => {
  if (typeof value === "number") return value > 0 ? { _tag: "Run", starts: value } : { _tag: "Dead" }
  if (value.startsWith("f")) return { _tag: "FailedHead", head: value.slice(1) }
  const colon = value.indexOf(":")
  if (!value.startsWith("w") || colon < 0) throw new Error(`claim script answered ${value}`)
  return { _tag: "Wait", retryAt: Number(value.slice(1, colon)), head: value.slice(colon + 1) }
}

const decodeHead = (value: string): NewHead => (value === "" ? { head: "", parked: false } : { head: value.slice(1), parked: value.startsWith("p") })

/** Batched claims and releases over one client. */
export class LaneOps {
  private claims: Array<PendingClaim> = []
  private releases: Array<PendingRelease> = []
  private scheduled = false
  private waiting = 0
  private inFlight = false

  constructor(private readonly client: RedisClient, private readonly keys: DurableKeys, private readonly waitingMax: number) {}

  /** Claims a message (see the `claim-3` script). */
  claim(laneId: string, jobId: string, park: boolean): Promise<Claim> {
    if (this.waiting >= this.waitingMax) return Promise.reject(new BatcherFull(`more than ${this.waitingMax} lane operations waiting`))
    this.waiting++
    return new Promise((resolve, reject) => {
      this.claims.push({ laneId, jobId, park, resolve, reject })
      this.schedule()
    })
  }

  /** Releases a finished message; `done` gets the lane's new head. */
  release(laneId: string, jobId: string, done: (head: NewHead) => void, failed: (error: unknown) => void): void {
    if (this.waiting >= this.waitingMax) return failed(new BatcherFull(`more than ${this.waitingMax} lane operations waiting`))
    this.waiting++
    this.releases.push({ laneId, jobId, done, failed })
    this.schedule()
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight) return
    this.scheduled = true
    setImmediate(() => {
      this.scheduled = false
      this.flush()
    })
  }

  private flush(): void {
    const claims = this.claims.splice(0, BATCH_MAX)
    const releases = this.releases.splice(0, BATCH_MAX)
    if (claims.length === 0 && releases.length === 0) return
    this.inFlight = true
    // Two direct calls, sent back to back: no pipeline object (ioredis copies every script of the
    // client onto each one, which costs more than the write it would save).
    let left = (claims.length > 0 ? 1 : 0) + (releases.length > 0 ? 1 : 0)
    const settled = () => {
      if (--left > 0) return
      this.inFlight = false
      // What arrived meanwhile goes out now, together.
      if (this.claims.length > 0 || this.releases.length > 0) this.schedule()
    }
    if (claims.length > 0) {
      const args: Array<string | number> = [this.keys.ownPrefix, this.keys.jobPrefix, Date.now()]
      for (const claim of claims) args.push(claim.laneId, claim.jobId, claim.park ? 1 : 0)
      Bull.run(this.client, "sfClaim-3", [this.keys.deadLetterData, this.keys.failed, this.keys.openLanes], args).then((values) => {
        this.waiting -= claims.length
        settled()
        ;(values as ReadonlyArray<number | string>).forEach((value, i) => claims[i]!.resolve(decodeClaim(value)))
      }, (error: unknown) => {
        this.waiting -= claims.length
        settled()
        for (const claim of claims) claim.reject(error)
      })
    }
    if (releases.length > 0) {
      const args: Array<string | number> = [this.keys.ownPrefix]
      for (const release of releases) args.push(release.laneId, release.jobId)
      Bull.run(this.client, "sfRelease-2", [this.keys.deadLetterData, this.keys.openLanes], args).then((values) => {
        this.waiting -= releases.length
        settled()
        ;(values as ReadonlyArray<string>).forEach((value, i) => releases[i]!.done(decodeHead(value)))
      }, (error: unknown) => {
        this.waiting -= releases.length
        settled()
        for (const release of releases) release.failed(error)
      })
    }
  }
}
