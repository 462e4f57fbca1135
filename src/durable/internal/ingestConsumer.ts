/**
 * The ingest bridge's consumer: one lease holder per queue takes jobs in queue order, batches
 * them per feed and completes each job only after its feed acknowledged the append. Feed nonces
 * only grow, so a job appended after a later job of its feed would be dropped as a duplicate and
 * lost; hence the order rules:
 *
 * - one consumer per queue (the lease); it fetches jobs through one ordered pipeline;
 * - one append in flight per feed, batches in fetch order, a failed append retried before any
 *   later batch of its feed;
 * - on taking the lease over, the previous holder's unfinished jobs (BullMQ's active list) go back
 *   to the front of the wait list, oldest first, before anything else is fetched;
 * - a dropped connection, a failed take or a failed re-queue ends the tenure, and the next one
 *   takes the queue over again: a take may have run with its reply lost (`distrust`), and a job
 *   left behind by a takeover would later be re-queued in front of older ones.
 *
 * Jobs that do not parse or that the feed refuses go to BullMQ's failed set with their reason.
 * Feed appends themselves are given by the caller (`IngestHooks`); this module knows BullMQ.
 */
import { Job, Worker } from "bullmq"
import { type ParsedEntry, type Parsers, parseJob, Unparsable } from "../IngestParser.js"
import * as Bull from "./bullConnection.js"
import * as DurableKeys from "../durableKeys.js"
import * as Lease from "./lease.js"

/** The bounds and timings of one bridge (validated by `IngestBridge`). */
export interface IngestSettings {
  readonly queue: string
  readonly prefix: string
  readonly parsers: Parsers
  readonly flushIntervalMillis: number
  readonly batchItemsMax: number
  readonly batchBytesMax: number
  readonly inFlightJobsMax: number
  readonly fetchAheadMax: number
  readonly appendsInFlightMax: number
  readonly leaseMillis: number
  readonly lockDurationMillis: number
  readonly completedJobsKept: number
  readonly failedJobsKept: number
}

/** An entry ready to append, with its encoded size. */
export interface PreparedItem {
  readonly value: unknown
  readonly nonce: number | string | undefined
  readonly timestamp: number | undefined
  readonly bytes: number
}

/** What became of one append. */
export type AppendOutcome =
  | { readonly _tag: "Ok"; readonly duplicates: ReadonlyArray<boolean> }
  /** The feed refused item `index` (bad value, nonce or an old timestamp); the rest was not written. */
  | { readonly _tag: "ItemRefused"; readonly index: number; readonly reason: string }
  /** The feed refused the whole append and always will (no such feed type): the jobs fail. */
  | { readonly _tag: "BatchRefused"; readonly reason: string }
  /** Not now (mailbox full, shard moving, store away): the same batch is tried again. */
  | { readonly _tag: "Retry"; readonly reason: string }

/** What the consumer asks of and reports to its owner. */
export interface IngestHooks {
  /** Checks an entry against the feed's schema; a string is the reason it cannot be appended. */
  readonly prepare: (entry: ParsedEntry) => PreparedItem | string
  readonly append: (feed: string, items: ReadonlyArray<PreparedItem>) => Promise<AppendOutcome>
  readonly counted: (outcome: "appended" | "duplicate" | "failed", count: number) => void
  readonly batched: (items: number) => void
  readonly tookOver: (requeued: number) => void
  readonly log: (message: string) => void
}

/** Counts for dashboards and tests. */
export interface IngestStats {
  readonly holding: boolean
  readonly inFlight: number
  readonly feedsBuffered: number
}

/** A running consumer. */
export interface IngestConsumer {
  readonly stats: () => IngestStats
  readonly close: () => Promise<void>
}

/** Previous holder's jobs re-queued at most per takeover step (the loop repeats until none remain). */
const REQUEUE_CHUNK = 1_000
/** Takeover steps at most (each re-queues a chunk); the active list is bounded by `inFlightJobsMax`. */
const REQUEUE_STEPS_MAX = 10_000
/** Job ids per lock-extension call. */
const LOCK_CHUNK = 1_000
/** Polling an empty queue: from this delay, doubling to the max (no blocking fetch: see `fetch`). */
const IDLE_POLL_MIN_MILLIS = 5
const IDLE_POLL_MAX_MILLIS = 200
/** Retrying an append that failed for a passing reason: from this delay, doubling to the max. */
const RETRY_MIN_MILLIS = 50
const RETRY_MAX_MILLIS = 5_000
/** Characters of a failure reason kept in BullMQ's failed set. */
const REASON_TEXT_MAX = 1_000
/** How long `close` waits for buffered batches to be appended before giving up on them. */
const CLOSE_DRAIN_MILLIS = 15_000

const sleep = (millis: number) => new Promise<void>((resolve) => setTimeout(resolve, millis))

interface Buffered {
  readonly job: Job
  readonly item: PreparedItem
}

interface FeedBatch {
  readonly feed: string
  pending: Array<Buffered>
  bytes: number
  appending: boolean
  /** Waiting in the tenure's `ready` queue for an append slot. */
  queued: boolean
  /** When the oldest pending item must be flushed (0 when none pends). */
  dueAt: number
}

/** One tenure of the lease: everything fetched under it, dropped together when it is lost. */
interface Tenure {
  readonly feeds: Map<string, FeedBatch>
  /** Fetched and not yet completed or failed, by job id. */
  readonly inFlight: Map<string, Job>
  /** Feeds in the order their oldest pending item arrived (stale entries are skipped). */
  readonly due: Array<FeedBatch>
  /** Feeds due or full, waiting for an append slot, in the order they became so. */
  readonly ready: Array<FeedBatch>
  /** Appends in flight (at most `appendsInFlightMax`). */
  appending: number
  /**
   * Every call that may hand over a job (a fetch, or a completion that fetches the next job), in
   * the order the calls were made: that is the order Redis runs them, so taking results in this
   * order takes jobs in queue order.
   */
  readonly ordered: Array<{ readonly fetch: boolean; readonly job: Promise<Job | undefined> }>
  ended: boolean
}

/** Starts the consumer: it waits for the lease, takes the queue over, and runs until closed. */
export const start = async (
  connection: Bull.BullConnectionOptions,
  parsed: Bull.ParsedUrl,
  settings: IngestSettings,
  hooks: IngestHooks
): Promise<IngestConsumer> => {
  // Bursts of commands leave in one socket write: corked on a standalone Redis (cheaper),
  // auto-pipelined on a cluster (no single socket to cork).
  const { connection: consumer, release } = Bull.connect(parsed, connection, parsed.cluster ? "pipelinedConsumer" : "consumer")
  const worker = new Worker(settings.queue, null, {
    connection: consumer,
    prefix: settings.prefix,
    autorun: false,
    lockDuration: settings.lockDurationMillis,
    // BullMQ's stalled checker would re-queue a crashed holder's jobs late and out of order; the
    // takeover does it in order instead, and this consumer extends its own locks.
    skipStalledCheck: true,
    skipLockRenewal: true,
    maxStalledCount: 0,
    drainDelay: 1,
    removeOnComplete: { count: settings.completedJobsKept },
    removeOnFail: { count: settings.failedJobsKept }
  })
  worker.on("error", (error) => hooks.log(`ingest ${settings.queue}: ${Bull.translate("consume", error).message}`))
  await Bull.readyWithin(worker.waitUntilReady(), worker, release, parsed, connection)
  const client = await Bull.orClose(worker.backend.client, worker, release)
  Bull.defineScripts(client)
  const keys = DurableKeys.make(settings.prefix, settings.queue)
  const lease = Lease.make(client, keys.lease, settings.leaseMillis)
  let closing = false
  let tenure: Tenure | undefined

  // ------------------------------------------------------------------ the ordered job stream

  /**
   * Why calls straight to BullMQ's backend: `backend.moveToActive` and `backend.moveToCompleted`
   * both await the same connection promise once and then send their command, so calls made in
   * one order are sent, run and answered in that order (`Worker.getNextJob` and
   * `Job.moveToCompleted` add different numbers of asynchronous steps, which could reorder them).
   * The crash test checks the outcome: any reordering loses entries to the nonce check.
   */
  const backend = worker.backend
  const cork = Bull.corker(client)
  // A dropped connection may have taken jobs whose replies were lost: see `distrust`.
  Bull.onConnectionLost(client, () => {
    if (tenure !== undefined) distrust(tenure, "the connection to Redis dropped")
  })
  const toJob = (raw: ReadonlyArray<unknown> | undefined): Job | undefined => {
    const [data, id] = raw ?? []
    return data === null || data === undefined || typeof id !== "string" ? undefined : Job.fromJSON(worker, data as never, id)
  }

  /** Whether the tenure wants more jobs now: it holds the lease and is under its in-flight bound. */
  const wantsJobs = (current: Tenure) =>
    !closing && !current.ended && lease.held() && current.inFlight.size + current.ordered.length < settings.inFlightJobsMax

  /**
   * Ends the tenure because the order of the stream can no longer be trusted: a call that may
   * have taken a job failed, or the connection dropped with such calls in flight. Redis may have
   * run such a call and lost only its reply (and ioredis re-sends unanswered calls after a
   * reconnection, which takes yet another job): the job it took would sit in the active list,
   * skipped, while later jobs of its feed were appended, and be dropped as a duplicate when it
   * came back. The next tenure's takeover puts every active job back in queue order first.
   */
  const distrust = (current: Tenure, why: string) => {
    if (current.ended || closing) return
    current.ended = true
    hooks.log(`ingest ${settings.queue}: ${why}; taking the queue over again so that no job taken meanwhile is skipped`)
  }

  const fetch = (current: Tenure) => {
    current.ordered.push({
      fetch: true,
      job: backend.moveToActive(lease.token).then(toJob, (error: unknown) => {
        distrust(current, `fetching failed: ${Bull.translate("fetch", error).message}`)
        return undefined
      })
    })
  }

  /**
   * Completes a job whose entry the feed acknowledged; the same call fetches the next job (one
   * out, one in: the in-flight count stays where it is, so this never breaks its bound), which
   * makes one Redis call per job in the steady state, as BullMQ's own worker does.
   */
  const complete = (current: Tenure, job: Job, duplicate: boolean) => {
    const fetchNext = !closing && !current.ended && lease.held()
    const completing = backend.moveToCompleted(job, duplicate ? "duplicate" : "appended", job.opts.removeOnComplete as never, lease.token, fetchNext)
    const settled = completing.then(
      ({ result }) => {
        current.inFlight.delete(job.id!)
        return fetchNext ? toJob(result as ReadonlyArray<unknown> | undefined) : undefined
      },
      (error: unknown) => {
        current.inFlight.delete(job.id!)
        // After a lost lease the next holder re-queued it; its entry is in the feed, and
        // appending it again is a duplicate by nonce.
        if (fetchNext) distrust(current, `completing job ${job.id} (and fetching the next) failed: ${Bull.translate("complete", error).message}`)
        else if (!current.ended) hooks.log(`completing ingest job ${job.id} failed: ${Bull.translate("complete", error).message}`)
        return undefined
      }
    )
    if (fetchNext) current.ordered.push({ fetch: false, job: settled })
  }

  const fail = (current: Tenure, job: Job, reason: string) => {
    hooks.counted("failed", 1)
    // Straight to the failed set, whatever attempts the producer asked for: the job cannot parse
    // or its feed refused it, and would again.
    backend.moveToFailed(job, reason.slice(0, REASON_TEXT_MAX), job.opts.removeOnFail as never, lease.token, false).then(
      () => current.inFlight.delete(job.id!),
      (error: unknown) => {
        current.inFlight.delete(job.id!)
        if (!current.ended) hooks.log(`failing ingest job ${job.id} failed: ${Bull.translate("fail", error).message}`)
      }
    )
  }

  // ------------------------------------------------------------------ batches per feed

  /**
   * Asks for an append of a feed's pending items. Appends in flight are bounded: a due batch
   * waits for a slot and meanwhile gathers more items, so under load batches grow by themselves
   * and a busy bridge makes fewer, larger appends.
   */
  const requestFlush = (current: Tenure, batch: FeedBatch) => {
    if (batch.appending || batch.queued || batch.pending.length === 0 || current.ended) return
    batch.queued = true
    current.ready.push(batch)
    startAppends(current)
  }

  /** Starts appends of ready batches while slots are free; each feed has one append at a time. */
  const startAppends = (current: Tenure) => {
    // Bounded by the ready queue, each entry looked at once.
    while (current.appending < settings.appendsInFlightMax && current.ready.length > 0) {
      const batch = current.ready.shift()!
      batch.queued = false
      if (current.ended || batch.appending || batch.pending.length === 0 || current.feeds.get(batch.feed) !== batch) continue
      batch.appending = true
      current.appending++
      const taken = take(batch)
      hooks.batched(taken.length)
      appendInOrder(current, batch.feed, taken).then(() => undefined, (error: unknown) => {
        hooks.log(`appending to ${batch.feed} failed unexpectedly: ${String(error)}`)
      }).finally(() => {
        batch.appending = false
        current.appending--
        if (batch.pending.length === 0) {
          if (current.feeds.get(batch.feed) === batch) current.feeds.delete(batch.feed)
        } else if (closing || isFull(batch) || batch.dueAt <= Date.now()) requestFlush(current, batch)
        else schedule(current, batch)
        startAppends(current)
      })
    }
  }

  const isFull = (batch: FeedBatch) => batch.pending.length >= settings.batchItemsMax || batch.bytes >= settings.batchBytesMax

  /** Takes the oldest pending items up to the item and byte bounds (at least one). */
  const take = (batch: FeedBatch): Array<Buffered> => {
    let count = 0
    let bytes = 0
    while (count < batch.pending.length && count < settings.batchItemsMax) {
      const next = batch.pending[count]!.item.bytes
      if (count > 0 && bytes + next > settings.batchBytesMax) break
      bytes += next
      count++
    }
    const taken = batch.pending.splice(0, count)
    batch.bytes -= bytes
    batch.dueAt = batch.pending.length === 0 ? 0 : Date.now() + settings.flushIntervalMillis
    return taken
  }

  /**
   * Appends a batch; an item the feed refuses fails alone and the rest is appended again, a
   * passing failure retries the same batch. Nothing later of this feed goes before it.
   */
  const appendInOrder = async (current: Tenure, feed: string, batch: Array<Buffered>) => {
    let retryMillis = RETRY_MIN_MILLIS
    // Bounded: each round either ends, removes one refused item, or waits (and the tenure ends
    // with the lease, which stops the retries of a feed that stays unavailable).
    while (batch.length > 0 && !current.ended) {
      const outcome = await hooks.append(feed, batch.map((buffered) => buffered.item))
      switch (outcome._tag) {
        case "Ok": {
          let duplicates = 0
          cork()
          batch.forEach((buffered, i) => {
            if (outcome.duplicates[i] === true) duplicates++
            complete(current, buffered.job, outcome.duplicates[i] === true)
          })
          hooks.counted("appended", batch.length - duplicates)
          if (duplicates > 0) hooks.counted("duplicate", duplicates)
          return
        }
        case "ItemRefused": {
          const [refused] = batch.splice(outcome.index, 1)
          if (refused !== undefined) fail(current, refused.job, `feed ${feed} refused the entry: ${outcome.reason}`)
          break
        }
        case "BatchRefused":
          for (const buffered of batch) fail(current, buffered.job, `feed ${feed} refused the append: ${outcome.reason}`)
          return
        case "Retry":
          if (retryMillis >= RETRY_MAX_MILLIS) hooks.log(`appending to feed ${feed} keeps failing: ${outcome.reason}`)
          await sleep(retryMillis)
          retryMillis = Math.min(retryMillis * 2, RETRY_MAX_MILLIS)
          if (!lease.held() && !closing) return
      }
    }
  }

  const schedule = (current: Tenure, batch: FeedBatch) => {
    if (batch.dueAt === 0) batch.dueAt = Date.now() + settings.flushIntervalMillis
    current.due.push(batch)
  }

  /** Flushes the batches whose oldest item waited a flush interval. */
  const flushDue = (current: Tenure) => {
    const now = Date.now()
    // Bounded by the queue's length; every entry is looked at once.
    while (current.due.length > 0) {
      const batch = current.due[0]!
      if (batch.dueAt > now && batch.pending.length > 0 && current.feeds.get(batch.feed) === batch) break
      current.due.shift()
      if (current.feeds.get(batch.feed) === batch && batch.pending.length > 0) requestFlush(current, batch)
    }
  }

  /** Takes one fetched job, in fetch order, into its feed's batch (or fails it). */
  const accept = (current: Tenure, job: Job) => {
    const entry = parseJob(settings.parsers, { name: job.name, id: job.id, timestamp: job.timestamp, data: job.data })
    if (entry instanceof Unparsable) return fail(current, job, entry.reason)
    const item = hooks.prepare(entry)
    if (typeof item === "string") return fail(current, job, item)
    let batch = current.feeds.get(entry.feed)
    if (batch === undefined) {
      batch = { feed: entry.feed, pending: [], bytes: 0, appending: false, queued: false, dueAt: 0 }
      current.feeds.set(entry.feed, batch)
    }
    batch.pending.push({ job, item })
    batch.bytes += item.bytes
    if (batch.pending.length === 1 && !batch.appending) schedule(current, batch)
    if (isFull(batch)) requestFlush(current, batch)
  }

  // ------------------------------------------------------------------ taking jobs in order

  /**
   * Takes jobs from the ordered stream, topping it up with fetches while the tenure wants jobs.
   * An empty queue is polled, never waited on with a blocking fetch: a blocking fetch could take
   * a job after the lease was lost, and only the holder may take jobs.
   */
  const takeLoop = async (current: Tenure) => {
    let idleMillis = IDLE_POLL_MIN_MILLIS
    let fetchesAhead = 0
    while (!current.ended && !closing) {
      while (fetchesAhead < settings.fetchAheadMax && wantsJobs(current)) {
        cork()
        fetch(current)
        fetchesAhead++
      }
      const next = current.ordered.shift()
      if (next === undefined) {
        // The lease is no longer trusted (renewals failed for half its duration): this tenure
        // ends; whatever it fetched stays active for the next holder (maybe this one) to re-queue.
        if (!lease.held()) return
        // Backpressure: too many jobs in flight; wait for appends to complete some.
        await sleep(IDLE_POLL_MIN_MILLIS)
        flushDue(current)
        continue
      }
      const job = await next.job
      if (next.fetch) fetchesAhead--
      if (job !== undefined) {
        idleMillis = IDLE_POLL_MIN_MILLIS
        if (current.ended) continue
        current.inFlight.set(job.id!, job)
        accept(current, job)
        flushDue(current)
        continue
      }
      if (current.ordered.length > 0) continue
      // Nothing came and nothing more is coming: the queue looks empty; poll more slowly.
      flushDue(current)
      await sleep(idleMillis)
      idleMillis = Math.min(idleMillis * 2, IDLE_POLL_MAX_MILLIS)
      flushDue(current)
    }
  }

  // ------------------------------------------------------------------ the lease

  /** Puts the previous holder's unfinished jobs back at the front of the queue, oldest first. */
  const takeOver = async () => {
    let requeued = 0
    for (let step = 0; step < REQUEUE_STEPS_MAX; step++) {
      // The active list is newest first; re-queueing newest first to the front of the wait list
      // leaves the oldest frontmost. A crash part-way is safe: the next holder continues with
      // the older jobs still active, which end up in front of those re-queued already.
      const ids = await client.lrange(worker.toKey("active"), 0, REQUEUE_CHUNK - 1)
      if (ids.length === 0) break
      for (const id of ids) {
        // In order or not at all: a job left active here would be re-queued by a later step in
        // front of older jobs of its feed. So a failure ends the takeover (and the tenure); the
        // next one starts again from the newest job still active, as after a crash part-way.
        // Token "0": the previous holder's lock is not ours to check; it lost the lease.
        await worker.backend.moveJobFromActiveToWait(id, "0").catch(async (error: unknown) => {
          // A job whose data is gone can never be re-queued: its id only leaves the active list.
          if (await Bull.run(client, "sfDropStaleActive-2", [worker.toKey("active"), worker.toKey(id)], [id]) !== 1) throw error
        })
        requeued++
      }
    }
    hooks.tookOver(requeued)
  }

  const extendLocks = async (current: Tenure) => {
    const ids = [...current.inFlight.keys()]
    for (let start = 0; start < ids.length; start += LOCK_CHUNK) {
      const chunk = ids.slice(start, start + LOCK_CHUNK)
      await worker.extendJobLocks(chunk, chunk.map(() => lease.token), settings.lockDurationMillis)
    }
  }

  const runTenure = async () => {
    const current: Tenure = { feeds: new Map(), inFlight: new Map(), due: [], ready: [], appending: 0, ordered: [], ended: false }
    tenure = current
    const renewal = setInterval(() => {
      lease.renew().then((held) => {
        if (!held) current.ended = true
      }, (error: unknown) => hooks.log(`renewing the ingest lease failed: ${Bull.translate("lease", error).message}`))
    }, Math.max(50, Math.floor(settings.leaseMillis / 4)))
    const locks = setInterval(() => {
      extendLocks(current).catch((error: unknown) => hooks.log(`extending ingest locks failed: ${Bull.translate("extend locks", error).message}`))
    }, Math.max(100, Math.floor(settings.lockDurationMillis / 3)))
    const flusher = setInterval(() => flushDue(current), Math.max(5, Math.floor(settings.flushIntervalMillis / 4)))
    try {
      await takeOver()
      await takeLoop(current)
      if (closing) await drain(current)
    } finally {
      current.ended = true
      clearInterval(renewal)
      clearInterval(locks)
      clearInterval(flusher)
      tenure = undefined
    }
  }

  /** On close: append what is buffered (bounded in time), so the next holder starts clean. */
  const drain = async (current: Tenure) => {
    const deadline = Date.now() + CLOSE_DRAIN_MILLIS
    while ((current.feeds.size > 0 || current.inFlight.size > 0) && Date.now() < deadline && lease.held()) {
      for (const batch of [...current.feeds.values()]) requestFlush(current, batch)
      await sleep(10)
    }
  }

  const main = async () => {
    while (!closing) {
      const wait = await lease.acquire().catch((error: unknown) => {
        hooks.log(`acquiring the ingest lease failed: ${Bull.translate("lease", error).message}`)
        return settings.leaseMillis / 4
      })
      if (wait > 0) {
        await sleep(Math.min(wait, settings.leaseMillis / 4))
        continue
      }
      await runTenure().catch(async (error: unknown) => {
        hooks.log(`ingest tenure ended: ${Bull.translate("ingest", error).message}`)
        await sleep(IDLE_POLL_MAX_MILLIS)
      })
    }
  }
  const running = main()

  return {
    stats: () => ({
      holding: tenure !== undefined && lease.held(),
      inFlight: tenure?.inFlight.size ?? 0,
      feedsBuffered: tenure?.feeds.size ?? 0
    }),
    close: async () => {
      closing = true
      await running
      await lease.release().catch(() => undefined)
      await worker.close(true).finally(release)
    }
  }
}
