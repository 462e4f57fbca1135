/**
 * The cluster's `Messenger`: a message goes to the local runtime when this worker owns its
 * shard, to the owner over the worker transport otherwise. When the shard is moving (no owner
 * yet, `ShardNotOwned`, the owner unreachable) the router keeps the message and retries against
 * the refreshed shard map with a capped backoff, until the message's deadline or
 * `routeRetryMillis` — so senders see a move as a short delay, not an error. Messages waiting
 * for one shard wait in order, and new ones queue behind them, so each sender's order holds
 * through a move. Everything waiting is bounded.
 */
import { Cause, Effect, Exit, Layer, Scope } from "effect"
import { Overloaded, ShardNotOwned } from "../actors/EntityError.js"
import { AskTracker } from "../actors/internal/askTracker.js"
import { EntityRuntime } from "../actors/EntityRuntime.js"
import { type Envelope, Messenger, type MessengerShape } from "../actors/Messenger.js"
import { shardOf } from "../actors/ShardId.js"
import { ShardingConfig } from "./ShardingConfig.js"
import { ShardManager } from "./ShardManager.js"
import { connect, type Peer } from "./WorkerTransport.js"

/**
 * Errors after which a message is routed again rather than answered: those that say it was not
 * handled. `OutcomeUnknown` (it may have been) goes back to the sender, as a timeout would.
 * `Overloaded` answered at once, as the message was handed over (the peer's queue or the local
 * runtime's asks in flight are full), is backpressure: the message never left, so it waits here
 * in order behind its shard and is tried again with the backoff until its retry time is over;
 * only this router's own bound (`WAITING_MAX`) then answers `Overloaded`. An `Overloaded` that
 * comes back later (from the owner, with later messages possibly handled) goes to the sender.
 */
const RETRYABLE = new Set(["ShardNotOwned", "EntityUnavailable"])
const WAITING_MAX = 100_000
const BACKOFF_START = 10
const BACKOFF_MAX = 250
const TICK_MILLIS = 10

interface Waiting {
  readonly envelope: Envelope
  readonly shard: number
  readonly giveUpAt: number
  attempts: number
  notBefore: number
  lastError: unknown
}

const parseAddress = (address: string) => {
  const colon = address.lastIndexOf(":")
  return { host: address.slice(0, colon), port: Number(address.slice(colon + 1)) }
}

/** Builds the router for the scope. */
export const make: Effect.Effect<MessengerShape, never, EntityRuntime | ShardManager | Scope.Scope> = Effect.gen(function*() {
  const runtime = yield* EntityRuntime
  const manager = yield* ShardManager
  const config = yield* ShardingConfig
  const scope = yield* Effect.scope
  const shardCount = runtime.config.shardCount
  // A peer is "connecting" until its connection is made; messages for it wait meanwhile.
  const peers = new Map<string, Peer | "connecting">()
  // Per shard, messages waiting to be routed, oldest first: a shard in this map is "moving".
  const waiting = new Map<number, Array<Waiting>>()
  let waitingCount = 0
  // Once closed nothing waits: a message that would is answered at once (no loop retries it).
  let closed = false

  const peer = (address: string): Peer | undefined => {
    const existing = peers.get(address)
    if (existing !== undefined) return existing === "connecting" ? undefined : existing
    peers.set(address, "connecting")
    Effect.runFork(
      connect(parseAddress(address), { batchMax: config.transportBatchMax, queueMax: config.transportQueueMax }).pipe(
        Scope.provide(scope),
        Effect.matchCause({
          onFailure: () => void peers.delete(address),
          onSuccess: (connected) => void peers.set(address, connected)
        })
      )
    )
    return undefined
  }

  /** Forgets a peer that failed, so the next message reconnects (it may have restarted). */
  const forget = (address: string) => {
    const existing = peers.get(address)
    if (existing === undefined || existing === "connecting") return
    peers.delete(address)
    Effect.runFork(existing.close)
  }

  /** Answers a message; a `send` has nobody to answer, so its failure is logged (as the runtime logs those it refuses). */
  const answer = (envelope: Envelope, exit: Exit.Exit<unknown, unknown>) => {
    if (envelope.reply !== undefined) return envelope.reply(exit)
    if (Exit.isFailure(exit)) {
      Effect.runFork(Effect.logWarning(`message ${envelope.tag} sent to ${envelope.type}/${envelope.id} without reply failed`, Cause.pretty(exit.cause).slice(0, 500)))
    }
  }

  /** Ends a message that was never handled: its last retryable error, or the shard not available. */
  const giveUp = (item: Waiting) =>
    answer(item.envelope, Exit.fail(item.lastError ?? new ShardNotOwned({ entity: `${item.envelope.type}/${item.envelope.id}`, shard: item.shard })))

  const park = (item: Waiting) => {
    if (closed) return giveUp(item)
    if (waitingCount >= WAITING_MAX) return answer(item.envelope, Exit.fail(new Overloaded({ resident: waitingCount })))
    let queue = waiting.get(item.shard)
    if (queue === undefined) {
      queue = []
      waiting.set(item.shard, queue)
    }
    queue.push(item)
    waitingCount++
  }

  /** Sends one message toward its shard's owner; a retryable outcome parks it again. */
  const route = (item: Waiting): boolean => {
    const owner = manager.owner(item.shard)
    if (owner === undefined) return false
    const original = item.envelope
    // True while the message is being handed over: an answer then means it never left.
    let handing = true
    const reply = (exit: Exit.Exit<unknown, unknown>) => {
      if (Exit.isFailure(exit)) {
        const error = exit.cause.reasons.find((reason) => reason._tag === "Fail")?.error as { readonly _tag?: string; readonly entity?: string } | undefined
        // A connection that failed is made anew for the next message (the peer may have restarted).
        if (error?.entity === "transport" && owner.worker !== manager.workerId) forget(owner.address)
        const moved = error?._tag !== undefined && RETRYABLE.has(error._tag)
        const heldBack = handing && error?._tag === "Overloaded"
        if ((moved || heldBack) && Date.now() < item.giveUpAt) {
          item.lastError = error
          item.attempts++
          item.notBefore = Date.now() + Math.min(BACKOFF_MAX, BACKOFF_START * 2 ** Math.min(item.attempts, 5))
          if (moved) manager.requestRefresh()
          return park(item)
        }
      }
      answer(original, exit)
    }
    const envelope: Envelope = { ...original, reply, begin: () => original.begin?.() }
    if (owner.worker === manager.workerId) {
      runtime.deliver(envelope)
      handing = false
      return true
    }
    const connected = peer(owner.address)
    if (connected === undefined) return false
    connected.send(envelope)
    handing = false
    // The owner may handle it from now on, whatever becomes of its answer.
    original.begin?.()
    return true
  }

  /** Routes what waits, shard by shard, in order; stops at the first message of a shard still not routable. */
  const drain = () => {
    const now = Date.now()
    for (const [shard, queue] of waiting) {
      while (queue.length > 0) {
        const item = queue[0]!
        if (now >= item.giveUpAt) {
          queue.shift()
          waitingCount--
          // Never routed (no owner, or no connection to it, all along): the shard is not available.
          giveUp(item)
          continue
        }
        if (now < item.notBefore) break
        queue.shift()
        waitingCount--
        if (!route(item)) {
          queue.unshift(item)
          waitingCount++
          item.notBefore = now + BACKOFF_START
          break
        }
      }
      if (queue.length === 0) waiting.delete(shard)
    }
  }
  yield* Effect.forkScoped(Effect.forever(Effect.flatMap(Effect.sleep(TICK_MILLIS), () => Effect.sync(drain))))
  // Closing answers what waits (its retry loop is gone with the scope), and what would wait from
  // now on: answers still to come from the local runtime, draining as the worker leaves, and
  // from peers whose connections close here. No ask is left without an end.
  yield* Effect.addFinalizer(() =>
    Effect.sync(() => {
      closed = true
      const parked = [...waiting.values()].flat()
      waiting.clear()
      waitingCount = 0
      for (const item of parked) giveUp(item)
    }).pipe(Effect.andThen(Effect.forEach([...peers.values()], (p) => (p === "connecting" ? Effect.void : p.close), { discard: true }))))

  // Every ask ends by its deadline, even if its owner dies with it in flight.
  const tracker = new AskTracker(WAITING_MAX, Date.now)
  yield* Effect.forkScoped(Effect.forever(Effect.flatMap(Effect.sleep(50), () => Effect.sync(() => tracker.tick()))))

  const deliver = (incoming: Envelope): void => {
    const envelope = tracker.track(incoming)
    if (envelope === undefined) return
    const shard = shardOf(envelope.type, envelope.id, shardCount)
    const now = Date.now()
    const item: Waiting = {
      envelope,
      shard,
      giveUpAt: Math.min(envelope.deadline, now + config.routeRetryMillis),
      attempts: 0,
      notBefore: now,
      lastError: undefined
    }
    // Behind messages already waiting for this shard, to keep their order.
    if (waiting.has(shard) || !route(item)) {
      manager.requestRefresh()
      park(item)
    }
  }
  return { deliver }
})

/** The router as the process's `Messenger`. */
export const layer: Layer.Layer<Messenger, never, EntityRuntime | ShardManager> = Layer.effect(Messenger, make)
