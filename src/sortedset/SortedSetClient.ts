/**
 * A client of sorted sets that coalesces calls per set, in one process (`actors/Coalescer.ts`):
 * a call to a set with none in flight is sent at once as its own message; calls made while one
 * is in flight wait and go together as one `Batch` message when it is answered, each keeping its
 * own outcome and order. A hot set (a leaderboard under 1,000 concurrent updates) costs one
 * message per round trip instead of one per call. Waiting calls are bounded per set
 * (`MailboxFull` past it).
 */
import { Effect, Exit } from "effect"
import * as Coalescer from "../../actors/Coalescer.js"
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

/** How sorted-set calls coalesce: requests alone, or together as one `Batch`. */
const spec = (timeoutMillis: number): Coalescer.CoalescerSpec<Messages.Request, unknown> => ({
  type: SortedSetEntity.type,
  single: ({ _tag, ...payload }) => ({ tag: _tag, payload }),
  singleReply: (value) => value,
  batch: (requests) => ({ tag: "Batch", payload: { requests } }),
  batchOutcomes: (value) =>
    (value as { readonly outcomes: ReadonlyArray<Messages.BatchOutcome> }).outcomes.map((outcome) =>
      outcome.ok ? Exit.succeed(outcome.reply) : Exit.fail(outcome.error)),
  callsMax: Messages.BATCH_REQUESTS_MAX,
  waitingMax: WAITING_CALLS_MAX,
  timeoutMillis
})

const over = (coalescer: Coalescer.Coalescer<Messages.Request, unknown>): SortedSetClient => ({
  ask: ((key: string, tag: string, payload: object) => coalescer.ask(key, { ...payload, _tag: tag } as Messages.Request)) as SortedSetClient["ask"],
  promise: ((key: string, tag: string, payload: object) => coalescer.promise(key, { ...payload, _tag: tag } as Messages.Request)) as SortedSetClient["promise"]
})

/** A client of its own over `messenger` (its calls coalesce with each other only); calls time out after `timeoutMillis`. */
export const fromMessenger = (messenger: MessengerShape, timeoutMillis: number): SortedSetClient =>
  over(new Coalescer.Coalescer(messenger, spec(timeoutMillis)))

/** The one client of a messenger (calls coalesce only within one client), made on first use. */
export const sharedFor = (messenger: MessengerShape, timeoutMillis: number): SortedSetClient =>
  over(Coalescer.sharedFor(messenger, SortedSetEntity.type, () => spec(timeoutMillis)))

/** The client over the process's `Messenger`. */
export const make: Effect.Effect<SortedSetClient, never, Messenger> = Effect.gen(function*() {
  const messenger = yield* Messenger
  const config = yield* RuntimeConfig
  return fromMessenger(messenger, config.askTimeoutMillis)
})
