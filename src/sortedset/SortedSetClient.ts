/**
 * A client of sorted sets that coalesces calls per set, in one process: a call to a set with
 * none in flight is sent at once as its own message; calls made while one is in flight wait and
 * go together as one `Batch` message when it is answered. Each call keeps its own outcome and
 * runs in the order the calls were made, exactly as if sent one by one, so a lone call costs
 * what it always did and a hot set (a leaderboard under 1,000 concurrent updates) costs one
 * message per round trip instead of one per call. Waiting calls are bounded per set
 * (`MailboxFull` past it), a batch is bounded in calls, a batch is sent with the earliest deadline
 * of its calls, and a call interrupted while waiting is never sent.
 */
import { Effect, Exit } from "effect"
import { EntityUnavailable, MailboxFull } from "../../actors/EntityError.js"
import { Messenger, type MessengerShape } from "../../actors/Messenger.js"
import { RuntimeConfig } from "../../actors/RuntimeConfig.js"
import { SortedSetEntity } from "./SortedSetEntity.js"
import * as Messages from "./SortedSetMessages.js"

/** Calls that may wait behind the one in flight to one set. */
export const WAITING_CALLS_MAX = 4_096

/** A request by its tag, without the tag (the entity messages' payloads). */
export type Payload<Tag extends Messages.Request["_tag"]> = Omit<Extract<Messages.Request, { readonly _tag: Tag }>, "_tag">

/** The coalescing client. */
export interface SortedSetClient {
  /** Sends one request to set `key`; answers its reply, or fails with its error. */
  readonly ask: <Tag extends Messages.Request["_tag"]>(
    key: string,
    tag: Tag,
    payload: Payload<Tag>
  ) => Effect.Effect<Messages.ReplyOf<Extract<Messages.Request, { readonly _tag: Tag }>>, unknown>
  /** The same as a Promise. */
  readonly promise: <Tag extends Messages.Request["_tag"]>(
    key: string,
    tag: Tag,
    payload: Payload<Tag>
  ) => Promise<Messages.ReplyOf<Extract<Messages.Request, { readonly _tag: Tag }>>>
}

interface Call {
  readonly request: Messages.Request
  readonly deadline: number
  readonly resume: (exit: Exit.Exit<unknown, unknown>) => void
  /** Interrupted while waiting: dropped, never sent. */
  cancelled: boolean
}

/** The client over `messenger`; calls time out after `timeoutMillis`. */
export const fromMessenger = (messenger: MessengerShape, timeoutMillis: number): SortedSetClient => {
  const type = SortedSetEntity.type
  /** Per set with a message in flight, the calls waiting behind it. */
  const waiting = new Map<string, Array<Call>>()

  const send = (key: string, calls: ReadonlyArray<Call>): void => {
    let deadline = Number.POSITIVE_INFINITY
    for (const call of calls) deadline = Math.min(deadline, call.deadline)
    if (calls.length === 1) {
      const call = calls[0]!
      const { _tag: tag, ...payload } = call.request
      messenger.deliver({
        type,
        id: key,
        tag,
        payload,
        deadline,
        reply: (exit) => {
          call.resume(exit)
          next(key)
        }
      })
      return
    }
    messenger.deliver({
      type,
      id: key,
      tag: "Batch",
      payload: { requests: calls.map((call) => call.request) },
      deadline,
      reply: (exit) => {
        if (Exit.isSuccess(exit)) {
          const outcomes = (exit.value as { readonly outcomes: ReadonlyArray<Messages.BatchOutcome> }).outcomes
          calls.forEach((call, i) => {
            const outcome = outcomes[i]
            if (outcome === undefined) {
              call.resume(Exit.fail(new EntityUnavailable({ entity: `${type}/${key}`, reason: "a coalesced call got no outcome" })))
            } else if (outcome.ok) {
              call.resume(Exit.succeed(outcome.reply))
            } else {
              call.resume(Exit.fail(outcome.error))
            }
          })
        } else {
          for (const call of calls) call.resume(exit)
        }
        next(key)
      }
    })
  }

  /** After a reply: sends what waits for the set, or marks it idle. */
  const next = (key: string): void => {
    const queue = waiting.get(key)
    if (queue === undefined) return
    const calls: Array<Call> = []
    let taken = 0
    for (; taken < queue.length && calls.length < Messages.BATCH_REQUESTS_MAX; taken++) {
      const call = queue[taken]!
      if (!call.cancelled) calls.push(call)
    }
    queue.splice(0, taken)
    if (calls.length === 0) {
      waiting.delete(key)
      return
    }
    send(key, calls)
  }

  /** Queues or sends one call; answers how to cancel it while it waits. */
  const submit = (key: string, tag: string, payload: object, resume: (exit: Exit.Exit<unknown, unknown>) => void): (() => void) | undefined => {
    const call: Call = { request: { ...payload, _tag: tag } as Messages.Request, deadline: Date.now() + timeoutMillis, resume, cancelled: false }
    const queue = waiting.get(key)
    if (queue === undefined) {
      waiting.set(key, [])
      send(key, [call])
      return undefined
    }
    if (queue.length >= WAITING_CALLS_MAX) {
      resume(Exit.fail(new MailboxFull({ entity: `${type}/${key}`, capacity: WAITING_CALLS_MAX })))
      return undefined
    }
    queue.push(call)
    return () => {
      call.cancelled = true
    }
  }

  const ask = (key: string, tag: string, payload: object) =>
    Effect.callback<unknown, unknown>((resume) => {
      const cancel = submit(key, tag, payload, resume)
      return cancel === undefined ? undefined : Effect.sync(cancel)
    })

  const promise = (key: string, tag: string, payload: object) =>
    new Promise<unknown>((resolve, reject) => {
      submit(key, tag, payload, (exit) => {
        if (Exit.isSuccess(exit)) return resolve(exit.value)
        const reason = exit.cause.reasons[0]
        reject(reason?._tag === "Fail" ? reason.error : reason?._tag === "Die" ? reason.defect : new Error("interrupted"))
      })
    })

  return { ask: ask as SortedSetClient["ask"], promise: promise as SortedSetClient["promise"] }
}

const shared = new WeakMap<MessengerShape, SortedSetClient>()

/** The one client of a messenger (calls coalesce only within one client), made on first use. */
export const sharedFor = (messenger: MessengerShape, timeoutMillis: number): SortedSetClient => {
  let client = shared.get(messenger)
  if (client === undefined) {
    client = fromMessenger(messenger, timeoutMillis)
    shared.set(messenger, client)
  }
  return client
}

/** The client over the process's `Messenger`. */
export const make: Effect.Effect<SortedSetClient, never, Messenger> = Effect.gen(function*() {
  const messenger = yield* Messenger
  const config = yield* RuntimeConfig
  return fromMessenger(messenger, config.askTimeoutMillis)
})
