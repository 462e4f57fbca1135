/**
 * Group commit: the writes of every entity that handled messages while the previous round was
 * being written are committed together, one fenced batch per partition (shard), in one backend
 * round. There is at most one round in flight; messages arriving meanwhile accumulate into the
 * next one, so the batch size follows the load with no timer ("natural batching"). Each entity's
 * replies wait for the round that holds its writes.
 *
 * Rounds go straight to the `StoreBackend`: every write was validated when a handler staged it,
 * so checking it again on the way out would only cost time.
 */
import { Cause, Effect, Exit } from "effect"
import type { BatchOutcome, PartitionBatch, StoreBackendShape, WriteOp } from "../../persistence/StoreBackend.js"

/** An entity with writes to commit. */
export interface Participant {
  /** The entity type, for the per-type write counts. */
  readonly type: string
  readonly shard: number
  readonly partition: string
  /**
   * The epoch of the shard when the participant's state was read: its writes are valid only
   * while the process still holds the shard at that epoch (a shard lost and taken again is a
   * new tenure, and writes computed from the old one's state must not land in it).
   */
  readonly epoch: number | undefined
  /** Writes waiting in the open round (appended values counted one by one). */
  readonly openSize: number
  /** Closes the open round and returns its writes. */
  takeOpen(): { readonly round: number; readonly ops: ReadonlyArray<WriteOp> }
  /** The round is durable. */
  committed(round: number): void
  /**
   * The round failed: none of it is durable, or, with `outcomeUnknown`, some or all of it may be
   * (the store could not tell).
   */
  failed(round: number, reason: string, outcomeUnknown: boolean): void
}

/** What a round reports, for metrics. */
export interface RoundReport {
  readonly writes: number
  /** Store operations committed, by entity type (empty unless something committed). */
  readonly writesByType: ReadonlyMap<string, number>
  readonly participants: number
  readonly batches: number
  readonly outcome: "ok" | "fenced" | "unavailable"
}

const NONE: ReadonlyMap<string, number> = new Map()

/**
 * Whether a failed backend write may have been applied: unless every failure is a typed one that
 * says nothing was (a defect or an interruption proves nothing either way).
 */
const mayHaveApplied = (cause: Cause.Cause<unknown>): boolean =>
  cause.reasons.some((reason) => reason._tag !== "Fail" || (reason.error as { readonly outcomeUnknown?: unknown }).outcomeUnknown === true)

/** Collects participants and commits them round by round. */
export class GroupCommitter {
  private readonly dirty = new Set<Participant>()
  private running = false
  /** Rounds are held while paused (a dump or restore of the whole store is running). */
  private paused = false
  /** A round's batches are with the backend. */
  private inFlight = false
  private idleWaiters: Array<() => void> = []

  constructor(
    private readonly backend: StoreBackendShape,
    /** The epoch this process holds for a shard, or undefined when it no longer owns it. */
    private readonly epochOf: (shard: number) => number | undefined,
    private readonly writesMax: number,
    private readonly onRound: (report: RoundReport) => void,
    private readonly onFenced: (shard: number) => void
  ) {}

  /** Queues a participant for the next round (idempotent). */
  schedule(participant: Participant): void {
    this.dirty.add(participant)
    if (!this.running && !this.paused) {
      this.running = true
      // The next turn of the event loop: messages handled in this turn join the same round.
      setImmediate(this.round)
    }
  }

  /** Drops a participant whose open writes were discarded. */
  cancel(participant: Participant): void {
    this.dirty.delete(participant)
  }

  /** Participants waiting for a round. */
  get waiting(): number {
    return this.dirty.size
  }

  /**
   * Holds every round from now on; resolves once no round is with the backend, so nothing is
   * written until `resume`. Writes staged meanwhile wait (their entities' backpressure applies).
   */
  pause(): Promise<void> {
    this.paused = true
    return this.inFlight ? new Promise((resolve) => this.idleWaiters.push(resolve)) : Promise.resolve()
  }

  /** Lets rounds run again. */
  resume(): void {
    this.paused = false
    if (!this.running && this.dirty.size > 0) {
      this.running = true
      setImmediate(this.round)
    }
  }

  /**
   * Fails every write waiting for a round (none is with the backend while paused): the store
   * was rewritten under them, so their entities must rebuild from it. Their messages are
   * answered `EntityUnavailable` with `reason`; they were never acknowledged.
   */
  discardWaiting(reason: string): number {
    const participants = [...this.dirty]
    this.dirty.clear()
    for (const participant of participants) participant.failed(participant.takeOpen().round, reason, false)
    return participants.length
  }

  private readonly round = (): void => {
    if (this.paused) {
      this.running = false
      return
    }
    const taken: Array<{ readonly participant: Participant; readonly round: number; readonly ops: ReadonlyArray<WriteOp> }> = []
    let writes = 0
    for (const participant of this.dirty) {
      // Bounded rounds: the rest waits for the next one (a single participant always fits).
      if (taken.length > 0 && writes + participant.openSize > this.writesMax) break
      this.dirty.delete(participant)
      writes += participant.openSize
      const { round, ops } = participant.takeOpen()
      if (ops.length > 0) taken.push({ participant, round, ops })
      else participant.committed(round)
    }
    const groups = new Map<string, { shard: number; epoch: number; ops: Array<WriteOp>; members: typeof taken }>()
    for (const item of taken) {
      const { participant } = item
      const epoch = this.epochOf(participant.shard)
      if (epoch === undefined || participant.epoch !== epoch) {
        participant.failed(
          item.round,
          epoch === undefined
            ? `shard ${participant.shard} is not owned here`
            : `shard ${participant.shard} was taken again (epoch ${epoch}) since this state was read (epoch ${participant.epoch})`,
          false
        )
        continue
      }
      let group = groups.get(participant.partition)
      if (group === undefined) {
        group = { shard: participant.shard, epoch, ops: [], members: [] }
        groups.set(participant.partition, group)
      }
      for (const op of item.ops) group.ops.push(op)
      group.members.push(item)
    }
    const batches: Array<PartitionBatch> = []
    const committing: Array<typeof taken> = []
    for (const [partition, group] of groups) {
      batches.push({ partition, ops: group.ops, epoch: group.epoch })
      committing.push(group.members)
    }
    if (batches.length === 0) return this.next()
    this.inFlight = true
    Effect.runCallback(this.backend.write(batches), {
      onExit: (exit) => {
        this.inFlight = false
        this.settle(exit, batches, committing, writes)
        const waiters = this.idleWaiters
        this.idleWaiters = []
        for (const wake of waiters) wake()
        this.next()
      }
    })
  }

  private settle(
    exit: Exit.Exit<ReadonlyArray<BatchOutcome>, unknown>,
    batches: ReadonlyArray<PartitionBatch>,
    committing: ReadonlyArray<ReadonlyArray<{ readonly participant: Participant; readonly round: number; readonly ops: ReadonlyArray<WriteOp> }>>,
    writes: number
  ): void {
    const participants = committing.reduce((sum, members) => sum + members.length, 0)
    if (Exit.isFailure(exit)) {
      const reason = Cause.pretty(exit.cause)
      const unknown = mayHaveApplied(exit.cause)
      for (const members of committing) for (const member of members) member.participant.failed(member.round, reason, unknown)
      this.onRound({ writes, writesByType: NONE, participants, batches: batches.length, outcome: "unavailable" })
      return
    }
    let fenced = false
    const writesByType = new Map<string, number>()
    exit.value.forEach((outcome, i) => {
      const members = committing[i]!
      if (outcome._tag === "Committed") {
        for (const member of members) {
          member.participant.committed(member.round)
          writesByType.set(member.participant.type, (writesByType.get(member.participant.type) ?? 0) + member.ops.length)
        }
        return
      }
      const reason = `fenced on partition ${batches[i]!.partition}: epoch ${batches[i]!.epoch} < ${outcome.currentEpoch}`
      for (const member of members) member.participant.failed(member.round, reason, false)
      fenced = true
      this.onFenced(members[0]!.participant.shard)
    })
    this.onRound({ writes, writesByType, participants, batches: batches.length, outcome: fenced ? "fenced" : "ok" })
  }

  private next(): void {
    if (this.dirty.size > 0 && !this.paused) setImmediate(this.round)
    else this.running = false
  }
}
