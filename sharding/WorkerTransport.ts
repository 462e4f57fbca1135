/**
 * Worker-to-worker messaging over `effect/rpc` on TCP sockets (newline-delimited JSON frames).
 * A sender batches the envelopes for one peer into `Deliver` calls; the receiver hands each
 * message to its entity runtime and streams every outcome back as soon as it is known, so one
 * slow entity never holds up the rest of a batch. Batches to a peer are sent in order on one
 * connection and delivered in order, which keeps each sender's order; the envelopes waiting for a
 * peer and the batches in flight to it are bounded (`Overloaded` past the bound).
 *
 * Payloads and replies cross as the JSON their message's schemas encode to. Redis carries none of
 * this traffic: only coordination.
 */
import { NodeSocket, NodeSocketServer } from "@effect/platform-node-shared"
import { Cause, type Context, Effect, Exit, Fiber, Layer, Queue, Schema, type Scope, Semaphore, Stream } from "effect"
import { Rpc, RpcClient, RpcGroup, RpcSerialization, RpcServer } from "effect/rpc"
import * as Entity from "../actors/Entity.js"
import * as EntityError from "../actors/EntityError.js"
import { EntityRuntime } from "../actors/EntityRuntime.js"
import type { Envelope } from "../actors/Messenger.js"
import { InvalidArgument } from "../persistence/StoreError.js"

/** One message on the wire. */
export const WireMessage = Schema.Struct({
  type: Schema.String,
  id: Schema.String,
  tag: Schema.String,
  payload: Schema.Json,
  deadline: Schema.Number
})

/** The outcome of message `index` of a batch: the encoded reply, or the encoded error. */
export const WireOutcome = Schema.Struct({ index: Schema.Number, ok: Schema.Boolean, value: Schema.Json })

/** Delivers a batch of messages; streams their outcomes as they come. */
export const Deliver = Rpc.make("Deliver", {
  payload: { messages: Schema.Array(WireMessage) },
  success: WireOutcome,
  stream: true
})

/** The transport's protocol. */
export const TransportRpcs = RpcGroup.make(Deliver)

type Codec = Schema.Codec<unknown, unknown>
const codecs = new WeakMap<object, Codec>()
/** The JSON codec of a schema, made once. */
const jsonCodec = (schema: Schema.Top): Codec => {
  let codec = codecs.get(schema)
  if (codec === undefined) {
    codec = Schema.toCodecJson(schema) as unknown as Codec
    codecs.set(schema, codec)
  }
  return codec
}

const rpcOf = (type: string, tag: string) => Entity.lookup(type)?.rpcs.get(tag) as Rpc.AnyWithProps | undefined

/** The runtime's own errors, which any message may end with. */
const DeliveryFailure = Schema.Union([
  EntityError.MailboxFull, EntityError.PoisonMessage, EntityError.AskTimeout, EntityError.ShardNotOwned,
  EntityError.UnknownEntityType, EntityError.Overloaded, EntityError.EntityUnavailable, EntityError.OutcomeUnknown, EntityError.InvalidMessage,
  InvalidArgument
])
const deliveryTags = new Set(DeliveryFailure.members.map((member) => (member as unknown as { identifier?: string }).identifier ?? ""))

/** Encodes an outcome for the wire (sender of the reply: the owning worker). */
const encodeOutcome = (index: number, type: string, tag: string, exit: Exit.Exit<unknown, unknown>) => {
  const rpc = rpcOf(type, tag)
  if (Exit.isSuccess(exit)) {
    const value = rpc === undefined ? null : Schema.encodeUnknownSync(jsonCodec(rpc.successSchema))(exit.value)
    return { index, ok: true, value: value as Schema.Json }
  }
  const error = Cause.findErrorOption(exit.cause)
  if (error._tag === "Some") {
    const tagged = error.value as { readonly _tag?: string }
    const schema = rpc !== undefined && Schema.is(rpc.errorSchema)(error.value) ? rpc.errorSchema : DeliveryFailure
    const encoded = Effect.runSyncExit(Schema.encodeUnknownEffect(jsonCodec(schema))(error.value))
    if (Exit.isSuccess(encoded)) return { index, ok: false, value: encoded.value as Schema.Json }
    return { index, ok: false, value: { _tag: "EntityUnavailable", entity: `${type}`, reason: `unencodable error ${tagged._tag ?? ""}` } }
  }
  return { index, ok: false, value: { _tag: "EntityUnavailable", entity: type, reason: Cause.pretty(exit.cause).slice(0, 500) } }
}

/** Decodes an outcome from the wire back into an Exit (receiver of the reply: the sender). */
export const decodeOutcome = (type: string, tag: string, ok: boolean, value: unknown): Exit.Exit<unknown, unknown> => {
  const rpc = rpcOf(type, tag)
  if (ok) return rpc === undefined ? Exit.succeed(value) : Exit.succeed(Schema.decodeUnknownSync(jsonCodec(rpc.successSchema))(value))
  const tagged = (value as { readonly _tag?: unknown })?._tag
  const schema = typeof tagged === "string" && deliveryTags.has(tagged) ? DeliveryFailure : rpc?.errorSchema ?? DeliveryFailure
  const decoded = Effect.runSyncExit(Schema.decodeUnknownEffect(jsonCodec(schema))(value))
  return Exit.fail(Exit.isSuccess(decoded) ? decoded.value : new EntityError.EntityUnavailable({ entity: type, reason: "undecodable error reply" }))
}

/** The receiving side's handler: every message to the local runtime, outcomes streamed back. */
const deliverHandler = Effect.map(EntityRuntime, (runtime) =>
  TransportRpcs.of({
    Deliver: ({ messages }) =>
      Stream.unwrap(Effect.gen(function*() {
        const outcomes = yield* Queue.bounded<typeof WireOutcome.Type>(Math.max(1, messages.length))
        // One synchronous loop: a batch's messages reach their mailboxes in order, before any later batch's.
        messages.forEach((message, index) => {
          const rpc = rpcOf(message.type, message.tag)
          const answer = (exit: Exit.Exit<unknown, unknown>) => Queue.offerUnsafe(outcomes, encodeOutcome(index, message.type, message.tag, exit))
          if (rpc === undefined) {
            return answer(Exit.fail(new EntityError.UnknownEntityType({ type: message.type })))
          }
          const payload = Effect.runSyncExit(Schema.decodeUnknownEffect(jsonCodec(rpc.payloadSchema))(message.payload))
          if (Exit.isFailure(payload)) {
            return answer(Exit.fail(new EntityError.InvalidMessage({ entity: `${message.type}/${message.id}`, field: "payload", message: "does not match its schema" })))
          }
          runtime.deliver({ type: message.type, id: message.id, tag: message.tag, payload: payload.value, deadline: message.deadline, reply: answer })
        })
        return Stream.take(Stream.fromQueue(outcomes), messages.length)
      }))
  }))

/**
 * `effect/rpc` acknowledges every streamed chunk by default: the server writes a batch's next
 * outcomes only after the client's `Ack` for the previous ones, a round trip per chunk that
 * turns one slow entity into a stall for the rest of its batch and doubles the frames written.
 * A batch's outcomes are already bounded (one per message, `transportBatchMax` at most), so both
 * ends of this transport turn acknowledgements off — they must agree, and both are ours.
 */
const withoutAcks = <Id, Shape extends { readonly supportsAck: boolean }, E, R>(
  tag: Context.Key<Id, Shape>,
  layer: Layer.Layer<Id, E, R>
): Layer.Layer<Id, E, R> =>
  Layer.effect(tag, Effect.map(Effect.service(tag), (protocol): Shape => ({ ...protocol, supportsAck: false }))).pipe(Layer.provide(layer))

/**
 * Serves the transport on `host:port` for the scope, delivering to this process's runtime; the
 * socket server stays in the context so its bound port (port 0 picks one) can be advertised.
 */
export const layerServer = (options: { readonly host: string; readonly port: number }) =>
  RpcServer.layer(TransportRpcs, { disableTracing: true }).pipe(
    Layer.provide(TransportRpcs.toLayer(deliverHandler)),
    Layer.provide(withoutAcks(RpcServer.Protocol, RpcServer.layerProtocolSocketServer)),
    Layer.provide(RpcSerialization.layerNdjson),
    // Nagle's algorithm would hold each small frame of streamed outcomes until the previous one
    // is acknowledged (milliseconds per ask on loopback); frames are already batched here.
    Layer.provideMerge(NodeSocketServer.layer({ host: options.host, port: options.port, noDelay: true }))
  )

/** An envelope waiting to go to a peer, with its encoded form. */
interface Pending {
  readonly envelope: Envelope
  readonly wire: typeof WireMessage.Type
}

/** A connection to one peer: a bounded queue and a sender fiber that batches it. */
export interface Peer {
  readonly send: (envelope: Envelope) => void
  readonly close: Effect.Effect<void>
}

const BATCHES_IN_FLIGHT = 16

const describe = (error: unknown) => String((error as { message?: unknown })?.message ?? error)

/** For a message that never left this process: the router may send it again. */
const connectionError = (error: unknown) => new EntityError.EntityUnavailable({ entity: "transport", reason: `peer unreachable: ${describe(error)}` })

/**
 * For a message of a batch handed to the connection: unless the connection never opened, the
 * peer may have handled it and lost only the reply, so it must not be sent again.
 */
const sentError = (error: unknown) => {
  const failure = error as { readonly _tag?: unknown; readonly reason?: { readonly _tag?: unknown } } | undefined
  if (failure?._tag === "RpcClientError" && failure.reason?._tag === "SocketOpenError") return connectionError(error)
  return new EntityError.OutcomeUnknown({ entity: "transport", reason: `the connection to the peer was lost with the message sent: ${describe(error)}` })
}

/** Connects to the peer at `host:port`; `close` stops it and fails what it still holds. */
export const connect = (
  address: { readonly host: string; readonly port: number },
  limits: { readonly batchMax: number; readonly queueMax: number }
): Effect.Effect<Peer, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    // The protocol lives as long as the peer's scope (providing it to `make` alone would close the
    // socket as soon as the client was made).
    const protocol = yield* Layer.build(
      withoutAcks(
        RpcClient.Protocol,
        RpcClient.layerProtocolSocket({ retryTransientErrors: false }).pipe(
          Layer.provide(NodeSocket.layerNet({ host: address.host, port: address.port, noDelay: true })),
          Layer.provide(RpcSerialization.layerNdjson)
        )
      )
    )
    const client = yield* RpcClient.make(TransportRpcs, { disableTracing: true }).pipe(Effect.provideContext(protocol), Effect.orDie)
    const queue = yield* Queue.bounded<Pending>(limits.queueMax)
    const inFlight = yield* Semaphore.make(BATCHES_IN_FLIGHT)
    /** Answers the batch's unanswered messages with the error `reason` makes (made only if one is left: errors capture stacks). */
    const settle = (batch: ReadonlyArray<Pending>, done: Array<boolean>, reason: () => unknown) => {
      let exit: Exit.Exit<unknown, unknown> | undefined
      batch.forEach((item, i) => {
        if (done[i]) return
        done[i] = true
        exit ??= Exit.fail(sentError(reason()))
        item.envelope.reply?.(exit)
      })
    }
    const sendBatch = (batch: ReadonlyArray<Pending>) => {
      const done = batch.map(() => false)
      return client.Deliver({ messages: batch.map((item) => item.wire) }).pipe(
        Stream.runForEach((outcome) =>
          Effect.sync(() => {
            const item = batch[outcome.index]
            if (item === undefined || done[outcome.index]) return
            done[outcome.index] = true
            item.envelope.reply?.(decodeOutcome(item.wire.type, item.wire.tag, outcome.ok, outcome.value))
          })),
        Effect.catchCause((cause) => Effect.sync(() => settle(batch, done, () => Cause.squash(cause)))),
        Effect.ensuring(Effect.sync(() => settle(batch, done, () => "the connection ended before a reply")))
      )
    }
    // The sender: batches go out in queue order; replies are consumed by their own fibers, so a
    // slow batch never delays the next one, up to BATCHES_IN_FLIGHT of them.
    const sender = yield* Effect.forkScoped(Effect.forever(
      Effect.flatMap(Queue.takeBetween(queue, 1, limits.batchMax), (batch) =>
        Effect.flatMap(inFlight.take(1), () => Effect.forkChild(Effect.ensuring(sendBatch(batch), inFlight.release(1)))))
    ))
    return {
      send: (envelope) => {
        const rpc = rpcOf(envelope.type, envelope.tag)
        if (rpc === undefined) return envelope.reply?.(Exit.fail(new EntityError.UnknownEntityType({ type: envelope.type })))
        const payload = Effect.runSyncExit(Schema.encodeUnknownEffect(jsonCodec(rpc.payloadSchema))(envelope.payload))
        if (Exit.isFailure(payload)) {
          const issue = Cause.findErrorOption(payload.cause)
          const detail = issue._tag === "Some" ? `: ${String((issue.value as { readonly message?: unknown }).message ?? issue.value).slice(0, 300)}` : ""
          return envelope.reply?.(Exit.fail(new EntityError.InvalidMessage({ entity: `${envelope.type}/${envelope.id}`, field: "payload", message: `does not encode with its schema${detail}` })))
        }
        const wire = { type: envelope.type, id: envelope.id, tag: envelope.tag, payload: payload.value as Schema.Json, deadline: envelope.deadline === Number.POSITIVE_INFINITY ? 8.64e15 : envelope.deadline }
        if (!Queue.offerUnsafe(queue, { envelope, wire })) envelope.reply?.(Exit.fail(new EntityError.Overloaded({ resident: limits.queueMax })))
      },
      close: Effect.gen(function*() {
        yield* Fiber.interrupt(sender)
        const left = yield* Queue.clear(queue)
        for (const item of left) item.envelope.reply?.(Exit.fail(connectionError("the connection was closed")))
      })
    }
  })
