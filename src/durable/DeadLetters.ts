/**
 * Dead letters: durable messages that failed `attemptsMax` times, kept per entity type until an
 * operator retries them (sent again, to the end of their entity's order) or purges them. The HTTP
 * API and the CLI use this service; it works without the entity runtime, since a dead letter
 * keeps its payload as it was encoded, so the CLI can run it against Redis alone.
 */
import { Context, Effect, Layer } from "effect"
import { InvalidArgument } from "../../persistence/StoreError.js"
import * as DurableConfig from "./DurableConfig.js"
import { DeadLetterNotFound, type DurableUnavailable } from "./DurableError.js"
import * as Bull from "./internal/bullConnection.js"
import * as DurableQueue from "./internal/durableQueue.js"

/** One dead letter. */
export type DeadLetter = DurableQueue.DeadLetterRecord

/** Where a listing starts. */
export interface ListOptions {
  /** Only this entity type's dead letters (default: all, in the order they died). */
  readonly type?: string | undefined
  /** 1 to 1,000 (default 100). */
  readonly limit?: number | undefined
  /** Resume after the last item of a previous page. */
  readonly cursor?: string | undefined
}

/** A page of dead letters and the cursor after it (null at the end). */
export interface Page {
  readonly items: ReadonlyArray<DeadLetter>
  readonly cursor: string | null
}

/** The dead-letter service. */
export interface DeadLettersShape {
  readonly list: (options: ListOptions) => Effect.Effect<Page, DurableUnavailable | InvalidArgument>
  /** Sends the message again (to the end of its entity's order) and removes the dead letter. */
  readonly retry: (id: string) => Effect.Effect<{ readonly id: string }, DurableUnavailable | DeadLetterNotFound>
  /** Removes one dead letter; false when there was none. */
  readonly purge: (id: string) => Effect.Effect<boolean, DurableUnavailable>
  /** Removes up to `max` dead letters (default 100,000) of a type, or of all types; answers how many. */
  readonly purgeAll: (options: { readonly type?: string | undefined; readonly max?: number | undefined }) => Effect.Effect<number, DurableUnavailable | InvalidArgument>
}

/** The dead-letter service tag. */
export class DeadLetters extends Context.Service<DeadLetters, DeadLettersShape>()("shardfeed/DeadLetters") {}

const PAGE_MAX = 1_000
const PURGE_MAX = 100_000

const unavailable = (operation: string) => (cause: unknown) => Bull.translate(operation, cause)

const parseCursor = (cursor: string | undefined): number | InvalidArgument => {
  if (cursor === undefined) return 0
  const text = Buffer.from(cursor, "base64url").toString("utf8")
  const sequence = Number(text)
  return /^[1-9][0-9]{0,15}$/.test(text) && Buffer.from(text).toString("base64url") === cursor
    ? sequence
    : new InvalidArgument({ field: "cursor", message: "is not a dead-letter cursor" })
}

/** The service over an open durable queue. */
export const make = (queue: DurableQueue.DurableQueue): DeadLettersShape => {
  const page = (type: string | undefined, after: number, limit: number) =>
    Effect.tryPromise({ try: () => queue.deadLetterPage(type, after, limit), catch: unavailable("list dead letters") })

  const list = (options: ListOptions) =>
    Effect.gen(function*() {
      const limit = options.limit ?? 100
      if (!Number.isInteger(limit) || limit < 1 || limit > PAGE_MAX) {
        return yield* Effect.fail(new InvalidArgument({ field: "limit", message: `must be an integer from 1 to ${PAGE_MAX}` }))
      }
      const after = parseCursor(options.cursor)
      if (after instanceof InvalidArgument) return yield* Effect.fail(after)
      const found = yield* page(options.type, after, limit)
      const last = found[found.length - 1]
      return {
        items: found.map((item) => item.record),
        cursor: found.length === limit && last !== undefined ? Buffer.from(String(last.sequence)).toString("base64url") : null
      }
    })

  const retry = (id: string) =>
    Effect.gen(function*() {
      const record = yield* Effect.tryPromise({ try: () => queue.deadLetterGet(id), catch: unavailable("read dead letter") })
      if (record === undefined) return yield* Effect.fail(new DeadLetterNotFound({ id }))
      // Send first, remove after: a crash in between leaves the dead letter listed, and the
      // de-duplication id makes a second retry of it within the window a no-op.
      const sent = yield* Effect.tryPromise({
        try: () => queue.send({ t: record.type, e: record.entity, m: record.message._tag, p: record.message.payload, dedupId: `dead-letter:${id}` }),
        catch: unavailable("retry dead letter")
      })
      yield* Effect.tryPromise({ try: () => queue.deadLetterTake(id), catch: unavailable("remove dead letter") })
      return { id: sent.id }
    })

  const purge = (id: string) =>
    Effect.map(Effect.tryPromise({ try: () => queue.deadLetterTake(id), catch: unavailable("purge dead letter") }), (taken) => taken !== undefined)

  const purgeAll = (options: { readonly type?: string | undefined; readonly max?: number | undefined }) =>
    Effect.gen(function*() {
      const max = options.max ?? PURGE_MAX
      if (!Number.isInteger(max) || max < 1 || max > PURGE_MAX) {
        return yield* Effect.fail(new InvalidArgument({ field: "max", message: `must be an integer from 1 to ${PURGE_MAX}` }))
      }
      let purged = 0
      // Bounded: each round removes what it listed, and the rounds stop at `max`.
      while (purged < max) {
        const found = yield* page(options.type, 0, Math.min(PAGE_MAX, max - purged))
        if (found.length === 0) break
        for (const item of found) if (yield* purge(item.record.id)) purged++
      }
      return purged
    })

  return { list, retry, purge, purgeAll }
}

/** Options of the standalone layer (the CLI's): Redis and the queue's name and prefix. */
export interface DeadLetterOptions extends Bull.BullConnectionOptions {
  readonly config?: Partial<DurableConfig.DurableConfig> | undefined
}

/** Dead letters over their own producer connection, without an entity runtime. */
export const layer = (options: DeadLetterOptions): Layer.Layer<DeadLetters, DurableUnavailable | InvalidArgument> =>
  Layer.effect(
    DeadLetters,
    Effect.gen(function*() {
      const validated = yield* DurableConfig.validate({ ...options.config, consume: false })
      const parsed = Bull.parseUrl(options.url)
      if (parsed instanceof InvalidArgument) return yield* Effect.fail(parsed)
      const queue = yield* Effect.acquireRelease(
        Effect.tryPromise({ try: () => DurableQueue.openWithin(validated, options, parsed), catch: unavailable("connect") }),
        (opened) => Effect.promise(() => opened.close().catch(() => undefined))
      )
      return make(queue)
    })
  )
