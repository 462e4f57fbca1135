/**
 * Appends coalesced per feed, in one process: an append to a feed with none in flight is sent at
 * once; appends made while one is in flight wait, and go together as one `AppendBatches` message
 * when it is answered. Each call stays its own atomic append with its own outcome, applied in the
 * order the calls were made, so a lone append costs what it always did and a hot feed costs one
 * message per round trip instead of one per call (across processes, one frame). Waiting calls are
 * bounded per feed (`MailboxFull` past it), a batch is bounded in calls and items, and a batch is
 * sent with the earliest deadline of its calls, so no caller waits past its own timeout.
 */
import { Effect, Exit } from "effect"
import { EntityUnavailable, MailboxFull } from "../../../actors/EntityError.js"
import type { MessengerShape } from "../../../actors/Messenger.js"
import type * as FeedMessages from "../FeedMessages.js"
import { APPEND_CALLS_MAX } from "../FeedMessages.js"

/** Calls that may wait behind the append in flight to one feed. */
export const WAITING_CALLS_MAX = 4_096
/** Items in one coalesced message at most (a single call of more still goes alone). */
const BATCH_ITEMS_MAX = 10_000

/** One item as it goes to the entity. */
export interface WireItem {
  readonly value: unknown
  readonly nonce?: number | string | undefined
  readonly timestamp?: number | undefined
}

type Results = ReadonlyArray<FeedMessages.AppendResult>

interface Call {
  readonly items: ReadonlyArray<WireItem>
  readonly deadline: number
  readonly resume: (exit: Exit.Exit<Results, unknown>) => void
  /** Interrupted while waiting: dropped, never sent. */
  cancelled: boolean
}

type Outcome = { readonly ok: true; readonly results: Results } | { readonly ok: false; readonly error: unknown }

/** The coalescing appender of one feed type over one messenger. */
export class AppendQueue {
  /** Per feed with an append in flight, the calls waiting behind it. */
  private readonly waiting = new Map<string, Array<Call>>()

  constructor(private readonly messenger: MessengerShape, private readonly type: string, private readonly timeoutMillis: number) {}

  /** Appends `items` to `feed`, alone or together with other calls waiting for the same feed. */
  append(feed: string, items: ReadonlyArray<WireItem>): Effect.Effect<Results, unknown> {
    return Effect.callback<Results, unknown>((resume) => {
      const call: Call = { items, deadline: Date.now() + this.timeoutMillis, resume, cancelled: false }
      const queue = this.waiting.get(feed)
      if (queue === undefined) {
        this.waiting.set(feed, [])
        this.send(feed, [call])
        return
      }
      if (queue.length >= WAITING_CALLS_MAX) {
        resume(Exit.fail(new MailboxFull({ entity: `${this.type}/${feed}`, capacity: WAITING_CALLS_MAX })))
        return
      }
      queue.push(call)
      return Effect.sync(() => {
        call.cancelled = true
      })
    })
  }

  private send(feed: string, calls: ReadonlyArray<Call>): void {
    let deadline = Number.POSITIVE_INFINITY
    for (const call of calls) deadline = Math.min(deadline, call.deadline)
    if (calls.length === 1) {
      const call = calls[0]!
      this.messenger.deliver({
        type: this.type,
        id: feed,
        tag: "Append",
        payload: { items: call.items },
        deadline,
        reply: (exit) => {
          call.resume(Exit.isSuccess(exit) ? Exit.succeed((exit.value as { readonly results: Results }).results) : (exit as Exit.Exit<never, unknown>))
          this.next(feed)
        }
      })
      return
    }
    this.messenger.deliver({
      type: this.type,
      id: feed,
      tag: "AppendBatches",
      payload: { calls: calls.map((call) => ({ items: call.items })) },
      deadline,
      reply: (exit) => {
        if (Exit.isSuccess(exit)) {
          const outcomes = (exit.value as { readonly outcomes: ReadonlyArray<Outcome> }).outcomes
          calls.forEach((call, i) => {
            const outcome = outcomes[i]
            call.resume(
              outcome === undefined
                ? Exit.fail(new EntityUnavailable({ entity: `${this.type}/${feed}`, reason: "a coalesced append got no outcome" }))
                : outcome.ok ? Exit.succeed(outcome.results) : Exit.fail(outcome.error)
            )
          })
        } else {
          for (const call of calls) call.resume(exit as Exit.Exit<never, unknown>)
        }
        this.next(feed)
      }
    })
  }

  /** After a reply: sends what waits for the feed, or marks it idle. */
  private next(feed: string): void {
    const queue = this.waiting.get(feed)
    if (queue === undefined) return
    const calls: Array<Call> = []
    let items = 0
    let taken = 0
    for (; taken < queue.length && calls.length < APPEND_CALLS_MAX; taken++) {
      const call = queue[taken]!
      if (call.cancelled) continue
      if (calls.length > 0 && items + call.items.length > BATCH_ITEMS_MAX) break
      calls.push(call)
      items += call.items.length
    }
    queue.splice(0, taken)
    if (calls.length === 0) {
      this.waiting.delete(feed)
      return
    }
    this.send(feed, calls)
  }
}
