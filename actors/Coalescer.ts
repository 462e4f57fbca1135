/**
 * Calls to one entity coalesced in one process: a call to an entity with no message of this
 * coalescer in flight is sent at once as its own message; calls made while one is in flight
 * wait, and go together as one batch message when it is answered. Each call keeps its own
 * outcome and runs in the order the calls were made, exactly as if sent one by one, so a lone
 * call costs what it always did and a hot entity (a feed or a leaderboard under 1,000 concurrent
 * writers) costs one message per round trip instead of one per call — across processes, one
 * frame. Waiting calls are bounded per entity (`MailboxFull` past it), a batch is bounded in
 * calls and in weight (items, say: a single heavier call still goes alone), a batch is sent with
 * the earliest deadline of its calls so no caller waits past its own timeout, and a call
 * interrupted while waiting is never sent.
 *
 * The entity type supplies the two messages: one call alone, and a batch whose reply holds an
 * outcome per call, in order (`Feed`'s `Append`/`AppendBatches`, `SortedSet`'s requests/`Batch`).
 */
import { Effect, Exit } from "effect"
import { failureOf } from "./EntityClient.js"
import { EntityUnavailable, isInvalidMessage, MailboxFull } from "./EntityError.js"
import type { MessengerShape } from "./Messenger.js"

/** A message to the entity: its tag and payload. */
export interface Outgoing {
  readonly tag: string
  readonly payload: unknown
}

/** How one entity type's calls become messages, and its replies outcomes. */
export interface CoalescerSpec<In, Out> {
  /** The entity type the calls go to. */
  readonly type: string
  /** The message of one call sent alone. */
  readonly single: (input: In) => Outgoing
  /** A lone call's reply value as the call's answer. */
  readonly singleReply: (value: unknown) => Out
  /** The message of several calls together. */
  readonly batch: (inputs: ReadonlyArray<In>) => Outgoing
  /** A batch reply's outcomes, one per call in order (a missing one fails its call). */
  readonly batchOutcomes: (value: unknown) => ReadonlyArray<Exit.Exit<Out, unknown> | undefined>
  /** Calls in one batch at most (the batch message's own bound). */
  readonly callsMax: number
  /** Calls that may wait behind the message in flight to one entity. */
  readonly waitingMax: number
  /** How long a caller waits, from its call. */
  readonly timeoutMillis: number
  /** A call's weight (default 1) and a batch's most (default: unbounded but for `callsMax`). */
  readonly weight?: ((input: In) => number) | undefined
  readonly weightMax?: number | undefined
}

interface Call<In, Out> {
  readonly input: In
  readonly deadline: number
  readonly resume: (exit: Exit.Exit<Out, unknown>) => void
  /** Interrupted while waiting: dropped, never sent. */
  cancelled: boolean
}

/** The coalescing sender of one entity type over one messenger. */
export class Coalescer<In, Out> {
  /** Per entity with a message in flight, the calls waiting behind it. */
  private readonly waiting = new Map<string, Array<Call<In, Out>>>()

  constructor(private readonly messenger: MessengerShape, private readonly spec: CoalescerSpec<In, Out>) {}

  /** Sends `input` to entity `id`, alone or with other calls waiting for it. */
  ask(id: string, input: In): Effect.Effect<Out, unknown> {
    return Effect.callback<Out, unknown>((resume) => {
      const cancel = this.submit(id, input, resume)
      return cancel === undefined ? undefined : Effect.sync(cancel)
    })
  }

  /** The same as a Promise, rejected with the call's error. */
  promise(id: string, input: In): Promise<Out> {
    return new Promise<Out>((resolve, reject) => {
      this.submit(id, input, (exit) => (Exit.isSuccess(exit) ? resolve(exit.value) : reject(failureOf(exit))))
    })
  }

  /** Queues or sends one call; answers how to cancel it while it waits. */
  private submit(id: string, input: In, resume: (exit: Exit.Exit<Out, unknown>) => void): (() => void) | undefined {
    const call: Call<In, Out> = { input, deadline: Date.now() + this.spec.timeoutMillis, resume, cancelled: false }
    const queue = this.waiting.get(id)
    if (queue === undefined) {
      this.waiting.set(id, [])
      this.send(id, [call])
      return undefined
    }
    if (queue.length >= this.spec.waitingMax) {
      resume(Exit.fail(new MailboxFull({ entity: `${this.spec.type}/${id}`, capacity: this.spec.waitingMax })))
      return undefined
    }
    queue.push(call)
    return () => {
      call.cancelled = true
    }
  }

  /** Sends calls as one message; `after` runs once they are answered (by default: what waits goes next). */
  private send(id: string, calls: ReadonlyArray<Call<In, Out>>, after: () => void = () => this.next(id)): void {
    const { spec } = this
    let deadline = Number.POSITIVE_INFINITY
    for (const call of calls) deadline = Math.min(deadline, call.deadline)
    const deliver = ({ tag, payload }: Outgoing, settle: (exit: Exit.Exit<unknown, unknown>) => void) =>
      this.messenger.deliver({
        type: spec.type,
        id,
        tag,
        payload,
        deadline,
        reply: (exit) => {
          // Refused whole before any call was handled (one call's payload does not encode for
          // the wire, say): each call goes alone, in order, for an outcome of its own, so one
          // caller's bad input never fails the others.
          if (calls.length > 1 && isInvalidMessage(exit)) return this.sendEachAlone(id, calls, 0, after)
          settle(exit)
          after()
        }
      })
    if (calls.length === 1) {
      const call = calls[0]!
      return deliver(spec.single(call.input), (exit) =>
        call.resume(Exit.isSuccess(exit) ? Exit.succeed(spec.singleReply(exit.value)) : (exit as Exit.Exit<never, unknown>)))
    }
    deliver(spec.batch(calls.map((call) => call.input)), (exit) => {
      if (Exit.isSuccess(exit)) {
        const outcomes = spec.batchOutcomes(exit.value)
        calls.forEach((call, i) => {
          call.resume(outcomes[i] ?? Exit.fail(new EntityUnavailable({ entity: `${spec.type}/${id}`, reason: "a coalesced call got no outcome" })))
        })
      } else {
        for (const call of calls) call.resume(exit as Exit.Exit<never, unknown>)
      }
    })
  }

  /** Sends `calls` from `from` on one by one, each after the previous one is answered, then `after`. */
  private sendEachAlone(id: string, calls: ReadonlyArray<Call<In, Out>>, from: number, after: () => void): void {
    if (from >= calls.length) return after()
    this.send(id, [calls[from]!], () => this.sendEachAlone(id, calls, from + 1, after))
  }

  /** After a reply: sends what waits for the entity, or marks it idle. */
  private next(id: string): void {
    const queue = this.waiting.get(id)
    if (queue === undefined) return
    const { callsMax, weight, weightMax = Number.POSITIVE_INFINITY } = this.spec
    const calls: Array<Call<In, Out>> = []
    let total = 0
    let taken = 0
    for (; taken < queue.length && calls.length < callsMax; taken++) {
      const call = queue[taken]!
      if (call.cancelled) continue
      const heavy = weight === undefined ? 1 : weight(call.input)
      if (calls.length > 0 && total + heavy > weightMax) break
      calls.push(call)
      total += heavy
    }
    queue.splice(0, taken)
    if (calls.length === 0) {
      this.waiting.delete(id)
      return
    }
    this.send(id, calls)
  }
}

/** Whether a message was refused as invalid before it was handled at all. */
const shared = new WeakMap<MessengerShape, Map<string, Coalescer<any, any>>>()

/**
 * The one coalescer of `key` over `messenger` (calls coalesce only within one coalescer), made
 * on first use with `spec`.
 */
export const sharedFor = <In, Out>(messenger: MessengerShape, key: string, spec: () => CoalescerSpec<In, Out>): Coalescer<In, Out> => {
  let byKey = shared.get(messenger)
  if (byKey === undefined) shared.set(messenger, (byKey = new Map()))
  let coalescer = byKey.get(key)
  if (coalescer === undefined) byKey.set(key, (coalescer = new Coalescer(messenger, spec())))
  return coalescer
}
