/**
 * The Redis side of durable messages, shared by senders, consumers, dead-letter tools and the CLI:
 * the BullMQ producer queue with its job options set explicitly, group-committed sends (the jobs
 * of concurrent sends, then one link script for all of them), the lane scripts (claim, release,
 * dead-letter) and the dead-letter store. Everything here speaks Promises over plain data; the public modules wrap it
 * in Effects and typed errors. It knows nothing of entity schemas: payloads arrive encoded.
 */
import { Job, Queue, type RedisClient } from "bullmq"
import { randomBytes } from "node:crypto"
import type { DurableConfig } from "../DurableConfig.js"
import * as DurableKeys from "../durableKeys.js"
import { Batcher } from "./batcher.js"
import * as Bull from "./bullConnection.js"
import { type Claim, LaneOps, type NewHead } from "./laneOps.js"

/** A durable message as stored in its BullMQ job's data. */
export interface MessageData {
  /** Entity type. */
  readonly t: string
  /** Entity id. */
  readonly e: string
  /** Message tag. */
  readonly m: string
  /** Payload as the message's payload schema encodes it to JSON (absent for none). */
  readonly p?: unknown
}

/** A message to send, already validated and encoded. */
export interface Outgoing extends MessageData {
  /** The de-duplication id given by the sender, if any. */
  readonly dedupId?: string | undefined
}

/** What a send answers. */
export interface Sent {
  /** The message's id (its BullMQ job id); for a duplicate, the first send's id. */
  readonly id: string
  readonly duplicate: boolean
}

/** A claim's verdict and a lane's new head (see `laneOps.ts`). */
export type { Claim, NewHead } from "./laneOps.js"

/** What one sweep step found, lane by lane. */
export interface SweepStep {
  readonly lanes: ReadonlyArray<{
    readonly lane: string
    /** `Emptied`: deleted; `Parked`: its head sleeps (promote it); `FailedHead`: BullMQ failed it (dead-letter it); `Live`: left alone. */
    readonly verdict: "Emptied" | "Parked" | "FailedHead" | "Live"
    readonly head: string
  }>
  /** Finished heads dropped from their lanes. */
  readonly dropped: number
}

/** One dead letter as stored (and as the HTTP API lists it). */
export interface DeadLetterRecord {
  readonly id: string
  readonly type: string
  readonly entity: string
  readonly message: { readonly _tag: string; readonly payload?: unknown }
  readonly attempts: number
  readonly error: string
  /** Milliseconds since the epoch. */
  readonly deadAt: number
  readonly dedupId?: string | undefined
}

/** The custom backoff strategy's name: exponential, capped, with jitter (see `DurableConfig.backoffMillis`). */
export const BACKOFF_TYPE = "shardfeed-capped"
/** Requests waiting in one batcher at most. */
const WAITING_MAX = 100_000
/** Rounds of sends in flight at once; sends arriving meanwhile wait and go together. */
const SEND_CALLS_IN_FLIGHT_MAX = 2
/** Events BullMQ keeps in the queue's event stream (BullMQ's default is 10,000). */
export const EVENTS_KEPT = 1_000

/** The Redis side of one durable queue. */
export interface DurableQueue {
  readonly config: DurableConfig
  readonly keys: DurableKeys.DurableKeys
  readonly queue: Queue<MessageData, unknown, string>
  readonly client: RedisClient
  readonly parsed: Bull.ParsedUrl
  readonly connection: Bull.BullConnectionOptions
  readonly send: (message: Outgoing) => Promise<Sent>
  readonly claim: (message: MessageData, jobId: string, park: boolean) => Promise<Claim>
  /** Removes a finished message from its lane; `done` gets the lane's new head. */
  readonly release: (message: MessageData, jobId: string, done: (head: NewHead) => void, failed: (error: unknown) => void) => void
  readonly noteRetry: (message: MessageData, jobId: string, retryAt: number) => Promise<void>
  readonly deadLetter: (message: MessageData, record: DeadLetterRecord) => Promise<NewHead & { readonly dropped: number }>
  /**
   * One step of the lane sweep: up to `limit` lanes no claim touched since `staleBefore` (ms since
   * the epoch), their finished heads dropped (see the `sweep-3` script).
   */
  readonly sweep: (staleBefore: number, limit: number) => Promise<SweepStep>
  readonly deadLetterPage: (type: string | undefined, after: number, limit: number) => Promise<ReadonlyArray<{ readonly sequence: number; readonly record: DeadLetterRecord }>>
  readonly deadLetterGet: (id: string) => Promise<DeadLetterRecord | undefined>
  readonly deadLetterTake: (id: string) => Promise<DeadLetterRecord | undefined>
  /** Moves a parked (delayed) message to the wait list; false when it was not delayed any more. */
  readonly promote: (jobId: string) => Promise<boolean>
  readonly close: () => Promise<void>
}

/** The BullMQ job options of every durable message, set explicitly (see the README for why). */
export const jobOptions = (config: DurableConfig) => ({
  attempts: config.attemptsMax,
  backoff: { type: BACKOFF_TYPE, delay: config.backoffBaseMillis },
  removeOnComplete: true,
  removeOnFail: config.failedJobsKept === 0 ? true : { count: config.failedJobsKept },
  // Bytes of the job's JSON data: the payload bound plus room for type, entity id and tag.
  sizeLimit: config.payloadBytesMax + 2_048
})

const dedupKey = (message: Outgoing) => `${message.t}:${message.e}:${message.dedupId}`

const dataOf = (message: Outgoing): MessageData =>
  message.p === undefined ? { t: message.t, e: message.e, m: message.m } : { t: message.t, e: message.e, m: message.m, p: message.p }

const parseRecord = (text: string): DeadLetterRecord => JSON.parse(text) as DeadLetterRecord

/** The producer queue over `producer`, with the job options of `config`. */
const makeQueue = (config: DurableConfig, producer: Bull.Connection) => {
  const queue = new Queue<MessageData, unknown, string>(config.queueName, {
    connection: producer.connection,
    prefix: config.prefix,
    defaultJobOptions: jobOptions(config),
    streams: { events: { maxLen: EVENTS_KEPT } }
  })
  // Errors surface through the calls that fail; without a listener BullMQ would print each one.
  queue.on("error", () => undefined)
  return queue
}

/**
 * Waits for the producer queue's connection and defines the scripts; `close` closes the queue
 * and releases the connection (`openWithin` does both when opening fails).
 */
const open = async (
  config: DurableConfig,
  connection: Bull.BullConnectionOptions,
  parsed: Bull.ParsedUrl,
  producer: Bull.Connection,
  queue: Queue<MessageData, unknown, string>
): Promise<DurableQueue> => {
  const keys = DurableKeys.make(config.prefix, config.queueName)
  const options = jobOptions(config)
  const { release } = producer
  const client = await queue.backend.client
  Bull.defineScripts(client)
  // A process tag makes job ids unique across processes without a round trip; the `-` keeps them
  // from looking like integers, which BullMQ refuses as custom ids.
  const tag = randomBytes(6).toString("hex")
  let counter = 0

  /** The link of jobs into their messages' lanes, in batch order. */
  const linkArgs = (messages: ReadonlyArray<Outgoing>, jobIds: ReadonlyArray<string>, only?: (i: number) => boolean) => {
    const args: Array<string | number> = [keys.ownPrefix, keys.jobPrefix]
    for (let i = 0; i < messages.length; i++) if (only === undefined || only(i)) args.push(keys.laneId(messages[i]!.t, messages[i]!.e), jobIds[i]!)
    return args
  }

  const sendBatch = async (messages: ReadonlyArray<Outgoing>): Promise<ReadonlyArray<Sent>> => {
    const ids = messages.map(() => `${tag}-${(counter++).toString(36)}`)
    // The jobs, then their link into their lanes in batch order (arrival order). A send is
    // acknowledged only once both succeeded: a crash in between leaves an unacknowledged message
    // unlinked, which its consumer registers at the end of its lane (nothing was promised about
    // its order). (No MULTI or pipeline object: ioredis copies every script of the client onto
    // each one, which costs more than the writes they would save.)
    const added: Array<Promise<string>> = []
    for (let i = 0; i < messages.length; i++) {
      const message = messages[i]!
      const job = new Job<MessageData>(queue, message.t, dataOf(message), {
        ...options,
        jobId: ids[i]!,
        ...(message.dedupId === undefined ? {} : { deduplication: { id: dedupKey(message), ttl: config.dedupWindowMillis } })
      }, ids[i]!)
      added.push(queue.backend.addJobToTransaction(client, job.asJSON(), ids[i]!))
    }
    if (parsed.cluster) {
      // A Redis Cluster client does not promise issue order (it queues, redirects and retries
      // commands on its own schedule): a link sent right behind the adds could run before a job
      // exists and skip it, and the entity's later messages would overtake it (the crash test
      // caught a message linked behind later ones). So the link waits for the adds, and links
      // new jobs and duplicates at once.
      const results = (await Promise.all(added)).map(String)
      await Bull.run(client, "sfLink-1", [keys.deadLetterData], linkArgs(messages, results))
      return messages.map((_, i): Sent => ({ id: results[i]!, duplicate: results[i] !== ids[i] }))
    }
    // One connection to one Redis: `addJobToTransaction` writes its command before it first
    // awaits, so the adds are on the wire, in order, before this link, and Redis runs them so.
    // A duplicate's generated id never became a job, and the link script skips it.
    const [results] = await Promise.all([Promise.all(added), Bull.run(client, "sfLink-1", [keys.deadLetterData], linkArgs(messages, ids))])
    const sent = messages.map((_, i): Sent => ({ id: String(results[i]), duplicate: String(results[i]) !== ids[i] }))
    // A duplicate is acknowledged as stored, so its first send's job must hold its place before
    // this send returns: if that sender crashed between its add and its link, the job is linked
    // now (a no-op for a job linked or finished already, the usual case).
    const duplicates = linkArgs(messages, sent.map((one) => one.id), (i) => sent[i]!.duplicate)
    if (duplicates.length > 2) await Bull.run(client, "sfLink-1", [keys.deadLetterData], duplicates)
    return sent
  }
  const sends = new Batcher(sendBatch, config.sendBatchMax, WAITING_MAX, SEND_CALLS_IN_FLIGHT_MAX)

  const lanes = new LaneOps(client, keys, WAITING_MAX)

  const deadLetterPage = async (type: string | undefined, after: number, limit: number) => {
    const index = type === undefined ? keys.deadLetterAll : keys.deadLetterType(type)
    const flat = await Bull.run(client, "sfDeadLetterPage-2", [index, keys.deadLetterData], [after, limit]) as ReadonlyArray<string>
    const out: Array<{ sequence: number; record: DeadLetterRecord }> = []
    for (let i = 0; i + 1 < flat.length; i += 2) out.push({ sequence: Number(flat[i]), record: parseRecord(flat[i + 1]!) })
    return out
  }

  const deadLetterGet = async (id: string) => {
    const text = await client.hget(keys.deadLetterData, id)
    return text === null ? undefined : parseRecord(text)
  }

  return {
    config,
    keys,
    queue,
    client,
    parsed,
    connection,
    send: (message) => sends.submit(message),
    claim: (message, jobId, park) => lanes.claim(keys.laneId(message.t, message.e), jobId, park),
    release: (message, jobId, done, failed) => lanes.release(keys.laneId(message.t, message.e), jobId, done, failed),
    noteRetry: async (message, jobId, retryAt) => {
      // Only meaningful while the message is still its lane's head, which it is: it just ran.
      if ((await client.hget(keys.laneMeta(message.t, message.e), "head")) === jobId) {
        await client.hset(keys.laneMeta(message.t, message.e), { retryAt })
      }
    },
    deadLetter: async (message, record) => {
      const [head, parked, dropped] = await Bull.run(client, "sfDeadLetter-7", [
        keys.lane(message.t, message.e),
        keys.laneMeta(message.t, message.e),
        keys.deadLetterData,
        keys.deadLetterType(message.t),
        keys.deadLetterAll,
        keys.deadLetterSequence,
        keys.openLanes
      ], [record.id, JSON.stringify(record), config.deadLettersPerTypeMax, keys.laneId(message.t, message.e)]) as [string, number, number]
      return { head, parked: parked === 1, dropped }
    },
    sweep: async (staleBefore, limit) => {
      const flat = await Bull.run(client, "sfSweep-3", [keys.openLanes, keys.failed, keys.deadLetterData], [
        keys.ownPrefix,
        keys.jobPrefix,
        staleBefore,
        Date.now(),
        limit
      ]) as ReadonlyArray<string | number>
      const lanes: Array<SweepStep["lanes"][number]> = []
      for (let i = 0; i + 1 < flat.length; i += 2) {
        const verdict = String(flat[i + 1])
        lanes.push({
          lane: String(flat[i]),
          verdict: verdict === "" ? "Emptied" : verdict.startsWith("p") ? "Parked" : verdict.startsWith("f") ? "FailedHead" : "Live",
          head: verdict.slice(1)
        })
      }
      return { lanes, dropped: Number(flat[flat.length - 1] ?? 0) }
    },
    deadLetterPage,
    deadLetterGet,
    deadLetterTake: async (id) => {
      const found = await deadLetterGet(id)
      if (found === undefined) return undefined
      const text = await Bull.run(client, "sfDeadLetterTake-3", [keys.deadLetterData, keys.deadLetterType(found.type), keys.deadLetterAll], [id]) as string | null
      return text === null ? undefined : parseRecord(text)
    },
    promote: async (jobId) => {
      try {
        await queue.backend.promote(jobId)
        return true
      } catch {
        // Not delayed any more: it woke up by itself or was promoted by another releaser.
        return false
      }
    },
    close: () => queue.close().finally(release)
  }
}

/**
 * Opens the queue, or fails within a bound (BullMQ itself would wait for Redis forever). On a
 * Redis Cluster the prefix gets its hash tag here (`Bull.slotPrefix`): the queue's `config`
 * holds the prefix as used.
 */
export const openWithin = async (validated: DurableConfig, options: Bull.BullConnectionOptions, parsed: Bull.ParsedUrl): Promise<DurableQueue> => {
  const config = { ...validated, prefix: Bull.slotPrefix(parsed, validated.prefix) }
  const producer = Bull.connect(parsed, options, "producer")
  const queue = makeQueue(config, producer)
  // No connection outlives a failed start: the queue is closed (its client stops reconnecting)
  // and a cluster client released, so the open waiting for them fails.
  return Bull.readyWithin(open(config, options, parsed, producer, queue), queue, producer.release, parsed, options)
}
