/**
 * The Promise API of the persistent buffer, for code that does not use Effect: a handle with
 * `offer`/`take`, per-consumer handles, commits, and async iterators. Also `Committable`, the
 * envelope at-least-once consumers receive, shared with the Effect API.
 *
 * Promises reject with the typed error instances of `BufferError.ts` (their `_tag` is the code).
 * The iterators commit an element when the loop asks for the next one, and persist that once per
 * batch read: after a crash, elements whose loop body finished since the last batch, and the one
 * being processed when the loop exits, are delivered again (at least once, never lost).
 */
import { type CommitError, InvalidArgument, type TakeError } from "../BufferError.js"
import type { BufferEngine, BufferSize } from "./bufferEngine.js"
import type { RecoveryReport } from "./bufferOptions.js"
import type { ReadBatch } from "./bufferReader.js"

const ENGINE: unique symbol = Symbol.for("shardfeed/PersistentBuffer/engine")

/** An element delivered to an at-least-once consumer: commit it (by this envelope) once it is processed. */
export class Committable<A> {
  /** The buffer that delivered it (internal, typed `unknown` so the engine stays out of the public types). */
  readonly [ENGINE]: unknown

  constructor(
    /** The element's index in the buffer (0, 1, 2, ... across restarts). */
    readonly index: number,
    readonly value: A,
    /** The consumer it was delivered to. */
    readonly consumer: number,
    /** The delivering buffer (internal); envelopes are made by the buffer, never by hand. */
    engine: unknown
  ) {
    this[ENGINE] = engine
  }

  /** The same envelope around a transformed value, so a commit stage further down still commits it. */
  map<B>(f: (value: A) => B): Committable<B> {
    return new Committable(this.index, f(this.value), this.consumer, this[ENGINE])
  }
}

/** Wraps a read batch into envelopes. */
export const envelopes = <A>(engine: BufferEngine<A>, consumer: number, batch: ReadBatch<A>): Array<Committable<A>> =>
  batch.values.map((value, i) => new Committable(batch.first + i, value, consumer, engine))

/**
 * Commits envelopes, grouped by buffer and consumer in order, one cursor write per group, then
 * calls `done` once every involved buffer made them durable (only `"batch"` waits for an fsync).
 */
export const commitEnvelopes = (items: ReadonlyArray<Committable<unknown>>, done: (error: CommitError | undefined) => void): () => void => {
  const groups = new Map<BufferEngine<any>, Map<number, Array<number>>>()
  for (const item of items) {
    const engine = item[ENGINE] as BufferEngine<any>
    let consumers = groups.get(engine)
    if (consumers === undefined) groups.set(engine, consumers = new Map())
    let indexes = consumers.get(item.consumer)
    if (indexes === undefined) consumers.set(item.consumer, indexes = [])
    indexes.push(item.index)
  }
  for (const [engine, consumers] of groups) {
    for (const [consumer, indexes] of consumers) {
      const error = engine.commit(consumer, indexes)
      if (error !== undefined) {
        queueMicrotask(() => done(error))
        return () => {}
      }
    }
  }
  let pending = groups.size
  const cancels = [...groups.keys()].map((engine) =>
    engine.whenDurable((error) => {
      if (pending < 0) return
      if (error !== undefined) {
        pending = -1
        done(error)
      } else if (--pending === 0) done(undefined)
    })
  )
  if (pending === 0) queueMicrotask(() => done(undefined))
  return () => cancels.forEach((cancel) => cancel())
}

/** Offers elements, waiting for space under back-pressure, and resolves once all are acknowledged. */
export const offerPromise = <A>(engine: BufferEngine<A>, elements: ReadonlyArray<A>): Promise<void> =>
  new Promise<void>((resolve, reject) => {
    const step = (from: number): void => {
      const outcome = engine.offer(elements, from)
      if ("_tag" in outcome) return reject(outcome)
      if (outcome.full) {
        engine.whenSpace((error) => (error !== undefined ? reject(error) : step(outcome.accepted)))
        return
      }
      if (outcome.accepted < elements.length) return void setImmediate(() => step(outcome.accepted))
      engine.whenAcked(outcome.ackIndex, (error) => (error !== undefined ? reject(error) : resolve()))
    }
    step(0)
  })

/**
 * Waits until `consumer` has read at least one element (up to `max`). With `endWithInput`, it
 * resolves `undefined` once the input ended and the consumer caught up; otherwise it keeps waiting.
 */
export const takePromise = <A>(engine: BufferEngine<A>, consumer: number, max: number, endWithInput: boolean): Promise<ReadBatch<A> | undefined> =>
  new Promise((resolve, reject) => {
    const step = (): void => {
      const batch = engine.take(consumer, max)
      if ("_tag" in batch) return reject(batch)
      if (batch.values.length > 0) return resolve(batch)
      if (endWithInput && engine.inputEnded && engine.caughtUp(consumer)) return resolve(undefined)
      engine.whenAvailable(consumer, (error) => (error !== undefined ? reject(error) : step()), endWithInput)
    }
    step()
  })

/** One consumer of an open buffer (Promise API). */
export interface ConsumerHandle<A> extends AsyncIterable<A> {
  readonly consumer: number
  /** Waits for the next element and commits it. */
  readonly take: () => Promise<A>
  /** Waits for at least one element and returns up to `max` (at most `takeChunkMax`), committed. */
  readonly takeUpTo: (max: number) => Promise<ReadonlyArray<A>>
  /** Waits for at least one element and returns up to `max` envelopes, not committed: pass them to `commit` once processed. */
  readonly takeCommittable: (max: number) => Promise<ReadonlyArray<Committable<A>>>
  /** Commits envelopes (strict order checks them under `commitOrder: "strict"`); resolves once the commit is durable per the policy. */
  readonly commit: (items: Committable<A> | ReadonlyArray<Committable<A>>) => Promise<void>
}

/** An open buffer (Promise API); consumer 0's methods are on the handle itself. */
export interface BufferHandle<A> extends ConsumerHandle<A> {
  readonly directory: string
  readonly recovery: RecoveryReport
  readonly consumers: ReadonlyArray<ConsumerHandle<A>>
  /** Offers one element; resolves once it is acknowledged per the durability policy. */
  readonly offer: (element: A) => Promise<void>
  /** Offers elements in order; resolves once all are acknowledged. */
  readonly offerAll: (elements: Iterable<A>) => Promise<void>
  /** Marks the input as finished: iterators end once they have caught up. */
  readonly endInput: () => void
  readonly size: () => BufferSize
  /** Flushes, fsyncs (unless `"none"`), persists cursors and releases the directory. */
  readonly close: () => Promise<void>
}

const checkMax = (max: number): InvalidArgument | undefined =>
  Number.isSafeInteger(max) && max >= 1 ? undefined : new InvalidArgument({ field: "max", message: "must be a positive integer" })

/** The iterator of a consumer: commit on advance, persisted once per batch (see the module comment). */
const iterate = <A>(engine: BufferEngine<A>, consumer: number): AsyncIterator<A> => {
  let batch: ReadBatch<A> = { first: 0, values: [] }
  let position = 0
  // A closed buffer ends the iteration; other commit failures reject `next`.
  const commitBefore = (end: number) => {
    const error = engine.commitThrough(consumer, end)
    return error === undefined || error._tag === "BufferClosed" ? undefined : error
  }
  return {
    next: async (): Promise<IteratorResult<A>> => {
      if (position < batch.values.length) return { done: false, value: batch.values[position++]! }
      if (batch.values.length > 0) {
        const error = commitBefore(batch.first + batch.values.length)
        if (error !== undefined) return Promise.reject(error)
      }
      const next = await takePromise(engine, consumer, engine.options.takeChunkMax, true).then(
        (taken) => taken,
        (error: TakeError) => (error._tag === "BufferClosed" ? undefined : Promise.reject(error))
      )
      if (next === undefined) return { done: true, value: undefined }
      batch = next
      position = 1
      return { done: false, value: batch.values[0]! }
    },
    return: async (): Promise<IteratorResult<A>> => {
      // The element in hand when the loop exits may not have been processed: it is delivered again.
      const error = position > 0 ? commitBefore(batch.first + position - 1) : undefined
      return error !== undefined ? Promise.reject(error) : { done: true, value: undefined }
    }
  }
}

const consumerHandle = <A>(engine: BufferEngine<A>, consumer: number): ConsumerHandle<A> => {
  const takeBatch = async (max: number): Promise<ReadBatch<A>> => {
    const bad = checkMax(max)
    if (bad !== undefined) return Promise.reject(bad)
    return (await takePromise(engine, consumer, max, false))!
  }
  const takeUpTo = async (max: number): Promise<ReadonlyArray<A>> => {
    const batch = await takeBatch(max)
    const error = engine.commitThrough(consumer, batch.first + batch.values.length)
    return error !== undefined ? Promise.reject(error) : batch.values
  }
  return {
    consumer,
    take: async () => (await takeUpTo(1))[0]!,
    takeUpTo,
    takeCommittable: async (max) => envelopes(engine, consumer, await takeBatch(max)),
    commit: (items) =>
      new Promise<void>((resolve, reject) => {
        commitEnvelopes(Array.isArray(items) ? items : [items as Committable<A>], (error) => (error !== undefined ? reject(error) : resolve()))
      }),
    [Symbol.asyncIterator]: () => iterate(engine, consumer)
  }
}

/** Wraps an open engine into the Promise API. */
export const handle = <A>(engine: BufferEngine<A>): BufferHandle<A> => {
  const consumers = Array.from({ length: engine.options.consumers }, (_, consumer) => consumerHandle(engine, consumer))
  const first = consumers[0]!
  return {
    ...first,
    directory: engine.options.directory,
    recovery: engine.report,
    consumers,
    offer: (element) => offerPromise(engine, [element]),
    offerAll: (elements) => offerPromise(engine, Array.isArray(elements) ? elements : Array.from(elements)),
    endInput: () => engine.endInput(),
    size: () => engine.size(),
    close: () => engine.close()
  }
}
