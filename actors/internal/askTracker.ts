/**
 * Makes every ask end: each ask is wrapped (one object, no closures) so that its reply runs at
 * most once, and if nothing answers by the deadline the caller gets `AskTimeout`. Deadlines are
 * kept in `Deadlines`, driven by the owner's tick, and the asks in flight are bounded.
 */
import { Exit } from "effect"
import { AskTimeout, OutcomeUnknown, Overloaded } from "../EntityError.js"
import type { Envelope } from "../Messenger.js"
import { Deadlines } from "./deadlines.js"

/** An ask in flight: an envelope whose reply settles once and can expire. */
class TrackedAsk implements Envelope {
  readonly type: string
  readonly id: string
  readonly tag: string
  readonly payload: unknown
  readonly deadline: number
  private settled = false
  private begun = false

  constructor(private readonly source: Envelope, private readonly timeout: number, private readonly tracker: AskTracker) {
    this.type = source.type
    this.id = source.id
    this.tag = source.tag
    this.payload = source.payload
    this.deadline = source.deadline
  }

  reply(exit: Exit.Exit<unknown, unknown>): void {
    if (this.settled) return
    this.settled = true
    this.tracker.deadlines.remove(this.timeout, this)
    this.source.reply!(exit)
  }

  begin(): void {
    this.begun = true
    this.source.begin?.()
  }

  expire(): void {
    if (this.settled) return
    this.settled = true
    const entity = `${this.type}/${this.id}`
    this.source.reply!(Exit.fail(
      this.begun
        ? new OutcomeUnknown({ entity, reason: `no reply within ${this.timeout} ms, after it was handed to its handler` })
        : new AskTimeout({ entity, timeoutMillis: this.timeout })
    ))
  }
}

/** Tracks the asks of one messenger. */
export class AskTracker {
  readonly deadlines: Deadlines<TrackedAsk>

  constructor(capacity: number, private readonly now: () => number) {
    this.deadlines = new Deadlines(capacity)
  }

  /**
   * Returns the envelope to deliver: the same one for a send, a tracked one for an ask, or
   * `undefined` when too many asks are in flight (the caller was answered `Overloaded`).
   */
  track(envelope: Envelope): Envelope | undefined {
    if (envelope.reply === undefined || envelope.deadline === Number.POSITIVE_INFINITY) return envelope
    // Timeouts are grouped to the 10 ms so that deadline queues stay few and ordered.
    const timeout = Math.max(0, Math.ceil((envelope.deadline - this.now()) / 10) * 10)
    const tracked = new TrackedAsk(envelope, timeout, this)
    if (!this.deadlines.add(timeout, tracked)) {
      envelope.reply(Exit.fail(new Overloaded({ resident: this.deadlines.size })))
      return undefined
    }
    return tracked
  }

  /** Expires the asks due now. */
  tick(): void {
    this.deadlines.tick(this.now())
  }

  /** Asks in flight. */
  get size(): number {
    return this.deadlines.size
  }
}
