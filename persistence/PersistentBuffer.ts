/**
 * PersistentBuffer: a disk-backed buffer for Effect Streams (after squbs's PersistentBuffer). Its
 * contents live in segment files of checksummed frames, so it is effectively limitless, off the
 * heap, and survives a crash of the process (and of the machine, per the durability policy).
 * It is a stream stage (`via`, `viaAtLeastOnce` with the `commit` stage, `broadcast`), a scoped
 * service (`make`) and, for code without Effect, a Promise API with async iterators (`open`).
 *
 * The engine (`internal/bufferEngine.ts`) does the work synchronously per batch; this module only
 * adapts it, with one fiber step per chunk, never per element. It does not replicate data to
 * another machine, and it is one process's buffer: a lock file keeps other processes out.
 */
import { Cause, Effect, Exit, type Scope, Stream } from "effect"
import type * as Arr from "effect/Array"
import {
  type BufferError,
  type CommitError,
  InvalidArgument,
  type OfferError,
  type OpenError,
  type TakeError
} from "./BufferError.js"
import type { BufferCodec } from "./internal/bufferCodec.js"
import { BufferEngine, type BufferSize } from "./internal/bufferEngine.js"
import { type BufferHandle, commitEnvelopes, Committable, envelopes, handle } from "./internal/bufferHandle.js"
import { type BufferOptions, type RecoveryReport, resolve } from "./internal/bufferOptions.js"
import type { ReadBatch } from "./internal/bufferReader.js"

export * from "./BufferError.js"
export { binary, type BufferCodec, json, text } from "./internal/bufferCodec.js"
export type { BufferSize } from "./internal/bufferEngine.js"
export { type BufferHandle, Committable, type ConsumerHandle } from "./internal/bufferHandle.js"
export type { BufferOptions, Durability, RecoveryReport } from "./internal/bufferOptions.js"

/** One consumer of a buffer: its own cursor, its own pace. */
export interface Consumer<A> {
  readonly consumer: number
  /** Waits for the next element and commits it. */
  readonly take: Effect.Effect<A, TakeError>
  /** Waits for at least one element, returns up to `max` (at most `takeChunkMax`) and commits them. */
  readonly takeUpTo: (max: number) => Effect.Effect<ReadonlyArray<A>, TakeError | InvalidArgument>
  /** Waits for at least one element and returns up to `max` envelopes, not committed. */
  readonly takeCommittable: (max: number) => Effect.Effect<ReadonlyArray<Committable<A>>, TakeError | InvalidArgument>
  /** Commits envelopes; succeeds once the commit is durable per the policy. */
  readonly commit: (items: Committable<A> | ReadonlyArray<Committable<A>>) => Effect.Effect<void, CommitError>
  /**
   * The elements as a stream. A chunk is committed when the next one is pulled (downstream took
   * it), so if the stream stops early the last chunk is delivered again next time. It ends once
   * the input ended (see `endInput`) and it caught up.
   */
  readonly stream: Stream.Stream<A, TakeError>
  /** The elements as envelopes (at least once): commit them with `commit` or the `commit` stage. */
  readonly committable: Stream.Stream<Committable<A>, TakeError>
}

/** An open buffer (Effect API); consumer 0's methods are on the buffer itself. */
export interface PersistentBuffer<A> extends Consumer<A> {
  readonly directory: string
  /** What recovery found when the buffer was opened. */
  readonly recovery: RecoveryReport
  readonly consumers: ReadonlyArray<Consumer<A>>
  /** Offers one element; succeeds once it is acknowledged per the durability policy. */
  readonly offer: (element: A) => Effect.Effect<void, OfferError>
  /** Offers elements in order; succeeds once all are acknowledged. */
  readonly offerAll: (elements: Iterable<A>) => Effect.Effect<void, OfferError>
  /** Runs a stream into the buffer chunk by chunk, then marks the input ended. */
  readonly run: <E, R>(stream: Stream.Stream<A, E, R>) => Effect.Effect<void, E | OfferError, R>
  /** Marks the input as finished: consumer streams end once they have caught up. */
  readonly endInput: Effect.Effect<void>
  readonly size: Effect.Effect<BufferSize>
}

type Notice<E> = (error: E | undefined) => void

/** Waits for an engine notice, cancelling the registration if the fiber is interrupted. */
const waitFor = <E>(register: (notice: Notice<E>) => () => void): Effect.Effect<void, E> =>
  Effect.callback<void, E>((resume) => {
    const cancel = register((error) => resume(error === undefined ? Effect.void : Effect.fail(error)))
    return Effect.sync(cancel)
  })

const checkMax = (max: number): Effect.Effect<void, InvalidArgument> =>
  Number.isSafeInteger(max) && max >= 1 ? Effect.void : Effect.fail(new InvalidArgument({ field: "max", message: "must be a positive integer" }))

/** Offers an array: slices of at most `OFFER_SLICE_MAX`, waiting for space at the limit, then for the acknowledgement. */
const offerArray = <A>(engine: BufferEngine<A>, elements: ReadonlyArray<A>): Effect.Effect<void, OfferError> => {
  const step = (from: number): Effect.Effect<void, OfferError> =>
    Effect.suspend(() => {
      const outcome = engine.offer(elements, from)
      if ("_tag" in outcome) return Effect.fail(outcome)
      if (outcome.full) return Effect.flatMap(waitFor((notice) => engine.whenSpace(notice)), () => step(outcome.accepted))
      if (outcome.accepted < elements.length) return Effect.flatMap(Effect.yieldNow, () => step(outcome.accepted))
      return waitFor((notice) => engine.whenAcked(outcome.ackIndex, notice))
    })
  return elements.length === 0 ? Effect.void : step(0)
}

/** Waits for at least one element of `consumer`; with `endWithInput`, `undefined` once the input ended and it caught up. */
const takeBatch = <A>(engine: BufferEngine<A>, consumer: number, max: number, endWithInput: boolean) => {
  const step: Effect.Effect<ReadBatch<A> | undefined, TakeError> = Effect.suspend(() => {
    const batch = engine.take(consumer, max)
    if ("_tag" in batch) return Effect.fail(batch)
    if (batch.values.length > 0) return Effect.succeed(batch)
    if (endWithInput && engine.inputEnded && engine.caughtUp(consumer)) return Effect.succeed(undefined)
    return Effect.flatMap(waitFor<TakeError>((notice) => engine.whenAvailable(consumer, notice, endWithInput)), () => step)
  })
  return step
}

/** Where the input of a stage stands: a failure of the upstream fails every consumer stream at its next pull. */
interface InputState {
  failure: Cause.Cause<unknown> | undefined
}

/** A consumer as a stream of arrays; plain streams commit a chunk when the next one is pulled. */
const consumerStream = <A, B>(
  engine: BufferEngine<A>,
  consumer: number,
  input: InputState,
  wrap: ((batch: ReadBatch<A>) => ReadonlyArray<B>) | undefined
): Stream.Stream<B, TakeError> =>
  Stream.fromPull(Effect.sync(() => {
    let emittedEnd = -1
    return Effect.suspend(() => {
      if (wrap === undefined && emittedEnd >= 0) {
        const error = engine.commitThrough(consumer, emittedEnd)
        if (error !== undefined) return Effect.fail(error)
      }
      if (input.failure !== undefined) return Effect.failCause(input.failure as Cause.Cause<TakeError>)
      return Effect.flatMap(takeBatch(engine, consumer, engine.options.takeChunkMax, true), (batch) => {
        if (batch === undefined) return Cause.done()
        emittedEnd = batch.first + batch.values.length
        const out = wrap === undefined ? (batch.values as unknown as ReadonlyArray<B>) : wrap(batch)
        return Effect.succeed(out as Arr.NonEmptyReadonlyArray<B>)
      })
    })
  }))

const makeConsumer = <A>(engine: BufferEngine<A>, consumer: number, input: InputState): Consumer<A> => {
  const takeUpTo = (max: number) =>
    Effect.flatMap(checkMax(max), () =>
      Effect.flatMap(takeBatch(engine, consumer, max, false), (batch) => {
        const taken = batch!
        const error = engine.commitThrough(consumer, taken.first + taken.values.length)
        return error !== undefined ? Effect.fail(error) : Effect.succeed(taken.values as ReadonlyArray<A>)
      }))
  return {
    consumer,
    take: Effect.map(takeUpTo(1), (values) => values[0]!) as Effect.Effect<A, TakeError>,
    takeUpTo,
    takeCommittable: (max) =>
      Effect.flatMap(checkMax(max), () => Effect.map(takeBatch(engine, consumer, max, false), (batch) => envelopes(engine, consumer, batch!))),
    commit: (items) => commitAll(Array.isArray(items) ? items : [items as Committable<A>]),
    stream: consumerStream(engine, consumer, input, undefined),
    committable: consumerStream(engine, consumer, input, (batch) => envelopes(engine, consumer, batch))
  }
}

const commitAll = (items: ReadonlyArray<Committable<unknown>>): Effect.Effect<void, CommitError> =>
  items.length === 0 ? Effect.void : waitFor<CommitError>((notice) => commitEnvelopes(items, notice))

/** Opens the engine, reports recovery (a warning log for a torn tail or a moved cursor, then `onRecovery`). */
const openEngine = <A>(options: BufferOptions<A>): Effect.Effect<BufferEngine<A>, OpenError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.suspend(() => {
      const resolved = resolve(options)
      if (resolved instanceof InvalidArgument) return Effect.fail(resolved)
      const engine = BufferEngine.open(resolved)
      return engine instanceof BufferEngine ? Effect.succeed(engine) : Effect.fail(engine)
    }),
    (engine) => Effect.promise(() => engine.close())
  ).pipe(Effect.tap((engine) => reportRecovery(engine)))

const reportRecovery = <A>(engine: BufferEngine<A>): Effect.Effect<void> =>
  Effect.gen(function*() {
    const report = engine.report
    if (report.tornTail !== undefined) {
      const torn = report.tornTail
      yield* Effect.logWarning(`PersistentBuffer ${engine.options.directory}: cut a torn tail of ${torn.bytesCut} bytes at ${torn.file}:${torn.offset}`)
    }
    if (report.staleLockPid !== undefined) {
      yield* Effect.logWarning(`PersistentBuffer ${engine.options.directory}: took over the stale lock of process ${report.staleLockPid}`)
    }
    for (const consumer of report.consumers) {
      if (consumer.note !== undefined) yield* Effect.logWarning(`PersistentBuffer ${engine.options.directory}: consumer ${consumer.consumer}: ${consumer.note}`)
    }
    engine.options.onRecovery?.(report)
  })

/**
 * Runs `stream` into the engine and, when it completes, marks the input ended. When it fails
 * and `input` is given (a stage), the failure is recorded for the consumer streams, which fail
 * with it; a buffer from `make` leaves its consumers waiting (the caller of `run` has the error).
 */
const runInput = <A, E, R>(engine: BufferEngine<A>, stream: Stream.Stream<A, E, R>, input: InputState | undefined) =>
  Stream.runForEachArray(stream, (chunk) => offerArray(engine, chunk)).pipe(
    Effect.onExit((exit) =>
      Effect.sync(() => {
        if (Exit.isSuccess(exit)) return engine.endInput()
        if (input === undefined || Cause.hasInterruptsOnly(exit.cause)) return
        input.failure = exit.cause
        engine.endInput()
      })
    )
  )

const build = <A>(engine: BufferEngine<A>, input: InputState): PersistentBuffer<A> => {
  const consumers = Array.from({ length: engine.options.consumers }, (_, consumer) => makeConsumer(engine, consumer, input))
  return {
    ...consumers[0]!,
    directory: engine.options.directory,
    recovery: engine.report,
    consumers,
    offer: (element) => offerArray(engine, [element]),
    offerAll: (elements) => offerArray(engine, Array.isArray(elements) ? elements : Array.from(elements)),
    run: (stream) => runInput(engine, stream, undefined),
    endInput: Effect.sync(() => engine.endInput()),
    size: Effect.sync(() => engine.size())
  }
}

/**
 * Opens a buffer over `options.directory` for the life of the scope: locks the directory,
 * recovers it (cutting a torn tail), and on close flushes, fsyncs and releases it.
 */
export const make = <A>(options: BufferOptions<A>): Effect.Effect<PersistentBuffer<A>, OpenError, Scope.Scope> =>
  Effect.map(openEngine(options), (engine) => build(engine, { failure: undefined }))

/** Opens a buffer for code without Effect; the promise rejects with the typed `OpenError`. */
export const open = <A>(options: BufferOptions<A>): Promise<BufferHandle<A>> => {
  const resolved = resolve(options)
  if (resolved instanceof InvalidArgument) return Promise.reject(resolved)
  const engine = BufferEngine.open(resolved)
  if (!(engine instanceof BufferEngine)) return Promise.reject(engine)
  engine.options.onRecovery?.(engine.report)
  return Promise.resolve(handle(engine))
}

/** The stage under a stream: opens the buffer, runs the upstream into it, and returns consumer streams. */
const stage = <A, E, R, B>(
  options: BufferOptions<A>,
  self: Stream.Stream<A, E, R>,
  pick: (engine: BufferEngine<A>, input: InputState) => B
): Effect.Effect<B, OpenError, R | Scope.Scope> =>
  Effect.gen(function*() {
    const engine = yield* openEngine(options)
    const input: InputState = { failure: undefined }
    // Forked after the open, so the scope interrupts the upstream before it closes the buffer.
    yield* Effect.forkScoped(runInput(engine, self, input))
    return pick(engine, input)
  })

/** Options of a stage whose element type is given by the codec. */
type TypedOptions<A> = BufferOptions<A> & { readonly codec: BufferCodec<A> }

/**
 * The buffer as a stream stage: upstream elements are written to disk as fast as they come
 * (never back-pressured, until the optional size limit), downstream reads at its own pace. The
 * output ends when the upstream ended and everything was emitted; elements left over by a crash
 * or an early stop are emitted first on the next run over the same directory.
 */
export const via: {
  <A>(options: TypedOptions<A>): <E, R>(self: Stream.Stream<A, E, R>) => Stream.Stream<A, E | BufferError, R>
  (options: BufferOptions<unknown>): <A, E, R>(self: Stream.Stream<A, E, R>) => Stream.Stream<A, E | BufferError, R>
} = (options: BufferOptions<any>) => (self: Stream.Stream<any, any, any>): Stream.Stream<any, any, any> =>
  Stream.unwrap(stage(options, self, (engine, input) => consumerStream(engine, 0, input, undefined)))

/**
 * The at-least-once stage: emits envelopes that must reach the `commit` stage. Elements emitted
 * but not committed before a crash are emitted again after it; committed ones never are.
 */
export const viaAtLeastOnce: {
  <A>(options: TypedOptions<A>): <E, R>(self: Stream.Stream<A, E, R>) => Stream.Stream<Committable<A>, E | BufferError, R>
  (options: BufferOptions<unknown>): <A, E, R>(self: Stream.Stream<A, E, R>) => Stream.Stream<Committable<A>, E | BufferError, R>
} = (options: BufferOptions<any>) => (self: Stream.Stream<any, any, any>): Stream.Stream<any, any, any> =>
  Stream.unwrap(stage(options, self, (engine, input) => consumerStream(engine, 0, input, (batch) => envelopes(engine, 0, batch))))

/**
 * The commit stage: commits each chunk of envelopes (one cursor write per chunk, and under
 * `"batch"` an fsync) and emits their values once the commit is durable per the policy.
 */
export const commit = <A, E, R>(self: Stream.Stream<Committable<A>, E, R>): Stream.Stream<A, E | CommitError, R> =>
  Stream.mapArrayEffect(self, (chunk) => Effect.as(commitAll(chunk), chunk.map((item) => item.value) as unknown as Arr.NonEmptyReadonlyArray<A>))

type BroadcastOptions<A> = BufferOptions<A> & { readonly consumers: number }

/**
 * Broadcast: one buffer, `options.consumers` output streams, each with its own cursor and pace.
 * A segment is deleted once every consumer has committed past it. The streams belong to the
 * scope: the buffer closes with it.
 */
export const broadcast: {
  <A>(options: BroadcastOptions<A> & { readonly codec: BufferCodec<A> }): <E, R>(
    self: Stream.Stream<A, E, R>
  ) => Effect.Effect<ReadonlyArray<Stream.Stream<A, E | BufferError>>, OpenError, R | Scope.Scope>
  (options: BroadcastOptions<unknown>): <A, E, R>(
    self: Stream.Stream<A, E, R>
  ) => Effect.Effect<ReadonlyArray<Stream.Stream<A, E | BufferError>>, OpenError, R | Scope.Scope>
} = (options: BroadcastOptions<any>) => (self: Stream.Stream<any, any, any>): Effect.Effect<any, any, any> =>
  stage(options, self, (engine, input) =>
    Array.from({ length: engine.options.consumers }, (_, consumer) => consumerStream(engine, consumer, input, undefined)))

/** Broadcast with at-least-once delivery: each output stream emits envelopes for its own `commit` stage. */
export const broadcastAtLeastOnce: {
  <A>(options: BroadcastOptions<A> & { readonly codec: BufferCodec<A> }): <E, R>(
    self: Stream.Stream<A, E, R>
  ) => Effect.Effect<ReadonlyArray<Stream.Stream<Committable<A>, E | BufferError>>, OpenError, R | Scope.Scope>
  (options: BroadcastOptions<unknown>): <A, E, R>(
    self: Stream.Stream<A, E, R>
  ) => Effect.Effect<ReadonlyArray<Stream.Stream<Committable<A>, E | BufferError>>, OpenError, R | Scope.Scope>
} = (options: BroadcastOptions<any>) => (self: Stream.Stream<any, any, any>): Effect.Effect<any, any, any> =>
  stage(options, self, (engine, input) =>
    Array.from({ length: engine.options.consumers }, (_, consumer) =>
      consumerStream(engine, consumer, input, (batch) => envelopes(engine, consumer, batch))))
