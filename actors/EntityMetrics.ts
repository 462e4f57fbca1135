/**
 * The entity runtime's metrics, in Effect's registry (exported by the node's `/metrics`):
 * messages, handler latency and committed writes per entity type, active entities per type,
 * mailbox depth, commit rounds and their sizes, poison messages. Updated without running an Effect, since they sit on
 * the message hot path.
 */
import { Clock, Context, Metric } from "effect"

/** Messages handled, by `type` and `outcome` (`ok`, `error`). */
export const messages = Metric.counter("shardfeed_entity_messages_total", { description: "Entity messages handled" })
/** Handler latency in seconds, by `type`. */
export const handlerSeconds = Metric.histogram("shardfeed_entity_handler_seconds", {
  description: "Entity handler latency",
  boundaries: Metric.exponentialBoundaries({ start: 0.00001, factor: 2, count: 20 })
})
/** Resident entities, by `type`. */
export const activeEntities = Metric.gauge("shardfeed_entities_active", { description: "Resident entity activations" })
/** Messages waiting in mailboxes, all entities. */
export const mailboxDepth = Metric.gauge("shardfeed_entity_mailbox_depth", { description: "Messages waiting in entity mailboxes" })
/** Commit rounds, by `outcome` (`ok`, `fenced`, `unavailable`). */
export const commits = Metric.counter("shardfeed_commits_total", { description: "Group-commit rounds" })
/** Writes per commit round. */
export const commitWrites = Metric.histogram("shardfeed_commit_batch_writes", {
  description: "Writes per group-commit round",
  boundaries: Metric.exponentialBoundaries({ start: 1, factor: 2, count: 17 })
})
/** Entities whose writes each commit round carried (what group commit gathers). */
export const commitEntities = Metric.histogram("shardfeed_commit_batch_entities", {
  description: "Entities per group-commit round",
  boundaries: Metric.exponentialBoundaries({ start: 1, factor: 2, count: 17 })
})
/** Store operations committed for entities, by `type`. */
export const entityWrites = Metric.counter("shardfeed_entity_writes_total", { description: "Store writes committed for entities" })
/** Messages skipped as poison, by `type`. */
export const poisonMessages = Metric.counter("shardfeed_entity_poison_messages_total", { description: "Messages skipped as poison" })

/**
 * The part of `context` a metric update reads: the registry, the ambient attributes and the
 * clock. An update of a metric with attributes copies its context, so updating with this one
 * instead of a runtime's every service keeps that copy, made per message, small.
 */
export const metricsContext = (context: Context.Context<never>): Context.Context<never> =>
  Context.make(Metric.MetricRegistry, Context.get(context, Metric.MetricRegistry)).pipe(
    Context.add(Metric.CurrentMetricAttributes, Context.get(context, Metric.CurrentMetricAttributes)),
    Context.add(Clock.Clock, Context.get(context, Clock.Clock))
  ) as Context.Context<never>

/** Metric handles bound to one context, cached per entity type. */
export class EntityMetrics {
  private readonly perType = new Map<string, {
    readonly ok: Metric.Metric<number, unknown>
    readonly error: Metric.Metric<number, unknown>
    readonly latency: Metric.Metric<number, unknown>
    readonly active: Metric.Metric<number, unknown>
    readonly poison: Metric.Metric<number, unknown>
    readonly writes: Metric.Metric<number, unknown>
  }>()
  private readonly commitOutcomes = new Map<string, Metric.Metric<number, unknown>>()

  private readonly context: Context.Context<never>

  constructor(context: Context.Context<never>) {
    this.context = metricsContext(context)
  }

  private of(type: string) {
    let metrics = this.perType.get(type)
    if (metrics === undefined) {
      metrics = {
        ok: Metric.withAttributes(messages, { type, outcome: "ok" }),
        error: Metric.withAttributes(messages, { type, outcome: "error" }),
        latency: Metric.withAttributes(handlerSeconds, { type }),
        active: Metric.withAttributes(activeEntities, { type }),
        poison: Metric.withAttributes(poisonMessages, { type }),
        writes: Metric.withAttributes(entityWrites, { type })
      }
      this.perType.set(type, metrics)
    }
    return metrics
  }

  handled(type: string, seconds: number, outcome: "ok" | "error"): void {
    const metrics = this.of(type)
    metrics.latency.updateUnsafe(seconds, this.context)
    ;(outcome === "ok" ? metrics.ok : metrics.error).updateUnsafe(1, this.context)
  }

  active(type: string, count: number): void {
    this.of(type).active.updateUnsafe(count, this.context)
  }

  poisoned(type: string): void {
    this.of(type).poison.updateUnsafe(1, this.context)
  }

  mailbox(depth: number): void {
    mailboxDepth.updateUnsafe(depth, this.context)
  }

  committed(outcome: string, writes: number, writesByType: ReadonlyMap<string, number>, participants: number): void {
    for (const [type, count] of writesByType) this.of(type).writes.updateUnsafe(count, this.context)
    let counter = this.commitOutcomes.get(outcome)
    if (counter === undefined) {
      counter = Metric.withAttributes(commits, { outcome })
      this.commitOutcomes.set(outcome, counter)
    }
    counter.updateUnsafe(1, this.context)
    commitWrites.updateUnsafe(writes, this.context)
    commitEntities.updateUnsafe(participants, this.context)
  }
}
