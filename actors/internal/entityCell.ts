/**
 * One activation of one entity: its state, lifecycle, mailbox count, writes waiting to commit and
 * replies waiting for them. `handle` is what the entity's nact actor runs for each message, one at
 * a time: recover if needed, run the handler on a staged view, hand the writes to group commit,
 * and answer once they are durable. Crashes restart the entity from the store and retry the
 * message up to the configured attempts; then the message is answered `PoisonMessage`.
 */
import { Cause, Effect, Exit, Schema } from "effect"
import { toBytes } from "../../persistence/internal/bytes.js"
import type { BatchOp } from "../../persistence/KeyValueStore.js"
import { InvalidArgument } from "../../persistence/StoreError.js"
import * as StoreView from "../../persistence/StoreView.js"
import type { DirectStyle, EventSourcedStyle, Registered } from "../Entity.js"
import { isDeclaredError } from "../Entity.js"
import { EntityUnavailable, OutcomeUnknown, PoisonMessage, ShardNotOwned } from "../EntityError.js"
import * as Lifecycle from "../EntityLifecycle.js"
import type { Envelope } from "../Messenger.js"
import type { Participant } from "./groupCommit.js"
import type { Host } from "./host.js"
import { PendingWrites } from "./pendingWrites.js"

type AnyExit = Exit.Exit<unknown, unknown>

interface WaitingReply {
  readonly round: number
  readonly envelope: Envelope
  readonly exit: AnyExit
}

/** What running a handler produced. */
interface Outcome {
  readonly exit: AnyExit
  /** The staged keys of the message (latin-1 keys by namespace). */
  readonly staged: ReadonlyMap<string, ReadonlyMap<string, StoreView.Staged>> | undefined
  /** Appends of the message. */
  readonly ops: ReadonlyArray<BatchOp>
  readonly state: unknown
  readonly events: number
  /** Whether the ops include a new snapshot (event-sourced). */
  readonly snapshot: boolean
  /**
   * Whether the message, failed, had changed anything through its context first (a write, an
   * event, a new state): those changes are dropped, and in-memory state may hold them too.
   */
  readonly dropped: boolean
}

const SNAPSHOT_NAMESPACE = "snapshot"
const NO_OPS: ReadonlyArray<BatchOp> = []

/**
 * The context of one direct-style message. The staged view is made on first use, so handlers
 * that only read the state allocate nothing for it.
 */
class DirectContext {
  readonly type: string
  readonly id: string
  readonly shard: number
  readonly writeRound: number
  state: unknown
  private staged: StoreView.StagedView | undefined
  private scopedView: StoreView.StoreView | undefined

  constructor(private readonly cell: EntityCell) {
    this.type = cell.type
    this.id = cell.id
    this.shard = cell.shard
    this.writeRound = cell.pending.openRound
    this.state = cell.state
  }

  get view(): StoreView.StoreView {
    if (this.scopedView === undefined) {
      this.staged = this.cell.stagedView()
      this.scopedView = this.cell.scoped(this.staged)
    }
    return this.scopedView
  }

  /** Whether the handler set a state or staged a write. */
  changed = false

  readonly setState = (next: unknown): void => {
    this.state = next
    this.changed = true
  }

  /** The staged writes, if the handler used its view. */
  stagedEntries(): ReadonlyMap<string, ReadonlyMap<string, StoreView.Staged>> | undefined {
    return this.staged === undefined || this.staged.size() === 0 ? undefined : this.staged.entries()
  }

  /** Whether the handler changed anything through this context. */
  get dirty(): boolean {
    return this.changed || this.stagedEntries() !== undefined
  }
}
const CAUSE_TEXT_MAX = 1_000

const storeFailure = (cause: Cause.Cause<unknown>): string | undefined => {
  const error = Cause.findErrorOption(cause)
  if (error._tag === "None") return undefined
  const tag = (error.value as { _tag?: unknown })._tag
  return tag === "StoreUnavailable" || tag === "StoreClosed" ? String((error.value as { message?: unknown }).message ?? tag) : undefined
}

const declaredOrInvalid = (cell: EntityCell, tag: string, cause: Cause.Cause<unknown>): boolean => {
  const error = Cause.findErrorOption(cause)
  if (error._tag === "None") return false
  return error.value instanceof InvalidArgument || isDeclaredError(cell.registered.behavior.entity, tag, error.value)
}

/** One entity activation. */
export class EntityCell implements Participant {
  readonly type: string
  readonly partition: string
  status: Lifecycle.State = "activating"
  state: unknown = undefined
  recovered = false
  queued = 0
  processing = false
  lastActive: number
  /** Set by every delivery after the first, cleared by the resident cap's CLOCK hand (second chance). */
  touched = false
  /** Bumped when the entity restarts: work begun before it is void. */
  generation = 0
  /** The shard's epoch when the state in memory was recovered (see `Participant.epoch`). */
  epoch: number | undefined = undefined
  /** The round being committed (0 when none). */
  inFlightRound = 0
  /** The nact actor that runs `handle`, set by the runtime. */
  actor: unknown = undefined
  /** Event-sourced: index of the last event, and events since the last snapshot. */
  position = 0
  sinceSnapshot = 0
  readonly pending = new PendingWrites()
  private readonly waiting: Array<WaitingReply> = []
  private commitWaiters: Array<() => void> = []
  private readonly pendingView: StoreView.StoreView
  private readonly scope: StoreView.Scope

  constructor(readonly host: Host, readonly registered: Registered, readonly id: string, readonly shard: number, partition: string) {
    this.type = registered.behavior.entity.type
    this.partition = partition
    this.lastActive = host.now()
    this.pendingView = this.pending.view(StoreView.direct(host.store, partition), host.storeConfig)
    this.scope = { namespacePrefix: `${this.type}.`, keyPrefix: toBytes(`${id}\u0000`) }
  }

  /** The entity's description in errors and logs. */
  get label(): string {
    return `${this.type}/${this.id}`
  }

  /** Idle: nothing queued, running, or waiting to commit. */
  get idle(): boolean {
    return this.queued === 0 && !this.processing && this.pending.pendingCount === 0 && this.waiting.length === 0
  }

  moveTo(next: Lifecycle.State): void {
    this.status = Lifecycle.transition(this.label, this.status, next)
  }

  // ---------------------------------------------------------------- group commit participant

  get openSize(): number {
    return this.pending.openCount
  }

  takeOpen() {
    const taken = this.pending.takeOpen()
    this.inFlightRound = taken.round
    return taken
  }

  committed(round: number): void {
    this.pending.release(round)
    if (this.inFlightRound === round) this.inFlightRound = 0
    while (this.waiting.length > 0 && this.waiting[0]!.round <= round) {
      const waiting = this.waiting.shift()!
      waiting.envelope.reply!(waiting.exit)
    }
    this.wakeCommitWaiters()
  }

  failed(_round: number, reason: string, outcomeUnknown: boolean): void {
    // Everything not yet durable is lost (or, with an unknown outcome, may be durable), and the
    // state in memory assumed it: answer every waiting message, drop the writes, and rebuild from
    // the store on the next message.
    const error = Exit.fail(outcomeUnknown ? new OutcomeUnknown({ entity: this.label, reason }) : new EntityUnavailable({ entity: this.label, reason }))
    for (const waiting of this.waiting.splice(0)) waiting.envelope.reply!(error)
    this.pending.discard()
    this.inFlightRound = 0
    this.host.committer.cancel(this)
    this.forget(`commit failed: ${reason}`)
    this.wakeCommitWaiters()
  }

  private wakeCommitWaiters(): void {
    const waiters = this.commitWaiters
    this.commitWaiters = []
    for (const wake of waiters) wake()
  }

  /** Resolves after the next commit outcome (or at once when nothing is pending). */
  private nextCommit(): Promise<void> {
    if (this.pending.pendingCount === 0) return Promise.resolve()
    return new Promise((resolve) => this.commitWaiters.push(resolve))
  }

  /** Drops the in-memory state (after a crash, a failed commit, or a store restored under it); the next message recovers it from the store. */
  forget(reason: string): void {
    this.generation++
    if (this.recovered) {
      this.recovered = false
      this.state = undefined
      // A passivated cell (a shard stopped while its writes waited) is gone: nothing restarts.
      if (this.status === "passivating" || this.status === "stopped") return
      if (this.status !== "restarting") this.moveTo("restarting")
      this.host.event({ _tag: "Restarted", type: this.type, id: this.id, reason })
    }
  }

  // ---------------------------------------------------------------- message handling

  /**
   * Handles one message; never throws. Returns `undefined` when the message was handled
   * synchronously (the common case for a recovered entity), so nact moves on without a promise.
   */
  handle(envelope: Envelope): Promise<void> | undefined {
    this.queued--
    this.host.dequeued()
    this.processing = true
    let pending: Promise<void> | undefined
    try {
      pending = this.process(envelope)
    } catch (defect) {
      this.defect(envelope, defect)
    }
    if (pending === undefined) {
      this.done()
      return undefined
    }
    return pending.then(() => this.done(), (defect: unknown) => {
      this.defect(envelope, defect)
      this.done()
    })
  }

  private done(): void {
    this.processing = false
    this.lastActive = this.host.now()
  }

  private defect(envelope: Envelope, defect: unknown): void {
    this.host.log(`entity ${this.label}: runtime defect while handling ${envelope.tag}`, defect)
    envelope.reply?.(Exit.fail(new EntityUnavailable({ entity: this.label, reason: "runtime defect" })))
    this.forget("runtime defect")
  }

  private process(envelope: Envelope): Promise<void> | undefined {
    // An ask past its deadline is skipped (its caller was answered AskTimeout); from here on a
    // timeout means the message may have taken effect.
    if (envelope.reply !== undefined && envelope.deadline < this.host.now()) return undefined
    envelope.begin?.()
    const epoch = this.host.epochOf(this.shard)
    if (epoch === undefined) {
      envelope.reply?.(Exit.fail(new ShardNotOwned({ entity: this.label, shard: this.shard })))
      return undefined
    }
    if (!this.recovered || this.epoch !== epoch || this.pending.pendingCount >= this.host.config.pendingKeysPerEntityMax) {
      return this.prepareAndAttempt(envelope, 1)
    }
    return this.attempt(envelope, 1)
  }

  /** The slow path: wait for room to write, recover if needed, then attempt. */
  private async prepareAndAttempt(envelope: Envelope, attempt: number): Promise<void> {
    // Backpressure: an entity whose writes outrun the store waits for its commit.
    while (this.pending.pendingCount >= this.host.config.pendingKeysPerEntityMax) await this.nextCommit()
    // The shard was lost and taken again since the state was read: other owners may have
    // written since. Let the old tenure's writes fail, then read the state afresh.
    if (this.recovered && this.epoch !== this.host.epochOf(this.shard)) await this.restart("the shard was taken again at a new epoch")
    if (!this.recovered) {
      const reason = await this.recover()
      if (reason !== undefined) {
        envelope.reply?.(Exit.fail(new EntityUnavailable({ entity: this.label, reason })))
        return
      }
    }
    await this.attempt(envelope, attempt)
  }

  private attempt(envelope: Envelope, attempt: number): Promise<void> | undefined {
    const generation = this.generation
    const started = performance.now()
    const outcome = this.run(envelope)
    if (outcome instanceof Promise) return outcome.then((result) => this.conclude(envelope, attempt, generation, started, result))
    return this.conclude(envelope, attempt, generation, started, outcome)
  }

  private conclude(envelope: Envelope, attempt: number, generation: number, started: number, outcome: Outcome): Promise<void> | undefined {
    this.host.handled(this.type, (performance.now() - started) / 1000, Exit.isSuccess(outcome.exit) ? "ok" : "error")
    if (generation !== this.generation) {
      envelope.reply?.(Exit.fail(new EntityUnavailable({ entity: this.label, reason: "restarted while handling" })))
      return undefined
    }
    if (Exit.isSuccess(outcome.exit)) {
      this.succeed(envelope, outcome)
      return undefined
    }
    const cause = outcome.exit.cause
    if (declaredOrInvalid(this, envelope.tag, cause)) {
      this.answer(envelope, outcome.exit)
      // Its writes, events or new state are dropped; a state changed in place may still hold
      // them, so the entity is rebuilt from the store (after its earlier writes commit).
      return outcome.dropped ? this.restart(`handler of ${envelope.tag} failed after changing state; its changes were dropped`) : undefined
    }
    const unavailable = storeFailure(cause)
    if (unavailable !== undefined) {
      envelope.reply?.(Exit.fail(new EntityUnavailable({ entity: this.label, reason: unavailable })))
      return this.restart(`store unavailable: ${unavailable}`)
    }
    const attempts = this.host.config.handlerAttemptsMax
    const text = Cause.pretty(cause).slice(0, CAUSE_TEXT_MAX)
    if (attempt >= attempts) {
      this.poison(envelope, attempts, text)
      return undefined
    }
    this.host.log(`entity ${this.label}: handler of ${envelope.tag} crashed (attempt ${attempt} of ${attempts})`, text)
    return this.restart(`handler of ${envelope.tag} crashed`).then(() => this.prepareAndAttempt(envelope, attempt + 1))
  }

  private succeed(envelope: Envelope, outcome: Outcome): void {
    this.state = outcome.state
    if (outcome.events > 0) {
      this.position += outcome.events
      this.sinceSnapshot = outcome.snapshot ? 0 : this.sinceSnapshot + outcome.events
    }
    if (outcome.staged !== undefined || outcome.ops.length > 0) {
      if (outcome.staged !== undefined) this.pending.absorbStaged(outcome.staged)
      if (outcome.ops.length > 0) this.pending.absorb(outcome.ops)
      this.host.committer.schedule(this)
    }
    this.answer(envelope, outcome.exit)
  }

  /** Answers once every write staged so far is durable (at once when none is pending). */
  private answer(envelope: Envelope, exit: AnyExit): void {
    if (envelope.reply === undefined) {
      if (Exit.isFailure(exit)) this.host.log(`entity ${this.label}: ${envelope.tag} sent without reply failed`, Cause.pretty(exit.cause))
      return
    }
    const round = this.pending.hasOpen ? this.pending.openRound : this.inFlightRound
    if (round === 0) envelope.reply(exit)
    else this.waiting.push({ round, envelope, exit })
  }

  private poison(envelope: Envelope, attempts: number, cause: string): void {
    this.host.poisoned(this.type)
    this.host.event({ _tag: "PoisonMessage", type: this.type, id: this.id, message: envelope.tag, attempts, cause })
    this.host.log(`entity ${this.label}: skipped poison message ${envelope.tag} after ${attempts} attempts`, cause)
    this.answer(envelope, Exit.fail(new PoisonMessage({ entity: this.label, message: envelope.tag, attempts, cause })))
  }

  /** After a crash: let earlier (good) writes commit, then rebuild from the store. */
  private async restart(reason: string): Promise<void> {
    while (this.pending.pendingCount > 0) await this.nextCommit()
    this.forget(reason)
  }

  // ---------------------------------------------------------------- recovery

  /** Rebuilds the state from the store; returns a reason when it could not. */
  private async recover(): Promise<string | undefined> {
    const started = this.host.now()
    // Read before the state: a tenure that ends during recovery leaves this state stale.
    const epoch = this.host.epochOf(this.shard)
    const style = this.registered.behavior.style
    const effect = style._tag === "Direct" ? this.recoverDirect(style) : this.recoverEventSourced(style)
    const exit = await this.runEffect(effect)
    if (Exit.isFailure(exit)) {
      const reason = storeFailure(exit.cause) ?? Cause.pretty(exit.cause).slice(0, CAUSE_TEXT_MAX)
      if (this.status === "activating") this.moveTo("restarting")
      return `recovery failed: ${reason}`
    }
    this.state = exit.value
    this.epoch = epoch
    this.recovered = true
    this.moveTo("active")
    this.host.event({ _tag: "Activated", type: this.type, id: this.id, shard: this.shard, recoveryMillis: this.host.now() - started })
    return undefined
  }

  private recoverDirect(style: DirectStyle) {
    return style.recover({ type: this.type, id: this.id, shard: this.shard, view: StoreView.scoped(this.pendingView, this.scope) })
  }

  private recoverEventSourced(style: EventSourcedStyle): Effect.Effect<unknown, unknown> {
    const cell = this
    const stateCodec = Schema.fromJsonString(style.state)
    const eventCodec = Schema.fromJsonString(style.event)
    const view = StoreView.scoped(this.pendingView, this.scope)
    return Effect.gen(function*() {
      const snapshotBytes = yield* view.get(SNAPSHOT_NAMESPACE, "")
      let state = style.initial()
      let index = 0
      if (snapshotBytes !== undefined) {
        const snapshot = JSON.parse(Buffer.from(snapshotBytes).toString("utf8")) as { index: number; state: string }
        state = yield* Schema.decodeUnknownEffect(stateCodec)(snapshot.state)
        index = snapshot.index
      }
      const decode = Schema.decodeUnknownEffect(eventCodec)
      let position = index
      // Bounded pages: an event log larger than memory is replayed page by page.
      for (;;) {
        const page = yield* cell.host.indexed.scan(cell.partition, cell.topic, { from: position + 1, limit: 1_000 })
        for (const item of page) {
          state = style.apply(state, yield* decode(Buffer.from(item.value).toString("utf8")))
          position = item.index
        }
        if (page.length < 1_000) break
      }
      cell.position = position
      cell.sinceSnapshot = position - index
      return state
    })
  }

  /** The topic of an event-sourced entity's events. */
  get topic(): string {
    return `${this.type}/${this.id}`
  }

  // ---------------------------------------------------------------- running handlers

  /** Runs an Effect with the handlers' services; synchronously when it completes synchronously. */
  private execute<A, E>(effect: Effect.Effect<A, E, unknown>): Exit.Exit<A, E> | Promise<Exit.Exit<A, E>> {
    // `Effect.succeed` and `Effect.fail` are Exits already: no fiber is needed to run them.
    if (Exit.isExit(effect)) return effect as Exit.Exit<A, E>
    let exit: Exit.Exit<A, E> | undefined
    let resolve: ((exit: Exit.Exit<A, E>) => void) | undefined
    Effect.runCallbackWith(this.registered.context)(effect as Effect.Effect<A, E, never>, {
      onExit: (result) => {
        if (resolve === undefined) exit = result
        else resolve(result)
      }
    })
    if (exit !== undefined) return exit
    return new Promise((done) => {
      resolve = done
    })
  }

  private runEffect<A, E>(effect: Effect.Effect<A, E, unknown>): Promise<Exit.Exit<A, E>> {
    return Promise.resolve(this.execute(effect))
  }

  private run(envelope: Envelope): Outcome | Promise<Outcome> {
    const behavior = this.registered.behavior
    const handler = behavior.handlers.get(envelope.tag)!
    if (behavior.style._tag === "EventSourced") return this.runEventSourced(behavior.style, handler, envelope)
    const context = new DirectContext(this)
    const exit = this.execute(handler(envelope.payload, context as never))
    const finish = (result: AnyExit): Outcome => ({
      exit: result,
      staged: Exit.isSuccess(result) ? context.stagedEntries() : undefined,
      ops: NO_OPS,
      state: Exit.isSuccess(result) ? context.state : this.state,
      events: 0,
      snapshot: false,
      dropped: Exit.isFailure(result) && context.dirty
    })
    return exit instanceof Promise ? exit.then(finish) : finish(exit)
  }

  /** A fresh staged view for one message, over the writes still waiting to commit. */
  stagedView(): StoreView.StagedView {
    return StoreView.stagedWith(this.pendingView, this.host.storeConfig, this.host.config.pendingKeysPerEntityMax)
  }

  /** The entity's own slice of a view. */
  scoped(view: StoreView.StoreView): StoreView.StoreView {
    return StoreView.scoped(view, this.scope)
  }

  private runEventSourced(
    style: EventSourcedStyle,
    handler: (payload: unknown, context: never) => Effect.Effect<unknown, unknown, unknown>,
    envelope: Envelope
  ): Promise<Outcome> {
    const staged = this.stagedView()
    const view = this.scoped(staged)
    const info = { type: this.type, id: this.id, shard: this.shard }
    const encodeEvent = Schema.encodeEffect(Schema.fromJsonString(style.event))
    const encodeState = Schema.encodeEffect(Schema.fromJsonString(style.state))
    let state = this.state
    const events: Array<string> = []
    const context = {
      ...info,
      get state() { return state },
      emit: (event: unknown) =>
        Effect.map(
          Effect.mapError(encodeEvent(event), (error) => new InvalidArgument({ field: "event", message: String(error.message) })),
          (encoded) => {
            events.push(encoded as string)
            state = style.apply(state, event)
          }
        )
    }
    const every = style.snapshotEvery ?? this.host.config.snapshotEvery
    const cell = this
    let snapshot = false
    const program = Effect.gen(function*() {
      const reply = yield* handler(envelope.payload, context as never)
      if (events.length > 0 && cell.sinceSnapshot + events.length >= every) {
        snapshot = true
        const encoded = yield* encodeState(state)
        yield* view.put(SNAPSHOT_NAMESPACE, "", JSON.stringify({ index: cell.position + events.length, state: encoded }))
      }
      return reply
    })
    return this.runEffect(program).then((exit) => {
      if (Exit.isFailure(exit)) {
        return { exit, staged: undefined, ops: NO_OPS, state: this.state, events: 0, snapshot: false, dropped: events.length > 0 || staged.size() > 0 }
      }
      const ops: Array<BatchOp> = events.length > 0 ? [{ op: "append", topic: this.topic, values: events }] : []
      return { exit, staged: staged.size() > 0 ? staged.entries() : undefined, ops, state, events: events.length, snapshot, dropped: false }
    })
  }
}
