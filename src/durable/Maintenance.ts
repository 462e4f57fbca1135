/**
 * Scheduled maintenance on BullMQ job schedulers: each task (feed retention trimming, feed record
 * compaction, search index merges, periodic dumps, or any Effect of the application's) is a
 * scheduler, which makes one job per period with an id of its own (`repeat:<task>:<millis>`), so however many workers run this layer a period runs once (again only
 * if the worker running it crashed mid-run). Runs are counted in metrics (`/metrics`, `/v1/stats`)
 * and `status` lists every schedule with its next run for the dashboard.
 *
 * It does not decide what a task does to entities: tasks send their entities ordinary messages.
 */
import { Queue, type Job, Worker } from "bullmq"
import { Context, Effect, Exit, Layer, Cause, type Scope } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import type { EntityType } from "../../actors/Entity.js"
import * as EntityClient from "../../actors/EntityClient.js"
import type { Messenger } from "../../actors/Messenger.js"
import { noHold, WritePause } from "../../actors/WritePause.js"
import type { KeyValueStore } from "../../persistence/KeyValueStore.js"
import { StoreBackend } from "../../persistence/StoreBackend.js"
import { InvalidArgument } from "../../persistence/StoreError.js"
import type { Rpc } from "effect/rpc"
import * as Feed from "../feed/Feed.js"
import * as Archive from "../node/Archive.js"
import { Search } from "../search/Search.js"
import * as SearchEntity from "../search/SearchEntity.js"
import type { DurableUnavailable } from "./DurableError.js"
import * as DurableMetrics from "./DurableMetrics.js"
import * as DurableKeys from "./durableKeys.js"
import * as Bull from "./internal/bullConnection.js"

/** When a task runs: every N milliseconds (aligned to multiples of N), or a cron pattern. */
export type Schedule =
  | { readonly everyMillis: number }
  | { readonly pattern: string; readonly timezone?: string | undefined }

/** What a run knows about itself. */
export interface RunInfo {
  readonly task: string
  /** The period this run is for: its scheduled time, in milliseconds since the epoch. */
  readonly scheduledAt: number
  readonly jobId: string
}

/** A maintenance task: an id (1-100 of `[A-Za-z0-9_.-]`), its schedule and what it does. */
export interface Task<R = never> {
  readonly id: string
  readonly schedule: Schedule
  readonly run: (info: RunInfo) => Effect.Effect<unknown, unknown, R>
  readonly description?: string | undefined
}

/** One schedule as the dashboard shows it. */
export interface ScheduleStatus {
  readonly task: string
  readonly description: string | undefined
  readonly everyMillis: number | undefined
  readonly pattern: string | undefined
  /** The next run, in milliseconds since the epoch (null when none is scheduled). */
  readonly next: number | null
  /** Runs of this process, by outcome. */
  readonly runs: { readonly ok: number; readonly error: number }
  /** The latest run on any process: when it ended, how long it took, how it ended. */
  readonly lastRun: { readonly at: number; readonly millis: number; readonly outcome: "ok" | "error" } | null
}

/** The services the tasks of a list need. */
export type Requirements<Tasks extends ReadonlyArray<Task<any>>> = Tasks[number] extends Task<infer R> ? R : never

/** Options of the maintenance layer. */
export interface MaintenanceOptions<Tasks extends ReadonlyArray<Task<any>>> extends Bull.BullConnectionOptions {
  readonly tasks: Tasks
  /** The BullMQ queue of maintenance jobs (default `shardfeed-maintenance`). */
  readonly queueName?: string | undefined
  /** The BullMQ key prefix (default `shardfeed`). */
  readonly prefix?: string | undefined
  /** Runs at once in this process (default 2). */
  readonly concurrency?: number | undefined
  /** Longest run (default 10 min): then it is interrupted and counted as an error. */
  readonly runTimeoutMillis?: number | undefined
  /** BullMQ `lockDuration` of a run (default 60 s, renewed while it runs). */
  readonly lockDurationMillis?: number | undefined
  /** BullMQ `stalledInterval` (default 30 s): how soon a crashed worker's run is taken over. */
  readonly stalledIntervalMillis?: number | undefined
  /** Remove schedules of this queue that no task here names (default false: other processes may run other tasks). */
  readonly prune?: boolean | undefined
}

/** The maintenance service. */
export interface MaintenanceShape {
  readonly status: Effect.Effect<ReadonlyArray<ScheduleStatus>, DurableUnavailable>
}

/** The maintenance service tag. */
export class Maintenance extends Context.Service<Maintenance, MaintenanceShape>()("shardfeed/Maintenance") {}

const TASK_ID = /^[A-Za-z0-9_.-]{1,100}$/
const NAME = /^[A-Za-z0-9_.-]{1,64}$/
/** Finished maintenance jobs kept for inspection, each kind. */
const JOBS_KEPT = 1_000
const ERROR_TEXT_MAX = 1_000

const check = (options: MaintenanceOptions<ReadonlyArray<Task<any>>>): InvalidArgument | undefined => {
  const ids = new Set<string>()
  for (const [i, task] of options.tasks.entries()) {
    if (!TASK_ID.test(task.id)) return new InvalidArgument({ field: `tasks[${i}].id`, message: `must match ${TASK_ID}` })
    if (ids.has(task.id)) return new InvalidArgument({ field: `tasks[${i}].id`, message: `${task.id} is given twice` })
    ids.add(task.id)
    const schedule = task.schedule
    if ("everyMillis" in schedule) {
      if (!Number.isInteger(schedule.everyMillis) || schedule.everyMillis < 100 || schedule.everyMillis > 366 * 86_400_000) {
        return new InvalidArgument({ field: `tasks[${i}].schedule.everyMillis`, message: "must be an integer from 100 to a year" })
      }
    } else if (typeof schedule.pattern !== "string" || schedule.pattern.length === 0 || schedule.pattern.length > 200) {
      return new InvalidArgument({ field: `tasks[${i}].schedule.pattern`, message: "must be a cron pattern" })
    }
  }
  if (options.queueName !== undefined && !NAME.test(options.queueName)) return new InvalidArgument({ field: "queueName", message: `must match ${NAME}` })
  if (options.prefix !== undefined && !Bull.PREFIX.test(options.prefix)) return new InvalidArgument({ field: "prefix", message: `must match ${Bull.PREFIX}` })
  const positive = (field: string, value: number | undefined, max: number) =>
    value === undefined || (Number.isInteger(value) && value >= 1 && value <= max) ? undefined : new InvalidArgument({ field, message: `must be an integer from 1 to ${max}` })
  return positive("concurrency", options.concurrency, 100) ??
    positive("runTimeoutMillis", options.runTimeoutMillis, 86_400_000) ??
    positive("lockDurationMillis", options.lockDurationMillis, 3_600_000) ??
    positive("stalledIntervalMillis", options.stalledIntervalMillis, 3_600_000)
}

/** The period a scheduler job is for: from its id (`repeat:<task>:<millis>`), else its options. */
const scheduledAt = (job: Job): number => {
  const millis = Number(job.id?.slice(job.id.lastIndexOf(":") + 1))
  return Number.isSafeInteger(millis) ? millis : job.opts.prevMillis ?? job.timestamp
}

const describe = (cause: Cause.Cause<unknown>) => Cause.pretty(cause).split("\n")[0]?.slice(0, ERROR_TEXT_MAX) ?? "failed"

/** Runs the tasks' schedules for the scope: registers them and runs their jobs here. */
export const make = <const Tasks extends ReadonlyArray<Task<any>>>(
  options: MaintenanceOptions<Tasks>
): Effect.Effect<MaintenanceShape, InvalidArgument | DurableUnavailable, Requirements<Tasks> | Scope.Scope> =>
  Effect.gen(function*() {
    type R = Requirements<Tasks>
    const bad = check(options)
    if (bad !== undefined) return yield* Effect.fail(bad)
    const parsed = Bull.parseUrl(options.url)
    if (parsed instanceof InvalidArgument) return yield* Effect.fail(parsed)
    const queueName = options.queueName ?? "shardfeed-maintenance"
    const prefix = Bull.slotPrefix(parsed, options.prefix ?? "shardfeed")
    const keys = DurableKeys.make(prefix, queueName)
    const runTimeoutMillis = options.runTimeoutMillis ?? 600_000
    const context = yield* Effect.context<R>()
    const recorder = new DurableMetrics.Recorder(context as Context.Context<never>)
    const tasks = new Map<string, Task<R>>(options.tasks.map((task) => [task.id, task as Task<R>]))
    const local = new Map<string, { ok: number; error: number; last: ScheduleStatus["lastRun"] }>(
      options.tasks.map((task) => [task.id, { ok: 0, error: 0, last: null }])
    )
    const unavailable = (operation: string) => (cause: unknown) => Bull.translate(operation, cause)

    const queue = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: async () => {
          const { connection, release } = Bull.connect(parsed, options, "producer")
          const opened = new Queue(queueName, { connection, prefix })
          opened.on("error", () => undefined)
          await Bull.readyWithin(opened.waitUntilReady(), opened, release, parsed, options)
          return { opened, release }
        },
        catch: unavailable("connect")
      }),
      ({ opened, release }) => Effect.promise(() => opened.close().catch(() => undefined).finally(release))
    ).pipe(Effect.map(({ opened }) => opened))

    // Register each schedule, unless it is registered already with the same timing: every worker
    // starts this layer, and re-registering an unchanged schedule would only move its next job.
    yield* Effect.tryPromise({
      try: async () => {
        for (const task of options.tasks) {
          const existing = await queue.getJobScheduler(task.id)
          const every = "everyMillis" in task.schedule ? task.schedule.everyMillis : undefined
          const pattern = "pattern" in task.schedule ? task.schedule.pattern : undefined
          const timezone = "pattern" in task.schedule ? task.schedule.timezone : undefined
          if (existing !== undefined && existing.every === every && existing.pattern === pattern && existing.tz === timezone) continue
          await queue.upsertJobScheduler(task.id, every !== undefined ? { every } : { pattern: pattern!, ...(timezone === undefined ? {} : { tz: timezone }) }, {
            name: task.id,
            data: {},
            opts: { attempts: 1, removeOnComplete: { count: JOBS_KEPT }, removeOnFail: { count: JOBS_KEPT } }
          })
        }
        if (options.prune === true) {
          for (const scheduler of await queue.getJobSchedulers(0, 999)) {
            if (!tasks.has(scheduler.key)) await queue.removeJobScheduler(scheduler.key)
          }
        }
      },
      catch: unavailable("register schedules")
    })

    const run = async (job: Job): Promise<string> => {
      const task = tasks.get(job.name)
      // Another process's task: it should not be on this queue's workers without its code.
      if (task === undefined) throw new Error(`no maintenance task ${job.name} in this process`)
      const started = performance.now()
      const exit = await Effect.runPromiseExitWith(context)(
        Effect.timeout(Effect.suspend(() => task.run({ task: task.id, scheduledAt: scheduledAt(job), jobId: job.id! })), runTimeoutMillis)
      )
      const millis = performance.now() - started
      const outcome = Exit.isSuccess(exit) ? "ok" : "error"
      recorder.add(DurableMetrics.maintenanceRuns, { task: task.id, outcome })
      recorder.add(DurableMetrics.maintenanceSeconds, { task: task.id }, millis / 1000)
      recorder.add(DurableMetrics.maintenanceLastRun, { task: task.id }, Date.now() / 1000)
      const counts = local.get(task.id)!
      counts[outcome]++
      counts.last = { at: Date.now(), millis: Math.round(millis), outcome }
      // For every process's status: one small write per run (lost only with Redis, then this
      // process's own record still shows).
      await queue.backend.client.then((client) => client.hset(keys.lastRuns, { [task.id]: JSON.stringify(counts.last) })).catch(() => undefined)
      if (Exit.isFailure(exit)) throw new Error(describe(exit.cause))
      return "ok"
    }

    yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: async () => {
          const { connection, release } = Bull.connect(parsed, options, "consumer")
          const worker = new Worker(queueName, run, {
            connection,
            prefix,
            concurrency: options.concurrency ?? 2,
            lockDuration: options.lockDurationMillis ?? 60_000,
            stalledInterval: options.stalledIntervalMillis ?? 30_000,
            // A run whose worker crashed is taken over once; a task that crashes workers is then failed.
            maxStalledCount: 1,
            drainDelay: 5,
            removeOnComplete: { count: JOBS_KEPT },
            removeOnFail: { count: JOBS_KEPT },
            autorun: true
          })
          worker.on("error", (error) => Effect.runFork(Effect.logWarning(`maintenance: ${Bull.translate("maintenance", error).message}`)))
          await Bull.readyWithin(worker.waitUntilReady(), worker, release, parsed, options)
          return { worker, release }
        },
        catch: unavailable("start maintenance")
      }),
      ({ worker, release }) => Effect.promise(() => worker.close().catch(() => undefined).finally(release))
    )

    const status = Effect.tryPromise({
      try: async (): Promise<ReadonlyArray<ScheduleStatus>> => {
        const schedulers = new Map((await queue.getJobSchedulers(0, 999)).map((scheduler) => [scheduler.key, scheduler]))
        // The last run of each task on any process, as the process that ran it recorded it.
        const recorded = await (await queue.backend.client).hgetall(keys.lastRuns)
        const latest = (task: string): ScheduleStatus["lastRun"] | undefined => {
          const text = recorded[task]
          return text === undefined ? undefined : JSON.parse(text) as ScheduleStatus["lastRun"]
        }
        return options.tasks.map((task) => {
          const scheduler = schedulers.get(task.id)
          const counts = local.get(task.id)!
          return {
            task: task.id,
            description: task.description,
            everyMillis: "everyMillis" in task.schedule ? task.schedule.everyMillis : undefined,
            pattern: "pattern" in task.schedule ? task.schedule.pattern : undefined,
            next: scheduler?.next ?? null,
            runs: { ok: counts.ok, error: counts.error },
            lastRun: latest(task.id) ?? counts.last
          }
        })
      },
      catch: unavailable("maintenance status")
    })
    return { status }
  })

/** Maintenance as a layer; its requirements are those of its tasks. */
export const layer = <const Tasks extends ReadonlyArray<Task<any>>>(
  options: MaintenanceOptions<Tasks>
): Layer.Layer<Maintenance, InvalidArgument | DurableUnavailable, Requirements<Tasks>> => Layer.effect(Maintenance, make(options))

// ---------------------------------------------------------------------- built-in tasks

/** How far one run of a broadcast task goes: at most this many entities (default 100,000). */
export interface BroadcastOptions {
  readonly entitiesPerRunMax?: number | undefined
}

/** A page of a listing: ids after a cursor, and the next cursor (null at the end). */
type Listing<E, R> = (cursor: string | undefined) => Effect.Effect<{ readonly ids: ReadonlyArray<string>; readonly cursor: string | null }, E, R>

/**
 * Runs `each` on the ids a listing names, page by page, in order, at most `max` of them (a
 * larger listing is resumed by the next run from its start); answers how many it ran on.
 */
const forEachListed = <E, R, E2, R2>(list: Listing<E, R>, max: number, each: (id: string) => Effect.Effect<void, E2, R2>) =>
  Effect.gen(function*() {
    let cursor: string | undefined
    let done = 0
    // Bounded by `max` ids.
    while (done < max) {
      const page = yield* list(cursor)
      const ids = page.ids.slice(0, max - done)
      for (const id of ids) yield* each(id)
      done += ids.length
      if (page.cursor === null || page.ids.length === 0) break
      cursor = page.cursor
    }
    return done
  })

/**
 * A task that sends one message (one way) to every entity a listing names, page by page: the
 * shape of retention sweeps and feed record compaction.
 */
export const broadcast = <Type extends string, Rpcs extends Rpc.Any, E, R>(options: {
  readonly id: string
  readonly schedule: Schedule
  readonly entity: EntityType<Type, Rpcs>
  readonly tag: Rpcs["_tag"]
  readonly payload?: unknown
  /** A page of entity ids after `cursor` (undefined: from the start), and the next cursor (null at the end). */
  readonly list: Listing<E, R>
  readonly description?: string | undefined
} & BroadcastOptions): Task<R | Messenger> => ({
  id: options.id,
  schedule: options.schedule,
  description: options.description,
  run: () =>
    Effect.gen(function*() {
      const client = yield* EntityClient.make(options.entity)
      const send = client.send as unknown as (id: string, tag: string, payload?: unknown) => Effect.Effect<void>
      return yield* forEachListed(options.list, options.entitiesPerRunMax ?? 100_000, (id) => send(id, options.tag, options.payload))
    })
})

/** Sends `tag` to every feed of a type, listed 1,000 names at a time. */
const everyFeed = <A, I>(type: Feed.FeedType<A, I>, tag: "Trim" | "Compact", id: string, description: string, schedule: Schedule, options: BroadcastOptions) =>
  broadcast({
    id,
    schedule,
    entity: type.entity,
    tag,
    description,
    list: (cursor) => Effect.map(Feed.list(type, { limit: 1_000, cursor }), (page) => ({ ids: page.feeds, cursor: page.cursor })),
    ...options
  })

/** Retention trimming for a feed type: every feed of it is sent `Trim` (which only trims past its retention). */
export const feedRetention = <A, I>(type: Feed.FeedType<A, I>, schedule: Schedule, options: BroadcastOptions = {}): Task<Messenger | KeyValueStore> =>
  everyFeed(type, "Trim", `retention.${type.type}`, `trims the feeds of ${type.type} past their retention`, schedule, options)

/**
 * Record compaction for a feed type: every feed of it is sent `Compact`, which merges the small
 * records of feeds appended to one item per commit round, in bounded steps from where the last
 * run stopped: a feed with nothing new to merge costs its activation and a few reads, no write.
 * Each run wakes every feed of the type (at most `entitiesPerRunMax`, listed from the start).
 */
export const feedCompaction = <A, I>(type: Feed.FeedType<A, I>, schedule: Schedule, options: BroadcastOptions = {}): Task<Messenger | KeyValueStore> =>
  everyFeed(type, "Compact", `compaction.${type.type}`, `merges the small records of the feeds of ${type.type}`, schedule, options)

/**
 * Index merges for the search index `index`: each partition merges the neighbouring postings
 * chunks that document removals left under half full, in bounded atomic steps (at most
 * `stepsMax` per partition per run, default 1,000; the next run resumes where this one stopped).
 * Query results are unchanged; a term then costs fewer chunk reads. A partition with nothing
 * thinned out answers at once and writes nothing. The run's result is the chunks merged away.
 */
export const searchMerge = (index: string, schedule: Schedule, options: { readonly stepsMax?: number | undefined } = {}): Task<Search> => ({
  id: `merge.${index}`,
  schedule,
  description: `merges the postings chunks of index ${index} thinned out by removals`,
  run: () => mergeIndex(index, options.stepsMax)
})

const mergeIndex = (index: string, stepsMax: number | undefined) =>
  Effect.gen(function*() {
    const search = yield* Search
    const opened = yield* search.open(index)
    const report = yield* opened.merge({ stepsMax })
    return report.merged
  })

/**
 * Index merges for every search index in the store (what `serve --redis` and workers run for
 * the API's indexes): `searchMerge` for each, in name order, at most `indexesPerRunMax` per run
 * (default 1,000, listed from the start each run); an index dropped since it was listed is
 * skipped. One index failing (its partition unreachable, say) does not stop the others; the run then fails naming the indexes that failed, so the
 * failure shows in the run's outcome and metrics.
 */
export const searchMergeAll = (
  schedule: Schedule,
  options: { readonly stepsMax?: number | undefined; readonly indexesPerRunMax?: number | undefined } = {}
): Task<Search | KeyValueStore> => ({
  id: "merge.search",
  schedule,
  description: "merges the postings chunks of every search index thinned out by removals",
  run: () =>
    Effect.gen(function*() {
      let merged = 0
      let failures = 0
      const failed: Array<string> = []
      const indexesMax = options.indexesPerRunMax ?? 1_000
      const indexes = yield* forEachListed((cursor) => SearchEntity.listIndexes({ limit: Math.max(1, Math.min(1_000, indexesMax)), cursor }), indexesMax, (index) =>
        // An index dropped since it was listed (a restore, say) is skipped.
        Effect.map(Effect.exit(mergeIndex(index, options.stepsMax).pipe(Effect.catchTag("IndexNotFound", () => Effect.succeed(0)))), (exit) => {
          if (Exit.isSuccess(exit)) merged += exit.value
          else if (failures++ < 10) failed.push(`${index}: ${describe(exit.cause).slice(0, 200)}`)
        }))
      if (failures > 0) return yield* Effect.fail(new Error(`merged ${merged} chunks; ${failures} of ${indexes} indexes failed: ${failed.join("; ")}`))
      return merged
    })
})

/**
 * A periodic dump of the store to `directory` (`shardfeed-<time>.gz`), keeping the newest `keep`
 * (default 7). Where the process has a `WritePause` (every node and worker does), the dump goes
 * through it, so on a cluster sharing a Redis store it is one point in time.
 */
export const dump = (options: { readonly directory: string; readonly schedule: Schedule; readonly keep?: number | undefined; readonly id?: string | undefined }): Task<StoreBackend> => ({
  id: options.id ?? "dump",
  schedule: options.schedule,
  description: `dumps the store to ${options.directory}`,
  run: ({ scheduledAt }) =>
    Effect.gen(function*() {
      const backend = yield* StoreBackend
      yield* Effect.sync(() => Fs.mkdirSync(options.directory, { recursive: true }))
      const name = `shardfeed-${new Date(scheduledAt).toISOString().replace(/[:.]/g, "-")}.gz`
      const partial = Path.join(options.directory, `${name}.partial`)
      const pause = yield* Effect.serviceOption(WritePause)
      const hold = pause._tag === "Some" ? yield* pause.value.holdForDump : noHold
      const records = yield* Effect.ensuring(Archive.dump(backend, Fs.createWriteStream(partial), undefined, hold.intact), hold.release)
      // A dump appears under its final name only once complete.
      yield* Effect.sync(() => Fs.renameSync(partial, Path.join(options.directory, name)))
      yield* Effect.sync(() => {
        const dumps = Fs.readdirSync(options.directory).filter((file) => /^shardfeed-.*\.gz$/.test(file)).sort()
        for (const old of dumps.slice(0, Math.max(0, dumps.length - (options.keep ?? 7)))) Fs.rmSync(Path.join(options.directory, old), { force: true })
      })
      return records
    })
})
