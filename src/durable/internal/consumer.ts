/**
 * The consumer of durable messages. It delivers a message only when it heads its entity's lane,
 * so an entity's messages are handled in arrival order and a failing message is retried (BullMQ's
 * attempts and backoff) before any later one, while other entities go on. A message that must
 * wait either waits here for its head to finish (at most four per lane, a quarter of the slots in
 * all) or is parked: moved to BullMQ's delayed set, and promoted by whoever releases the head. A
 * message that fails `attemptsMax` times (or whose attempts were used up by crashes) goes to the
 * dead letters and the lane moves on.
 *
 * It processes jobs "manually" (BullMQ's documented pattern: a `Worker` without a processor, jobs
 * fetched and finished by this loop, locks extended and stalled jobs recovered as the Worker would)
 * because BullMQ's own processing loop costs more CPU per job than everything this module adds.
 * Delivery itself (decoding, the `Messenger`) is given by the caller; this module knows lanes.
 */
import { Job, UnrecoverableError, Worker } from "bullmq"
import { backoffMillis, type DurableConfig } from "../DurableConfig.js"
import * as Bull from "./bullConnection.js"
import type { DeadLetterRecord, DurableQueue, MessageData, NewHead } from "./durableQueue.js"
import { BATCH_MAX } from "./durableScripts.js"

/** The outcome of one delivery. */
export type Delivery =
  | { readonly ok: true }
  /** `permanent`: retrying cannot help (the message cannot even be decoded): dead-letter now. */
  | { readonly ok: false; readonly error: string; readonly permanent: boolean }

/** What the consumer reports. */
export interface ConsumerHooks {
  readonly deliver: (message: MessageData) => Promise<Delivery>
  readonly delivered: (type: string, outcome: "ok" | "retry" | "dead") => void
  readonly parked: () => void
  readonly deadLettered: (record: DeadLetterRecord, dropped: number) => void
  readonly log: (message: string) => void
}

/** What one lane sweep did. */
export interface LaneSweep {
  /** Lanes looked at (each at most once per sweep). */
  readonly lanes: number
  /** Finished heads dropped from their lanes. */
  readonly dropped: number
  /** Lanes left empty, deleted. */
  readonly emptied: number
  /** Parked heads woken. */
  readonly promoted: number
  /** Heads BullMQ failed by itself, moved to the dead letters. */
  readonly deadLettered: number
}

/** A running consumer. */
export interface Consumer {
  /**
   * Sweeps the lanes no message was claimed from since `staleBefore` (default: one sweep period
   * ago): see `DurableConfig.laneSweepEveryMillis`. Bounded: `SWEEP_STEPS_MAX` steps of
   * `BATCH_MAX` lanes; what is left waits for the next sweep.
   */
  readonly sweepLanes: (staleBefore?: number) => Promise<LaneSweep>
  readonly close: () => Promise<void>
}

/** Claims one message may make while it waits here before it is parked instead. */
const CLAIMS_PER_RUN_MAX = 16
/** Longest wait here for a lane's head before looking again (a busy slot must not wait long). */
const LOCAL_WAIT_MAX_MILLIS = 1_000
/** How soon to look again when the head's retry is already due (it is about to run). */
const RECHECK_MILLIS = 20
/** Messages of one lane waiting here at most; more are parked. */
const LANE_WAITERS_MAX = 4
/** The shortest park: a head due to retry sooner is waited for here. */
const PARK_MIN_MILLIS = 50
/** Characters of an error kept in a dead letter and in BullMQ's failed reason. */
const ERROR_TEXT_MAX = 1_000
/** Job ids per lock-extension call. */
const LOCK_CHUNK = 1_000
/** Pause after a failed fetch (Redis away) before the next one. */
const FETCH_RETRY_MILLIS = 1_000
/** Steps of one lane sweep at most (each looks at up to `BATCH_MAX` lanes). */
const SWEEP_STEPS_MAX = 100

/**
 * A message waiting here for its lane's head. It is registered *before* its claim is sent, so a
 * release answered between the claim's execution and its reply still finds it and wakes it.
 */
interface Waiter {
  readonly jobId: string
  woken: boolean
  wake: () => void
}

/** What became of a job this turn; the loop then finishes it with BullMQ accordingly. */
type Outcome =
  | { readonly _tag: "Completed" }
  | { readonly _tag: "Failed"; readonly error: Error }
  /** Already moved off the active list (parked), or left to BullMQ's stall recovery. */
  | { readonly _tag: "Moved" }

const laneOf = (message: MessageData) => `${message.t}:${message.e}`

/** Another producer's job in this queue would corrupt the lanes: refuse it before touching them. */
const isMessage = (data: unknown): data is MessageData =>
  typeof data === "object" && data !== null &&
  typeof (data as MessageData).t === "string" && typeof (data as MessageData).e === "string" && typeof (data as MessageData).m === "string"

const sleep = (millis: number) => new Promise<void>((resolve) => setTimeout(resolve, millis))

/** Starts consuming; `close` lets the messages being handled finish (or park) and stops. */
export const start = async (durable: DurableQueue, hooks: ConsumerHooks): Promise<Consumer> => {
  const config: DurableConfig = durable.config
  const { connection, release } = Bull.connect(durable.parsed, durable.connection, "consumer")
  const worker = new Worker<MessageData, string>(config.queueName, null, {
    connection,
    prefix: config.prefix,
    autorun: false,
    concurrency: config.concurrency,
    lockDuration: config.lockDurationMillis,
    stalledInterval: config.stalledIntervalMillis,
    // Our own count of attempts begun (the lane's `starts`) dead-letters a message whose worker
    // keeps crashing; BullMQ's stall limit is only a backstop far above it.
    maxStalledCount: config.attemptsMax * 2,
    drainDelay: 5,
    removeOnComplete: { count: 0 },
    removeOnFail: { count: config.failedJobsKept },
    settings: {
      backoffStrategy: (attemptsMade: number) => backoffMillis(config, attemptsMade)
    }
  })
  worker.on("error", (error) => hooks.log(`durable consumer: ${Bull.translate("consume", error).message}`))
  await Bull.readyWithin(worker.waitUntilReady(), worker, release, durable.parsed, durable.connection)
  const token = worker.id
  const active = new Map<string, Job<MessageData>>()
  let closing = false
  let slotFreed: (() => void) | undefined

  // ------------------------------------------------------------------ waiting here

  const waiters = new Map<string, Map<string, Waiter>>()
  const waitersMax = Math.max(1, Math.floor(config.concurrency / 4))
  let waiting = 0
  const register = (lane: string, jobId: string): Waiter | undefined => {
    let ofLane = waiters.get(lane)
    if (closing || waiting >= waitersMax || (ofLane !== undefined && ofLane.size >= LANE_WAITERS_MAX)) return undefined
    if (ofLane === undefined) {
      ofLane = new Map()
      waiters.set(lane, ofLane)
    }
    const waiter: Waiter = { jobId, woken: false, wake: () => undefined }
    ofLane.set(jobId, waiter)
    waiting++
    return waiter
  }
  const unregister = (lane: string, jobId: string) => {
    const ofLane = waiters.get(lane)
    if (ofLane?.delete(jobId) === true) {
      waiting--
      if (ofLane.size === 0) waiters.delete(lane)
    }
  }
  const waitHere = (waiter: Waiter, millis: number) =>
    waiter.woken ? Promise.resolve() : new Promise<void>((resolve) => {
      const timer = setTimeout(done, millis)
      function done() {
        clearTimeout(timer)
        resolve()
      }
      waiter.wake = done
    })

  /** Hands a lane over to its new head: wakes it if it waits here, promotes it if it is parked. */
  const handOver = (lane: string, next: NewHead) => {
    const waiter = next.head === "" ? undefined : waiters.get(lane)?.get(next.head)
    if (waiter !== undefined) {
      waiter.woken = true
      waiter.wake()
    }
    if (next.head !== "" && next.parked) {
      durable.promote(next.head).catch((error: unknown) => hooks.log(`promoting ${next.head} failed: ${Bull.translate("promote", error).message}`))
    }
  }

  // ------------------------------------------------------------------ one message

  const deadLetter = async (job: Job<MessageData>, attempts: number, error: string) => {
    const message = job.data
    const dedup = job.opts.deduplication?.id
    const prefix = `${message.t}:${message.e}:`
    const record: DeadLetterRecord = {
      id: job.id!,
      type: message.t,
      entity: message.e,
      message: message.p === undefined ? { _tag: message.m } : { _tag: message.m, payload: message.p },
      attempts,
      error: error.slice(0, ERROR_TEXT_MAX),
      deadAt: Date.now(),
      ...(dedup !== undefined && dedup.startsWith(prefix) ? { dedupId: dedup.slice(prefix.length) } : {})
    }
    const next = await durable.deadLetter(message, record)
    hooks.delivered(message.t, "dead")
    hooks.deadLettered(record, next.dropped)
    handOver(laneOf(message), next)
  }

  /** A head that BullMQ failed by itself (its stall limit): copied to the dead letters first. */
  const deadLetterFailedHead = async (headId: string) => {
    const head = await Job.fromId<MessageData>(durable.queue, headId)
    if (head === undefined) return
    await deadLetter(head, head.attemptsMade, head.failedReason ?? "failed by BullMQ (stalled too many times)")
  }

  const park = async (job: Job<MessageData>, retryAt: number): Promise<Outcome> => {
    const message = job.data
    const now = Date.now()
    const until = retryAt > now ? now + Math.min(Math.max(retryAt - now, PARK_MIN_MILLIS), config.parkMaxMillis) : now + config.parkMaxMillis
    await durable.client.hset(durable.keys.laneMeta(message.t, message.e), { [`p:${job.id}`]: 1 })
    await job.moveToDelayed(until, token)
    hooks.parked()
    // The head may have finished between the claim and the park, and its release then found no
    // parked flag to promote: look once more, so the message does not sleep for nothing.
    const head = await durable.client.zrange(durable.keys.lane(message.t, message.e), 0, 0)
    if (head[0] === job.id) await durable.promote(job.id!)
    return { _tag: "Moved" }
  }

  const run = async (job: Job<MessageData>, starts: number): Promise<Outcome> => {
    const message = job.data
    if (starts > config.attemptsMax) {
      // Attempts were begun and never ended: the worker died handling it, again and again.
      await deadLetter(job, starts - 1, `the worker handling it stopped ${starts - 1} times without an outcome`)
      return { _tag: "Failed", error: new UnrecoverableError("dead-lettered: its attempts were used up by worker crashes") }
    }
    const outcome = await hooks.deliver(message)
    if (outcome.ok) {
      hooks.delivered(message.t, "ok")
      return { _tag: "Completed" }
    }
    if (outcome.permanent || starts >= config.attemptsMax) {
      await deadLetter(job, starts, outcome.error)
      return { _tag: "Failed", error: new UnrecoverableError(outcome.error.slice(0, ERROR_TEXT_MAX)) }
    }
    // Waiting messages of this entity park until the retry is due, not a poll interval at a time.
    const retryAt = Date.now() + backoffMillis(config, job.attemptsMade + 1, () => 0)
    await durable.noteRetry(message, job.id!, retryAt)
    hooks.delivered(message.t, "retry")
    return { _tag: "Failed", error: new Error(outcome.error.slice(0, ERROR_TEXT_MAX)) }
  }

  /** Decides what to do with one message: deliver it, wait for its head, or park it. */
  const handle = async (job: Job<MessageData>): Promise<Outcome> => {
    if (!isMessage(job.data)) return { _tag: "Failed", error: new UnrecoverableError("not a durable message: its data lacks t, e or m") }
    const lane = laneOf(job.data)
    const jobId = job.id!
    try {
      for (let round = 0; round < CLAIMS_PER_RUN_MAX; round++) {
        const waiter = register(lane, jobId)
        const claim = await durable.claim(job.data, jobId, waiter === undefined)
        switch (claim._tag) {
          case "Run":
            unregister(lane, jobId)
            return await run(job, claim.starts)
          case "Dead":
            return { _tag: "Failed", error: new UnrecoverableError("dead-lettered already") }
          case "FailedHead":
            unregister(lane, jobId)
            await deadLetterFailedHead(claim.head)
            continue
          case "Wait": {
            const due = claim.retryAt === 0 ? LOCAL_WAIT_MAX_MILLIS : claim.retryAt - Date.now()
            if (waiter === undefined || due > LOCAL_WAIT_MAX_MILLIS) {
              unregister(lane, jobId)
              return await park(job, claim.retryAt)
            }
            await waitHere(waiter, Math.max(due, RECHECK_MILLIS))
            unregister(lane, jobId)
          }
        }
      }
      return await park(job, 0)
    } finally {
      unregister(lane, jobId)
    }
  }

  // ------------------------------------------------------------------ the loop

  /** Finishes a job with BullMQ; answers the next job when BullMQ handed one over with it. */
  const finish = async (job: Job<MessageData>, outcome: Outcome): Promise<Job<MessageData> | undefined> => {
    if (outcome._tag === "Moved") return undefined
    const fetchNext = !closing && active.size <= config.concurrency
    const next = outcome._tag === "Completed"
      ? await job.moveToCompleted("ok", token, fetchNext)
      : await job.moveToFailed(outcome.error, token, fetchNext)
    if (outcome._tag === "Completed") {
      // The lane's release waits for BullMQ's completion: a message leaves its lane only once
      // BullMQ will never hand it out again (see the lane invariant).
      durable.release(job.data, job.id!, (head) => handOver(laneOf(job.data), head), (error: unknown) =>
        hooks.log(`releasing ${job.id} failed (the next claim will): ${Bull.translate("release", error).message}`))
    }
    return Array.isArray(next) && next[0] ? Job.fromJSON<MessageData>(worker, next[0], next[1]) : undefined
  }

  /** Handles jobs one after another in one slot, as long as BullMQ hands the next one over. */
  const slot = async (first: Job<MessageData>) => {
    let job: Job<MessageData> | undefined = first
    while (job !== undefined) {
      const current: Job<MessageData> = job
      active.set(current.id!, current)
      try {
        const outcome = await handle(current).catch((error: unknown): Outcome => {
          // Redis went away mid-way: leave the job to BullMQ's stall recovery (its lock expires).
          hooks.log(`durable message ${current.id} abandoned: ${Bull.translate("deliver", error).message}`)
          return { _tag: "Moved" }
        })
        job = await finish(current, outcome).catch((error: unknown) => {
          hooks.log(`finishing durable message ${current.id} failed: ${Bull.translate("finish", error).message}`)
          return undefined
        })
      } finally {
        active.delete(current.id!)
      }
    }
    slotFreed?.()
  }

  /** Fills free slots with fetched jobs; when the queue is empty it blocks on BullMQ's marker. */
  const pump = async () => {
    let drained = false
    while (!closing) {
      if (active.size >= config.concurrency) {
        await new Promise<void>((resolve) => {
          slotFreed = resolve
        })
        slotFreed = undefined
        continue
      }
      let job: Job<MessageData> | undefined
      try {
        job = await worker.getNextJob(token, { block: drained }) as Job<MessageData> | undefined
      } catch (error) {
        if (!closing) hooks.log(`fetching durable messages failed: ${Bull.translate("fetch", error).message}`)
        await sleep(FETCH_RETRY_MILLIS)
        continue
      }
      drained = job === undefined
      if (job !== undefined) void slot(job)
    }
  }

  /** Extends the locks of every message held here, as BullMQ's own processing loop does. */
  const extendLocks = async () => {
    const ids = [...active.keys()]
    for (let start = 0; start < ids.length; start += LOCK_CHUNK) {
      const chunk = ids.slice(start, start + LOCK_CHUNK)
      const lost = await worker.extendJobLocks(chunk, chunk.map(() => token), config.lockDurationMillis)
      if (lost.length > 0) hooks.log(`lost the locks of ${lost.length} durable messages; another worker may take them over`)
    }
  }
  // ------------------------------------------------------------------ the lane sweep

  const sweepLanes = async (staleBefore = Date.now() - config.laneSweepEveryMillis): Promise<LaneSweep> => {
    let lanes = 0
    let dropped = 0
    let emptied = 0
    let promoted = 0
    let deadLettered = 0
    for (let step = 0; step < SWEEP_STEPS_MAX && !closing; step++) {
      const found = await durable.sweep(staleBefore, BATCH_MAX)
      lanes += found.lanes.length
      dropped += found.dropped
      // A live head is BullMQ's to deliver (a message waiting for it in a process looks again
      // within a second); a parked one sleeps until woken or its delay ends, so it is woken.
      for (const { verdict, head } of found.lanes) {
        if (verdict === "Emptied") emptied++
        else if (verdict === "Parked" && await durable.promote(head)) promoted++
        else if (verdict === "FailedHead") {
          await deadLetterFailedHead(head)
          deadLettered++
        }
      }
      // Every lane looked at left the stale range (deleted, or registered again with now).
      if (found.lanes.length < BATCH_MAX) break
    }
    if (dropped + promoted + deadLettered > 0) {
      hooks.log(`lane sweep: ${dropped} finished heads dropped, ${emptied} lanes deleted, ${promoted} parked heads woken, ${deadLettered} failed heads dead-lettered`)
    }
    return { lanes, dropped, emptied, promoted, deadLettered }
  }

  await Bull.orClose(worker.startStalledCheckTimer(), worker, release)
  const lockTimer = setInterval(() => {
    extendLocks().catch((error: unknown) => hooks.log(`extending locks failed: ${Bull.translate("extend locks", error).message}`))
  }, Math.max(100, Math.floor(config.lockDurationMillis / 2)))
  let sweeping = false
  const sweepTimer = config.laneSweepEveryMillis === 0 ? undefined : setInterval(() => {
    if (sweeping) return
    sweeping = true
    sweepLanes().catch((error: unknown) => hooks.log(`sweeping lanes failed: ${Bull.translate("sweep", error).message}`)).finally(() => {
      sweeping = false
    })
  }, config.laneSweepEveryMillis)
  const pumping = pump()

  return {
    sweepLanes,
    close: async () => {
      closing = true
      clearInterval(sweepTimer)
      for (const ofLane of [...waiters.values()]) {
        for (const waiter of [...ofLane.values()]) {
          waiter.woken = true
          waiter.wake()
        }
      }
      slotFreed?.()
      // The pump may be blocked on BullMQ's marker: closing the worker ends that wait, but only
      // after the messages being handled here are finished, so wait for them first (bounded by
      // the delivery timeout: every handler either answers or times out).
      const deadline = Date.now() + config.deliveryTimeoutMillis + config.lockDurationMillis
      while (active.size > 0 && Date.now() < deadline) await sleep(10)
      clearInterval(lockTimer)
      // Forced: nothing of ours is active any more, and a graceful close would wait out the
      // blocking fetch (up to `drainDelay`).
      await worker.close(true).finally(release)
      await pumping
    }
  }
}
