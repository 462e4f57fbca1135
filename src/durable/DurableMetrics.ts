/**
 * The metrics of durable work, in Effect's registry (so the node's `/metrics` exports them and
 * `/v1/stats` can read them): durable messages sent, delivered, retried, parked and
 * dead-lettered per entity type; ingest jobs, batches and takeovers per queue; maintenance runs
 * per task. Updated without running an Effect, since some sit on hot paths. It defines no logic.
 */
import { type Context, Metric } from "effect"
import { metricsContext } from "../../actors/EntityMetrics.js"

/** Durable sends, by `type` and `outcome` (`sent`, `duplicate`). */
export const sends = Metric.counter("shardfeed_durable_sends_total", { description: "Durable messages sent" })
/** Delivery attempts, by `type` and `outcome` (`ok`, `retry`, `dead`). */
export const deliveries = Metric.counter("shardfeed_durable_deliveries_total", { description: "Durable message delivery attempts" })
/** Messages dead-lettered, by `type`. */
export const deadLetters = Metric.counter("shardfeed_durable_dead_letters_total", { description: "Durable messages moved to the dead letters" })
/** Dead letters dropped past the per-type bound, by `type`. */
export const deadLettersDropped = Metric.counter("shardfeed_durable_dead_letters_dropped_total", { description: "Oldest dead letters dropped past the bound" })
/** Messages parked behind an earlier message of their entity. */
export const parked = Metric.counter("shardfeed_durable_parked_total", { description: "Durable messages parked behind their entity's head" })
/** Ingested jobs, by `queue` and `outcome` (`appended`, `duplicate`, `failed`). */
export const ingestJobs = Metric.counter("shardfeed_ingest_jobs_total", { description: "Jobs taken from ingest queues" })
/** Items per ingest append. */
export const ingestBatchItems = Metric.histogram("shardfeed_ingest_batch_items", {
  description: "Items per ingest append",
  boundaries: Metric.exponentialBoundaries({ start: 1, factor: 2, count: 11 })
})
/** Lease takeovers of an ingest queue, by `queue`, with the jobs re-queued. */
export const ingestTakeovers = Metric.counter("shardfeed_ingest_takeovers_total", { description: "Ingest consumer lease takeovers" })
/** Jobs of a previous holder re-queued on takeover, by `queue`. */
export const ingestRequeued = Metric.counter("shardfeed_ingest_requeued_total", { description: "Jobs re-queued on takeover" })
/** Maintenance runs, by `task` and `outcome` (`ok`, `error`). */
export const maintenanceRuns = Metric.counter("shardfeed_maintenance_runs_total", { description: "Maintenance runs" })
/** Maintenance run duration in seconds, by `task`. */
export const maintenanceSeconds = Metric.histogram("shardfeed_maintenance_run_seconds", {
  description: "Maintenance run duration",
  boundaries: Metric.exponentialBoundaries({ start: 0.001, factor: 4, count: 12 })
})
/** When a task last finished, in seconds since the epoch, by `task`. */
export const maintenanceLastRun = Metric.gauge("shardfeed_maintenance_last_run_timestamp_seconds", { description: "Last maintenance run" })

/** Counters bound to one context, cached per attribute set. */
export class Recorder {
  private readonly bound = new Map<string, Metric.Metric<number, unknown>>()

  private readonly context: Context.Context<never>

  constructor(context: Context.Context<never>) {
    this.context = metricsContext(context)
  }

  /** Adds `value` to `metric` with `attributes`. */
  add(metric: Metric.Metric<number, unknown>, attributes: Record<string, string>, value = 1): void {
    this.handle(metric, attributes).updateUnsafe(value, this.context)
  }

  /** A function adding to `metric` with fixed `attributes`, for hot paths (no lookup per call). */
  counter(metric: Metric.Metric<number, unknown>, attributes: Record<string, string>): (value?: number) => void {
    const handle = this.handle(metric, attributes)
    return (value = 1) => handle.updateUnsafe(value, this.context)
  }

  private handle(metric: Metric.Metric<number, unknown>, attributes: Record<string, string>) {
    const key = `${metric.id}\u0000${Object.entries(attributes).map(([name, text]) => `${name}=${text}`).join("\u0000")}`
    let handle = this.bound.get(key)
    if (handle === undefined) {
      // Attribute sets are few (entity types, queues, tasks, outcomes); the bound keeps a bug from growing it forever.
      if (this.bound.size >= 10_000) this.bound.clear()
      handle = Metric.withAttributes(metric, attributes)
      this.bound.set(key, handle)
    }
    return handle
  }
}

/** Per-key counters made on first use: `of(key)` answers the same functions each time. */
export class Counters<K extends string, C> {
  private readonly byKey = new Map<K, C>()

  constructor(private readonly make: (key: K) => C, private readonly keysMax = 10_000) {}

  of(key: K): C {
    let counters = this.byKey.get(key)
    if (counters === undefined) {
      if (this.byKey.size >= this.keysMax) this.byKey.clear()
      counters = this.make(key)
      this.byKey.set(key, counters)
    }
    return counters
  }
}
