/**
 * Durable ("persisted") entity messages on BullMQ: `send` stores a message in Redis and returns
 * once Redis has it; every worker process running this layer delivers durable messages through
 * its `Messenger` (the local runtime embedded, the router in a cluster), so a message reaches the
 * entity's current owner wherever its shard moved. Delivery is at least once, in arrival order per
 * entity, with ordered retries and dead letters (see `internal/consumer.ts` and the README).
 *
 * This module validates and encodes messages with their entity type's schemas, decodes them again
 * on delivery, and publishes events and metrics. Redis structures live in `internal/durableQueue.ts`.
 */
import { Cause, Context, Effect, Exit, Layer, Option, PubSub, Schema, type Scope, Stream } from "effect"
import type { Rpc } from "effect/rpc"
import type { AnyEntityType, EntityType } from "../../actors/Entity.js"
import { InvalidMessage, isInvalidMessage, UnknownEntityType } from "../../actors/EntityError.js"
import { EntityRuntime, validateEntityId } from "../../actors/EntityRuntime.js"
import { Messenger, type MessengerShape } from "../../actors/Messenger.js"
import { utf8Length } from "../../persistence/internal/bytes.js"
import { InvalidArgument } from "../../persistence/StoreError.js"
import * as DeadLetters from "./DeadLetters.js"
import * as DurableConfig from "./DurableConfig.js"
import { DurableUnavailable } from "./DurableError.js"
import * as DurableMetrics from "./DurableMetrics.js"
import * as Bull from "./internal/bullConnection.js"
import * as Consumer from "./internal/consumer.js"
import * as DurableQueue from "./internal/durableQueue.js"

/** Options of a send. */
export interface SendOptions {
  /** De-duplication id (1 to 256 bytes): a second send with it to the same entity within the window is acknowledged, not delivered. */
  readonly id?: string | undefined
}

/** The answer to a send: the message's id, and whether it was a duplicate of an earlier send. */
export type Sent = DurableQueue.Sent

/** The errors a send can end with. */
export type SendError = DurableUnavailable | InvalidMessage | UnknownEntityType | InvalidArgument

/** Events of durable delivery, as they happen (a slow subscriber loses the oldest). */
export type DurableEvent = {
  readonly _tag: "DeadLettered"
  readonly id: string
  readonly type: string
  readonly entity: string
  readonly message: string
  readonly attempts: number
  readonly error: string
}

/** Queue depths for dashboards and tests. */
export interface DurableStats {
  readonly waiting: number
  readonly active: number
  /** Messages waiting for a retry or parked behind their entity's head. */
  readonly delayed: number
  /** Failed BullMQ jobs kept for inspection (each also a dead letter). */
  readonly failed: number
  readonly deadLetters: number
}

/** The durable messages service. */
export interface DurableMessagesShape {
  readonly config: DurableConfig.DurableConfig
  /** Sends a message to an entity of a type registered here (or given in the layer's options). */
  readonly send: (type: string, id: string, tag: string, payload: unknown, options?: SendOptions) => Effect.Effect<Sent, SendError>
  /** Sends with the schemas of `entity` (which need not be registered in this process). */
  readonly sendTo: (entity: AnyEntityType, id: string, tag: string, payload: unknown, options?: SendOptions) => Effect.Effect<Sent, SendError>
  /** `sendTo` as a Promise, for callers that do not use Effect (it rejects with the typed error). */
  readonly sendToPromise: (entity: AnyEntityType, id: string, tag: string, payload: unknown, options?: SendOptions) => Promise<Sent>
  /** Sends a message whose payload is already encoded (a dead letter's): no schema at hand is needed. */
  readonly sendEncoded: (type: string, id: string, tag: string, encodedPayload: unknown, options?: SendOptions) => Effect.Effect<Sent, DurableUnavailable | InvalidArgument>
  readonly events: Stream.Stream<DurableEvent>
  readonly stats: Effect.Effect<DurableStats, DurableUnavailable>
  /** An entity type this service can send to (registered here, or given in the layer's options). */
  readonly entityType: (name: string) => AnyEntityType | undefined
  /** The queue's Redis side (dead letters use it). */
  readonly queue: DurableQueue.DurableQueue
  /**
   * Sweeps the lanes now instead of waiting for the next period (`laneSweepEveryMillis`); lanes
   * claimed since `staleBefore` (ms since the epoch; default one period ago) are left alone. Fails
   * with `DurableUnavailable` in a process that does not consume.
   */
  readonly sweepLanes: (staleBefore?: number) => Effect.Effect<Consumer.LaneSweep, DurableUnavailable>
}

/** The durable messages service tag. */
export class DurableMessages extends Context.Service<DurableMessages, DurableMessagesShape>()("shardfeed/DurableMessages") {}

/** Options of the layer. */
export interface DurableOptions extends Bull.BullConnectionOptions {
  readonly config?: Partial<DurableConfig.DurableConfig> | undefined
  /** Entity types to send to and deliver, besides those registered with the `EntityRuntime` here. */
  readonly entities?: ReadonlyArray<AnyEntityType> | undefined
}

const DEDUP_ID_BYTES_MAX = 256
const EVENTS_BUFFER = 4_096
const CAUSE_TEXT_MAX = 1_000

type AnyRpc = Rpc.AnyWithProps

/** A short text for a failed reply: the error's tag and fields, or the defect. */
const describeExit = (exit: Exit.Failure<unknown, unknown>): string => {
  const failure = Cause.findErrorOption(exit.cause)
  if (failure._tag === "Some") {
    const error = failure.value
    if (typeof error === "object" && error !== null && "_tag" in error) {
      const { _tag, ...fields } = error as Record<string, unknown>
      return `${String(_tag)} ${JSON.stringify(fields)}`.slice(0, CAUSE_TEXT_MAX)
    }
    return String(error).slice(0, CAUSE_TEXT_MAX)
  }
  return Cause.pretty(exit.cause).slice(0, CAUSE_TEXT_MAX)
}

/** Per-message codecs, made once per entity type and tag (the hot path reuses them). */
class Codecs {
  private readonly byMessage = new Map<AnyRpc, { readonly decode: (input: unknown) => Exit.Exit<unknown, Schema.SchemaError>; readonly encode: (input: unknown) => Exit.Exit<unknown, Schema.SchemaError> }>()

  of(rpc: AnyRpc) {
    let codec = this.byMessage.get(rpc)
    if (codec === undefined) {
      const json = Schema.toCodecJson(rpc.payloadSchema) as unknown as Schema.Codec<unknown, unknown>
      codec = { decode: Schema.decodeUnknownExit(json), encode: Schema.encodeUnknownExit(json) }
      this.byMessage.set(rpc, codec)
    }
    return codec
  }
}

const unavailable = (operation: string) => (cause: unknown) => Bull.translate(operation, cause)

/** Builds the service for the scope: opens the queue and, unless `consume` is off, consumes it. */
export const make = (options: DurableOptions): Effect.Effect<DurableMessagesShape, DurableUnavailable | InvalidArgument, Messenger | Scope.Scope> =>
  Effect.gen(function*() {
    const validated = yield* DurableConfig.validate(options.config)
    const parsed = Bull.parseUrl(options.url)
    if (parsed instanceof InvalidArgument) return yield* Effect.fail(parsed)
    const messenger = yield* Messenger
    const runtime = yield* Effect.serviceOption(EntityRuntime)
    const context = yield* Effect.context<never>()
    const recorder = new DurableMetrics.Recorder(context)
    const events = yield* PubSub.sliding<DurableEvent>(EVENTS_BUFFER)
    const given = new Map((options.entities ?? []).map((entity) => [entity.type, entity]))
    const lookup = (type: string): AnyEntityType | undefined =>
      given.get(type) ?? Option.match(runtime, { onNone: () => undefined, onSome: (found) => found.entityType(type) })
    const codecs = new Codecs()

    const queue = yield* Effect.acquireRelease(
      Effect.tryPromise({ try: () => DurableQueue.openWithin(validated, options, parsed), catch: unavailable("connect") }),
      (opened) => Effect.promise(() => opened.close().catch(() => undefined))
    )
    // The settings as the queue uses them (on a Redis Cluster, the prefix carries its hash tag).
    const config = queue.config

    const sentCounters = new DurableMetrics.Counters((type: string) => ({
      sent: recorder.counter(DurableMetrics.sends, { type, outcome: "sent" }),
      duplicate: recorder.counter(DurableMetrics.sends, { type, outcome: "duplicate" })
    }))
    const deliveryCounters = new DurableMetrics.Counters((type: string) => ({
      ok: recorder.counter(DurableMetrics.deliveries, { type, outcome: "ok" }),
      retry: recorder.counter(DurableMetrics.deliveries, { type, outcome: "retry" }),
      dead: recorder.counter(DurableMetrics.deliveries, { type, outcome: "dead" })
    }))
    const countSent = (type: string, sent: Sent) => {
      const counters = sentCounters.of(type)
      ;(sent.duplicate ? counters.duplicate : counters.sent)()
      return sent
    }

    /** Checks and encodes a send without running anything: the Effect and Promise APIs share it. */
    const prepareEncoded = (type: string, id: string, tag: string, encoded: unknown, sendOptions: SendOptions | undefined): DurableQueue.Outgoing | InvalidArgument => {
      const dedupId = sendOptions?.id
      if (dedupId !== undefined && !(typeof dedupId === "string" && dedupId.length > 0 && utf8Length(dedupId) <= DEDUP_ID_BYTES_MAX)) {
        return new InvalidArgument({ field: "id", message: `must be 1 to ${DEDUP_ID_BYTES_MAX} bytes of UTF-8` })
      }
      const badId = validateEntityId(type, id, lookup(type)?.idBytesMax)
      if (badId !== undefined) return new InvalidArgument({ field: "id", message: badId.message })
      const size = encoded === undefined || encoded === null ? 0 : utf8Length(JSON.stringify(encoded) ?? "")
      if (size > config.payloadBytesMax) {
        return new InvalidArgument({ field: "message.payload", message: `is ${size} bytes encoded, over the limit of ${config.payloadBytesMax}` })
      }
      return { t: type, e: id, m: tag, ...(encoded === undefined || encoded === null ? {} : { p: encoded }), dedupId }
    }

    const prepare = (entity: AnyEntityType, id: string, tag: string, payload: unknown, sendOptions: SendOptions | undefined): DurableQueue.Outgoing | SendError => {
      const rpc = entity.rpcs.get(tag) as AnyRpc | undefined
      if (rpc === undefined) return new InvalidMessage({ entity: `${entity.type}/${id}`, field: "message", message: `unknown message ${tag}` })
      const encoded = codecs.of(rpc).encode(payload)
      if (Exit.isFailure(encoded)) {
        const failure = Cause.findErrorOption(encoded.cause)
        const text = failure._tag === "Some" ? failure.value.message.split("\n")[0] ?? "" : "cannot be encoded"
        return new InvalidMessage({ entity: `${entity.type}/${id}`, field: "message.payload", message: text })
      }
      return prepareEncoded(entity.type, id, tag, encoded.value, sendOptions)
    }

    const isOutgoing = (prepared: DurableQueue.Outgoing | SendError): prepared is DurableQueue.Outgoing => !("_tag" in prepared)

    const enqueue = (message: DurableQueue.Outgoing): Effect.Effect<Sent, DurableUnavailable> =>
      Effect.map(Effect.tryPromise({ try: () => queue.send(message), catch: unavailable("send") }), (sent) => countSent(message.t, sent))

    const sendEncoded = (type: string, id: string, tag: string, encoded: unknown, sendOptions?: SendOptions): Effect.Effect<Sent, DurableUnavailable | InvalidArgument> =>
      Effect.suspend((): Effect.Effect<Sent, DurableUnavailable | InvalidArgument> => {
        const prepared = prepareEncoded(type, id, tag, encoded, sendOptions)
        return "_tag" in prepared ? Effect.fail(prepared) : enqueue(prepared)
      })

    const sendTo = (entity: AnyEntityType, id: string, tag: string, payload: unknown, sendOptions?: SendOptions): Effect.Effect<Sent, SendError> =>
      Effect.suspend((): Effect.Effect<Sent, SendError> => {
        const prepared = prepare(entity, id, tag, payload, sendOptions)
        return isOutgoing(prepared) ? enqueue(prepared) : Effect.fail(prepared)
      })

    const sendToPromise = (entity: AnyEntityType, id: string, tag: string, payload: unknown, sendOptions?: SendOptions): Promise<Sent> => {
      const prepared = prepare(entity, id, tag, payload, sendOptions)
      if (!isOutgoing(prepared)) return Promise.reject(prepared)
      return queue.send(prepared).then((sent) => countSent(prepared.t, sent), (cause: unknown) => Promise.reject(Bull.translate("send", cause)))
    }

    const send = (type: string, id: string, tag: string, payload: unknown, sendOptions?: SendOptions) =>
      Effect.suspend(() => {
        const entity = lookup(type)
        return entity === undefined ? Effect.fail(new UnknownEntityType({ type })) : sendTo(entity, id, tag, payload, sendOptions)
      })

    const deliver = (message: DurableQueue.MessageData): Promise<Consumer.Delivery> =>
      new Promise((resolve) => {
        const entity = lookup(message.t)
        // Not registered here (yet): a deploy may bring it, so this is an ordinary failed attempt.
        if (entity === undefined) return resolve({ ok: false, error: `UnknownEntityType ${JSON.stringify({ type: message.t })}`, permanent: false })
        const rpc = entity.rpcs.get(message.m) as AnyRpc | undefined
        if (rpc === undefined) return resolve({ ok: false, error: `InvalidMessage unknown message ${message.m}`, permanent: true })
        const decoded = codecs.of(rpc).decode(message.p ?? null)
        if (Exit.isFailure(decoded)) return resolve({ ok: false, error: `InvalidMessage payload: ${describeExit(decoded)}`, permanent: true })
        deliverTo(messenger, message, decoded.value, config.deliveryTimeoutMillis, resolve)
      })

    const consumer = !config.consume ? undefined : yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () =>
          Consumer.start(queue, {
            deliver,
            delivered: (type, outcome) => deliveryCounters.of(type)[outcome](),
            parked: recorder.counter(DurableMetrics.parked, {}),
            deadLettered: (record, dropped) => {
              recorder.add(DurableMetrics.deadLetters, { type: record.type })
              if (dropped > 0) recorder.add(DurableMetrics.deadLettersDropped, { type: record.type }, dropped)
              PubSub.publishUnsafe(events, {
                _tag: "DeadLettered" as const,
                id: record.id,
                type: record.type,
                entity: record.entity,
                message: record.message._tag,
                attempts: record.attempts,
                error: record.error
              })
            },
            log: (text) => {
              Effect.runFork(Effect.logWarning(text))
            }
          }),
        catch: unavailable("consume")
      }),
      (consumer) => Effect.promise(() => consumer.close().catch(() => undefined))
    )

    const stats = Effect.tryPromise({
      try: async () => {
        const counts = await queue.queue.getJobCounts("waiting", "active", "delayed", "failed")
        const deadLetters = await queue.client.zcard(queue.keys.deadLetterAll)
        return {
          waiting: counts.waiting ?? 0,
          active: counts.active ?? 0,
          delayed: counts.delayed ?? 0,
          failed: counts.failed ?? 0,
          deadLetters
        }
      },
      catch: unavailable("stats")
    })

    const sweepLanes = (staleBefore?: number) =>
      consumer === undefined
        ? Effect.fail(new DurableUnavailable({ operation: "sweep", message: "this process does not consume durable messages" }))
        : Effect.tryPromise({ try: () => consumer.sweepLanes(staleBefore), catch: unavailable("sweep") })

    return { config, send, sendTo, sendToPromise, sendEncoded, events: Stream.fromPubSub(events), stats, entityType: lookup, queue, sweepLanes }
  })

/** Delivers one decoded message through the messenger and reports its outcome. */
const deliverTo = (
  messenger: MessengerShape,
  message: DurableQueue.MessageData,
  payload: unknown,
  timeoutMillis: number,
  resolve: (delivery: Consumer.Delivery) => void
) =>
  messenger.deliver({
    type: message.t,
    id: message.e,
    tag: message.m,
    payload,
    deadline: Date.now() + timeoutMillis,
    reply: (exit) =>
      resolve(Exit.isSuccess(exit) ? { ok: true } : { ok: false, error: describeExit(exit), permanent: isInvalidMessage(exit) })
  })

/** Durable messages (and, with them, dead letters) for the scope. */
export const layer = (options: DurableOptions): Layer.Layer<DurableMessages | DeadLetters.DeadLetters, DurableUnavailable | InvalidArgument, Messenger> =>
  Layer.effectContext(
    Effect.map(make(options), (service) => Context.make(DurableMessages, service).pipe(Context.add(DeadLetters.DeadLetters, DeadLetters.make(service.queue))))
  )

/** The payload arguments of a durable send: optional when the message has none. */
export type DurableSendArgs<R extends Rpc.Any> = [Rpc.Payload<R>] extends [void] ? [payload?: void, options?: SendOptions]
  : [payload: Rpc.Payload<R>, options?: SendOptions]

/** A typed durable client of one entity type. */
export interface DurableClient<Rpcs extends Rpc.Any> {
  /** Sends durably; succeeds once Redis holds the message. */
  readonly send: <Tag extends Rpcs["_tag"]>(id: string, tag: Tag, ...args: DurableSendArgs<Rpc.ExtractTag<Rpcs, Tag>>) => Effect.Effect<Sent, SendError>
  /** The same as a Promise, which rejects with the typed error. */
  readonly promise: {
    readonly send: <Tag extends Rpcs["_tag"]>(id: string, tag: Tag, ...args: DurableSendArgs<Rpc.ExtractTag<Rpcs, Tag>>) => Promise<Sent>
  }
}

/** A durable client of `entity` (its schemas are used, so it needs no registration here). */
export const client = <Type extends string, Rpcs extends Rpc.Any>(entity: EntityType<Type, Rpcs>): Effect.Effect<DurableClient<Rpcs>, never, DurableMessages> =>
  Effect.map(DurableMessages, (service): DurableClient<Rpcs> => ({
    send: ((id: string, tag: string, payload?: unknown, sendOptions?: SendOptions) =>
      service.sendTo(entity as unknown as AnyEntityType, id, tag, payload, sendOptions)) as DurableClient<Rpcs>["send"],
    promise: {
      send: ((id: string, tag: string, payload?: unknown, sendOptions?: SendOptions) =>
        service.sendToPromise(entity as unknown as AnyEntityType, id, tag, payload, sendOptions)) as DurableClient<Rpcs>["promise"]["send"]
    }
  }))
