/**
 * The feed entity: one per feed id, so every write to a feed comes from one writer, in order.
 * It keeps only the feed's head and its open (last) record in memory; entries live in records in
 * the store (see `internal/record.ts`) and are read on demand, so a feed of ten million entries
 * costs the same memory as a feed of ten.
 *
 * Appends are decided in this order: nonces (duplicates first, so a retry is a duplicate whatever
 * its timestamp), then timestamps (an item older than the last refuses the whole call), then the
 * write. Appends in one group-commit round extend the same record, so they cost one store write;
 * a feed appended to one item per round gets a record per item, which `Compact` later merges.
 */
import { Effect, Result, Schema } from "effect"
import * as Entity from "../../actors/Entity.js"
import { Messenger } from "../../actors/Messenger.js"
import { toBytes } from "../../persistence/internal/bytes.js"
import { InvalidArgument, type WriteError } from "../../persistence/StoreError.js"
import type { StoreView } from "../../persistence/StoreView.js"
import { EntryNotFound, FeedNotFound, InvalidCursor, TimestampTooOld } from "./FeedError.js"
import * as FeedMessages from "./FeedMessages.js"
import * as Cursor from "./internal/cursor.js"
import * as InOrder from "./internal/inOrder.js"
import * as Head from "./internal/head.js"
import * as Navigate from "./internal/navigate.js"
import * as Nonce from "./internal/nonce.js"
import * as Record from "./internal/record.js"

/** Bounds of a feed. */
export interface FeedLimits {
  /** Items in one append (the contract: 1 to 1,000). */
  readonly appendItemsMax: number
  /** Entries in one page (the contract: 1 to 1,000). */
  readonly pageLimitMax: number
  /** Entries in one record before a new one starts. */
  readonly recordEntriesMax: number
  /** Bytes of values in one record before a new one starts (a single larger entry still fits alone). */
  readonly recordBytesMax: number
  /** Records one compaction step reads (and so at most rewrites); the rest is the next step's. */
  readonly compactRecordsMax: number
  /**
   * Bytes of values in one page (default 64 MiB): a page ends there even short of its `limit`
   * (its first entry always fits), so a page of large entries stays an answer a process can
   * hold; its cursor goes on from there.
   */
  readonly pageBytesMax: number
}

/** The default bounds. */
export const defaultLimits: FeedLimits = {
  appendItemsMax: 1_000,
  pageLimitMax: 1_000,
  recordEntriesMax: 256,
  recordBytesMax: 64 * 1024,
  compactRecordsMax: 256,
  pageBytesMax: 64 * 1024 * 1024
}

/** What each bound may be: a record's entry count is stored in 16 bits; a step must pass its first record. */
const LIMIT_RANGES: { readonly [K in keyof FeedLimits]: readonly [number, number] } = {
  appendItemsMax: [1, 10_000],
  pageLimitMax: [1, 10_000],
  recordEntriesMax: [1, 65_535],
  recordBytesMax: [1, 16 * 1024 * 1024],
  compactRecordsMax: [2, 10_000],
  pageBytesMax: [1, 256 * 1024 * 1024]
}

/** Checks a feed type's bounds; a bad one is a programming error, thrown with the field named. */
export const checkLimits = (type: string, limits: FeedLimits): void => {
  for (const [field, [min, max]] of Object.entries(LIMIT_RANGES) as Array<[keyof FeedLimits, readonly [number, number]]>) {
    const value = limits[field]
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new Error(`feed type ${type}: limits.${field} must be an integer from ${min} to ${max}, not ${String(value)}`)
    }
  }
}

/** How long entries are kept; trimming runs in the background after appends. */
export interface Retention {
  readonly maxEntries?: number | undefined
  readonly maxAgeMillis?: number | undefined
}

/** Checks a feed type's retention: each bound, when given, a positive whole number (thrown with the field named). */
const checkRetention = (type: string, retention: Retention): void => {
  for (const field of ["maxEntries", "maxAgeMillis"] as const) {
    const value = retention[field]
    if (value !== undefined && !(Number.isSafeInteger(value) && value >= 1)) {
      throw new Error(`feed type ${type}: retention.${field} must be a whole number from 1, not ${String(value)}`)
    }
  }
}

/** What a feed entity keeps in memory. */
interface FeedState {
  head: Head.Head
  /** The last record of the current generation, as last written. */
  tail: Record.FeedRecord | undefined
  /** The commit round in which the tail was last written. */
  tailRound: number
  /** When a trim was last requested (undefined: none outstanding). */
  trimRequestedAt: number | undefined
}

const HEAD = "head"
/** Where compaction resumes: the record key (generation, first offset) of the first record it has not closed. */
const COMPACTED = "compacted"
/** The latest time a JavaScript Date can hold: later timestamps are refused as nonsense. */
const TIMESTAMP_MAX = 8.64e15
const PURGE_CHUNK = 500
const TRIM_RECORDS_MAX = 200

const invalid = (field: string, message: string) => new InvalidArgument({ field, message })

const checkOffset = (offset: unknown): InvalidArgument | undefined =>
  typeof offset === "number" && Number.isSafeInteger(offset) && offset >= 1 ? undefined : invalid("offset", "must be an integer from 1")

/** One item of an append as the entity receives it. */
interface AppendInput<A> {
  readonly value: A
  readonly nonce?: number | string | undefined
  readonly timestamp?: number | undefined
}

/** The encoded form of the parts of a feed entity's behaviour that depend on its entry schema. */
interface Codec<A> {
  readonly encode: (value: A, field: string) => Effect.Effect<Uint8Array, InvalidArgument>
  /** The same without an Effect per value, where encoding is synchronous: the bytes, or why not. */
  readonly encodeSync?: ((value: A) => Uint8Array | string) | undefined
  readonly decode: (bytes: Uint8Array) => A
}

const JSON_DEPTH_MAX = 64

/** Whether a value is plain JSON (finite numbers, no undefined, functions or cycles), bounded in depth. */
const isJson = (value: unknown, depth = 0): boolean => {
  if (value === null || typeof value === "string" || typeof value === "boolean") return true
  if (typeof value === "number") return Number.isFinite(value)
  if (depth >= JSON_DEPTH_MAX || typeof value !== "object") return false
  if (Array.isArray(value)) return value.every((item) => isJson(item, depth + 1))
  const prototype = Object.getPrototypeOf(value)
  if (prototype !== Object.prototype && prototype !== null) return false
  return Object.values(value).every((item) => isJson(item, depth + 1))
}

const makeCodec = <A, I>(entry: Schema.Codec<A, I>): Codec<A> => {
  if (entry === (Schema.Json as unknown)) {
    // Schema.Json is "any JSON value": checking it by hand and using the native JSON functions
    // is an order of magnitude faster than walking the schema, with the same verdicts.
    return {
      encode: (value, field) =>
        isJson(value) ? Effect.succeed(toBytes(JSON.stringify(value))) : Effect.fail(invalid(field, "must be a JSON value")),
      encodeSync: (value) => (isJson(value) ? toBytes(JSON.stringify(value)) : "must be a JSON value"),
      decode: (bytes) => JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8")) as A
    }
  }
  const json = Schema.fromJsonString(entry)
  const encode = Schema.encodeEffect(json)
  const decode = Schema.decodeUnknownSync(json)
  return {
    encode: (value, field) =>
      Effect.mapError(Effect.map(encode(value), (text) => toBytes(text as string)), (error) => invalid(field, String(error.message))),
    // Stored values were encoded by this schema; a value that no longer decodes is a defect.
    decode: (bytes) => decode(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8"))
  }
}

/** The feed entity's behaviour for a feed type, with its bounds (defaults filled in by `Feed.define`). */
export const behavior = <A, I>(
  entity: Entity.AnyEntityType,
  entry: Schema.Codec<A, I>,
  options: {
    readonly limits: FeedLimits
    readonly retention?: Retention | undefined
    readonly clock?: (() => number) | undefined
  }
) => {
  const limits = options.limits
  checkLimits(entity.type, limits)
  const codec = makeCodec(entry)
  const clock = options.clock ?? Date.now
  const retention = options.retention ?? {}
  checkRetention(entity.type, retention)
  const retains = retention.maxEntries !== undefined || retention.maxAgeMillis !== undefined
  /**
   * A read handler that also starts a trim that is due, so a feed no longer appended to still
   * ages out; as it is for a type that keeps everything.
   */
  const reading = <P, A, E, R>(handler: (payload: P, context: Entity.DirectContext<FeedState>) => Effect.Effect<A, E, R>) =>
    retains ? (payload: P, context: Entity.DirectContext<FeedState>) => Effect.andThen(scheduleTrimIfDue(context), handler(payload, context)) : handler
  // Two at least (checked): a step then always ends past its first record or having merged one.
  const compactRecordsMax = limits.compactRecordsMax

  const toEntry = (stored: Record.StoredEntry) => ({
    offset: stored.offset,
    timestamp: stored.timestamp,
    ...(stored.nonce === undefined ? {} : { nonce: stored.nonce.toString() }),
    value: codec.decode(stored.value)
  })

  const putRecord = (view: StoreView, record: Record.FeedRecord) =>
    view.put(Navigate.RECORDS, Record.recordKey(record.generation, record.firstOffset), Record.encode(record))

  const putHead = (view: StoreView, head: Head.Head) => view.put(HEAD, "", Head.encode(head))

  return Entity.direct(entity, {
    recover: ({ view }) =>
      Effect.gen(function*() {
        const stored = yield* view.get(HEAD, "")
        const head = stored === undefined ? Head.empty() : Head.decode(stored)
        const tail = yield* Navigate.lastRecord(view, head.generation)
        return { head, tail, tailRound: -1, trimRequestedAt: undefined } satisfies FeedState
      }),
    handlers: {
      Append: ({ items }: { readonly items: ReadonlyArray<AppendInput<A>> }, context: Entity.DirectContext<FeedState>) =>
        append(context, items),
      AppendBatches: ({ calls }: { readonly calls: ReadonlyArray<{ readonly items: ReadonlyArray<AppendInput<A>> }> }, context: Entity.DirectContext<FeedState>) =>
        appendBatches(context, calls),
      Get: reading(({ offset }: { readonly offset: number }, context: Entity.DirectContext<FeedState>) =>
        Effect.gen(function*() {
          const bad = checkOffset(offset)
          if (bad !== undefined) return yield* Effect.fail(bad)
          const record = yield* Navigate.recordHolding(context.view, context.state.head.generation, offset)
          // One entry decoded, not the record's every entry: `recordHolding` put the offset in it.
          const stored = record === undefined ? undefined : Record.entryAt(record, offset - record.firstOffset)
          if (stored === undefined || stored.removed) return yield* Effect.fail(new EntryNotFound({ feed: context.id, offset }))
          return toEntry(stored)
        })),
      Remove: ({ offset }: { readonly offset: number }, context: Entity.DirectContext<FeedState>) => remove(context, offset),
      Page: reading((request: FeedMessages.PageRequest, context: Entity.DirectContext<FeedState>) => page(context, request)),
      Metadata: reading((_: void, context: Entity.DirectContext<FeedState>) => {
        const head = context.state.head
        if (!Head.exists(head)) return Effect.fail(new FeedNotFound({ feed: context.id }))
        return Effect.succeed({
          feed: context.id,
          count: head.count,
          firstOffset: head.firstOffset,
          lastOffset: head.lastOffset,
          minTimestamp: head.minTimestamp,
          maxTimestamp: head.maxTimestamp,
          lastNonce: head.lastNonce,
          bytes: head.bytes
        })
      }),
      Delete: (_: void, context: Entity.DirectContext<FeedState>) =>
        Effect.gen(function*() {
          const state = context.state
          if (!Head.exists(state.head)) return { deleted: false }
          const old = state.head.generation
          const head = Head.empty(old + 1)
          yield* putHead(context.view, head)
          context.setState({ head, tail: undefined, tailRound: -1, trimRequestedAt: state.trimRequestedAt })
          // The old generation's records are deleted in bounded steps after the reply.
          yield* selfSend(context, "Purge", { generation: old })
          return { deleted: true }
        }),
      Trim: (_: void, context: Entity.DirectContext<FeedState>) => trim(context),
      Compact: (_: void, context: Entity.DirectContext<FeedState>) => compact(context),
      Purge: ({ generation }: { readonly generation: number }, context: Entity.DirectContext<FeedState>) =>
        Effect.gen(function*() {
          // Only a deleted generation's records go: the live one is never purged, whoever asks.
          if (!(Number.isSafeInteger(generation) && generation >= 1 && generation < context.state.head.generation)) {
            return yield* Effect.fail(invalid("generation", `must be a deleted generation of the feed (below ${context.state.head.generation})`))
          }
          const records = yield* Navigate.recordsFrom(context.view, generation, undefined, false, PURGE_CHUNK)
          for (const record of records) yield* context.view.delete(Navigate.RECORDS, Record.recordKey(generation, record.firstOffset))
          if (records.length === PURGE_CHUNK) yield* selfSend(context, "Purge", { generation })
        })
    } as never,
    options: {}
  })

  // ------------------------------------------------------------------ append

  /**
   * Each call as an append of its own, in order: a call refused for its input (its field named)
   * or for a stale timestamp writes nothing and the others go on; any other failure (the store)
   * fails the message, as it would fail a lone append.
   */
  function appendBatches(context: Entity.DirectContext<FeedState>, calls: ReadonlyArray<{ readonly items: ReadonlyArray<AppendInput<A>> }>) {
    if (!Array.isArray(calls) || calls.length === 0 || calls.length > FeedMessages.APPEND_CALLS_MAX) {
      return Effect.fail(invalid("calls", `must hold 1 to ${FeedMessages.APPEND_CALLS_MAX} calls`))
    }
    type Outcome = { ok: true; results: ReadonlyArray<FeedMessages.AppendResult> } | { ok: false; error: InvalidArgument | TimestampTooOld }
    // Each call is planned against the head the calls before it left; all are written at once.
    const writeAll = (planned: ReadonlyArray<Planned | InvalidArgument | TimestampTooOld>) => {
      let head = context.state.head
      const fresh: Array<Record.StoredEntry> = []
      const noncesBefore: Array<bigint | undefined> = []
      const outcomes: Array<Outcome> = []
      for (const call of planned) {
        if (!("next" in call)) {
          outcomes.push({ ok: false, error: call })
          continue
        }
        head = call.next
        for (const entry of call.fresh) fresh.push(entry)
        for (const nonce of call.noncesBefore) noncesBefore.push(nonce)
        outcomes.push({ ok: true, results: call.results })
      }
      return InOrder.as(write(context, fresh, noncesBefore, head), { outcomes })
    }
    if (codec.encodeSync !== undefined) {
      const planned: Array<Planned | InvalidArgument | TimestampTooOld> = []
      let head = context.state.head
      for (const call of calls) {
        const decided = decide(head, call?.items, codec.encodeSync)
        if ("next" in decided) head = decided.next
        planned.push(decided)
      }
      return writeAll(planned)
    }
    return Effect.gen(function*() {
      const planned: Array<Planned | InvalidArgument | TimestampTooOld> = []
      let head = context.state.head
      for (const call of calls) {
        const decided = Result.merge(yield* Effect.result(plan(head, call?.items)))
        if ("next" in decided) head = decided.next
        planned.push(decided)
      }
      return yield* writeAll(planned)
    })
  }

  function append(context: Entity.DirectContext<FeedState>, items: ReadonlyArray<AppendInput<A>>) {
    if (codec.encodeSync !== undefined) {
      // Synchronous schemas and staged writes: the handler answers with an Exit, no fiber.
      const planned = decide(context.state.head, items, codec.encodeSync)
      if (!("next" in planned)) return Effect.fail(planned)
      return InOrder.as(write(context, planned.fresh, planned.noncesBefore, planned.next), { results: planned.results })
    }
    return Effect.flatMap(plan(context.state.head, items), (planned) =>
      InOrder.as(write(context, planned.fresh, planned.noncesBefore, planned.next), { results: planned.results }))
  }

  /** An append decided: its results, its fresh entries (with the nonce before each), the head after it. */
  interface Planned {
    readonly results: ReadonlyArray<FeedMessages.AppendResult>
    readonly fresh: ReadonlyArray<Record.StoredEntry>
    readonly noncesBefore: ReadonlyArray<bigint | undefined>
    readonly next: Head.Head
  }

  /** Decides an append against `head` without writing; fails, deciding nothing, on any bad item. */
  function plan(head: Head.Head, items: ReadonlyArray<AppendInput<A>>): Effect.Effect<Planned, InvalidArgument | TimestampTooOld> {
    if (codec.encodeSync !== undefined) {
      return Effect.suspend(() => {
        const planned = decide(head, items, codec.encodeSync!)
        return "next" in planned ? Effect.succeed(planned) : Effect.fail(planned)
      })
    }
    // An encoding that is an Effect: values first (each failure kept for its turn), then the rest.
    const count = Array.isArray(items) && items.length <= limits.appendItemsMax ? items.length : 0
    return Effect.flatMap(
      Effect.forEach(Array.from({ length: count }, (_, i) => i), (i) =>
        Effect.match(codec.encode(items[i]!.value, `items[${i}].value`), { onFailure: (error) => error, onSuccess: (bytes) => bytes })),
      (values) => {
        const planned = decide(head, items, (_, i) => values[i]!)
        return "next" in planned ? Effect.succeed(planned) : Effect.fail(planned)
      }
    )
  }

  /** `plan` without Effects: checks item by item (nonce, timestamp, value), then decides. */
  function decide(
    head: Head.Head,
    items: ReadonlyArray<AppendInput<A>>,
    encodeValue: (value: A, index: number) => Uint8Array | InvalidArgument | string
  ): Planned | InvalidArgument | TimestampTooOld {
    if (!Array.isArray(items) || items.length === 0 || items.length > limits.appendItemsMax) {
      return invalid("items", `must hold 1 to ${limits.appendItemsMax} items`)
    }
    // Check everything first: a bad item anywhere writes nothing.
    const encoded: Array<{ value: Uint8Array; nonce: bigint | undefined; timestamp: number | undefined }> = []
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!
      const nonce = item.nonce === undefined ? undefined : Nonce.parse(item.nonce, `items[${i}].nonce`)
      if (nonce instanceof InvalidArgument) return nonce
      if (item.timestamp !== undefined && !(typeof item.timestamp === "number" && item.timestamp >= 0 && item.timestamp <= TIMESTAMP_MAX)) {
        return invalid(`items[${i}].timestamp`, `must be milliseconds since the epoch, from 0 to ${TIMESTAMP_MAX}`)
      }
      const value = encodeValue(item.value, i)
      if (typeof value === "string") return invalid(`items[${i}].value`, value)
      if (value instanceof InvalidArgument) return value
      encoded.push({ value, nonce, timestamp: item.timestamp })
    }
    // Duplicates first: a nonce not above the last accepted one (this call's included).
    const lastNonceBefore = head.lastNonce === null ? undefined : BigInt(head.lastNonce)
    let lastNonce = lastNonceBefore
    const accepted: Array<boolean> = []
    for (const item of encoded) {
      const isNew = item.nonce === undefined || lastNonce === undefined || item.nonce > lastNonce
      if (isNew && item.nonce !== undefined) lastNonce = item.nonce
      accepted.push(isNew)
    }
    // Then timestamps, over the accepted items only.
    const now = clock()
    let lastTimestamp = head.lastTimestamp
    const timestamps: Array<number> = []
    for (let i = 0; i < encoded.length; i++) {
      if (!accepted[i]) {
        timestamps.push(0)
        continue
      }
      const given = encoded[i]!.timestamp
      if (given !== undefined && given < lastTimestamp) {
        return new TimestampTooOld({ field: `items[${i}].timestamp`, timestamp: given, last: lastTimestamp })
      }
      lastTimestamp = given ?? Math.max(now, lastTimestamp)
      timestamps.push(lastTimestamp)
    }
    let offset = head.nextOffset
    let nonceBefore = lastNonceBefore
    const results: Array<FeedMessages.AppendResult> = []
    const fresh: Array<Record.StoredEntry> = []
    const noncesBefore: Array<bigint | undefined> = []
    let bytes = 0
    for (let i = 0; i < encoded.length; i++) {
      const item = encoded[i]!
      if (!accepted[i]) {
        results.push({ duplicate: true })
        continue
      }
      noncesBefore.push(nonceBefore)
      fresh.push({ offset, timestamp: timestamps[i]!, nonce: item.nonce, value: item.value, removed: false })
      results.push({ offset, timestamp: timestamps[i]! })
      bytes += item.value.length
      if (item.nonce !== undefined) nonceBefore = item.nonce
      offset++
    }
    if (fresh.length === 0) return { results, fresh, noncesBefore, next: head }
    const first = fresh[0]!
    const last = fresh[fresh.length - 1]!
    // Every field spelled out: a spread and overrides is the slow path of object creation in V8.
    const next: Head.Head = {
      generation: head.generation,
      nextOffset: offset,
      count: head.count + fresh.length,
      bytes: head.bytes + bytes,
      firstOffset: head.firstOffset ?? first.offset,
      lastOffset: last.offset,
      minTimestamp: head.minTimestamp ?? first.timestamp,
      maxTimestamp: last.timestamp,
      lastTimestamp,
      lastNonce: lastNonce === lastNonceBefore ? head.lastNonce : String(lastNonce)
    }
    return { results, fresh, noncesBefore, next }
  }

  /** Writes planned entries and the head after them (nothing when there are none). */
  function write(
    context: Entity.DirectContext<FeedState>,
    fresh: ReadonlyArray<Record.StoredEntry>,
    noncesBefore: ReadonlyArray<bigint | undefined>,
    next: Head.Head
  ): Effect.Effect<void, WriteError, Messenger> {
    if (fresh.length === 0) return Effect.void
    const state = context.state
    const records = recordsFor(context, fresh, noncesBefore)
    const steps: Array<() => Effect.Effect<void, WriteError, Messenger>> = records.map((record) => () => putRecord(context.view, record))
    steps.push(() => {
      state.tail = records[records.length - 1]
      state.tailRound = context.writeRound
      return putHead(context.view, next)
    })
    steps.push(() => {
      state.head = next
      return scheduleTrimIfDue(context)
    })
    return InOrder.run(steps)
  }

  /** The records to put for fresh entries: the open tail while it is in this commit round, else new ones; the last is the new tail. */
  function recordsFor(context: Entity.DirectContext<FeedState>, fresh: ReadonlyArray<Record.StoredEntry>, noncesBefore: ReadonlyArray<bigint | undefined>) {
    const state = context.state
    const generation = state.head.generation
    const tail = state.tail
    const written: Array<Record.FeedRecord> = []
    // The record being filled: the open tail (copied once, not per entry), then new ones.
    let start: Omit<Record.FeedRecord, "entries"> | undefined
    let entries: Array<Record.StoredEntry> = []
    let bytes = 0
    if (tail !== undefined && state.tailRound === context.writeRound) {
      start = tail
      entries = [...tail.entries]
      for (const entry of entries) bytes += entry.value.length
    }
    for (let i = 0; i < fresh.length; i++) {
      const entry = fresh[i]!
      const fits = start !== undefined && entries.length < limits.recordEntriesMax && bytes + entry.value.length <= limits.recordBytesMax
      if (!fits) {
        if (start !== undefined) written.push({ ...start, entries })
        start = { generation, firstOffset: entry.offset, nonceBefore: noncesBefore[i] }
        entries = []
        bytes = 0
      }
      entries.push(entry)
      bytes += entry.value.length
    }
    written.push({ generation, firstOffset: start!.firstOffset, nonceBefore: start!.nonceBefore, entries })
    return written
  }


  // ------------------------------------------------------------------ remove

  function remove(context: Entity.DirectContext<FeedState>, offset: number) {
    return Effect.gen(function*() {
      const bad = checkOffset(offset)
      if (bad !== undefined) return yield* Effect.fail(bad)
      const state = context.state
      const head = state.head
      const record = yield* Navigate.recordHolding(context.view, head.generation, offset)
      const index = record === undefined ? -1 : offset - record.firstOffset
      const target = index < 0 ? undefined : record!.entries[index]
      if (target === undefined || target.removed) return { removed: false }
      const entries = [...record!.entries]
      entries[index] = { ...target, value: new Uint8Array(0), removed: true }
      const updated: Record.FeedRecord = { ...record!, entries }
      yield* putRecord(context.view, updated)
      if (state.tail !== undefined && state.tail.firstOffset === updated.firstOffset) state.tail = updated
      const next: Head.Head = { ...head, count: head.count - 1, bytes: head.bytes - target.value.length }
      if (head.firstOffset === offset) {
        const first = yield* liveFrom(context.view, head.generation, updated, offset, false)
        next.firstOffset = first?.offset ?? null
        next.minTimestamp = first?.timestamp ?? null
      }
      if (head.lastOffset === offset) {
        const last = yield* liveFrom(context.view, head.generation, updated, offset, true)
        next.lastOffset = last?.offset ?? null
        next.maxTimestamp = last?.timestamp ?? null
      }
      yield* putHead(context.view, next)
      state.head = next
      return { removed: true }
    })
  }

  /** The first live entry after (or, backward, before) `offset`, starting in `record`. */
  function liveFrom(view: StoreView, generation: number, record: Record.FeedRecord, offset: number, backward: boolean) {
    return Effect.gen(function*() {
      const inRecord = backward
        ? [...record.entries].reverse().find((entry) => entry.offset < offset && !entry.removed)
        : record.entries.find((entry) => entry.offset > offset && !entry.removed)
      if (inRecord !== undefined) return inRecord
      let from = record.firstOffset
      // Bounded steps of records; each step moves past at least one record, so this ends.
      for (;;) {
        const records = yield* Navigate.recordsFrom(view, generation, from, backward, 16)
        for (const candidate of records) {
          const entries = backward ? [...candidate.entries].reverse() : candidate.entries
          const live = entries.find((entry) => !entry.removed)
          if (live !== undefined) return live
        }
        if (records.length < 16) return undefined
        from = records[records.length - 1]!.firstOffset
      }
    })
  }

  // ------------------------------------------------------------------ page

  function page(context: Entity.DirectContext<FeedState>, request: FeedMessages.PageRequest) {
    return Effect.gen(function*() {
      const head = context.state.head
      const limit = request.limit ?? 100
      if (!Number.isInteger(limit) || limit < 1 || limit > limits.pageLimitMax) {
        return yield* Effect.fail(invalid("limit", `must be an integer from 1 to ${limits.pageLimitMax}`))
      }
      if (request.order !== undefined && request.order !== "forward" && request.order !== "backward") {
        return yield* Effect.fail(invalid("order", "must be forward or backward"))
      }
      const starts = ["offset", "timestamp", "nonce", "cursor"].filter((key) => request[key as keyof FeedMessages.PageRequest] !== undefined)
      if (starts.length > 1) return yield* Effect.fail(invalid(starts[1]!, "give at most one of offset, timestamp, nonce and cursor"))
      let backward = request.order === "backward"
      let start: number | undefined
      let inclusive = true
      // The record a seek found the start in, when it did: the page starts from it without reading it again.
      let known: Record.FeedRecord | undefined
      if (request.cursor !== undefined) {
        const cursor = Cursor.decode(context.type, context.id, request.cursor)
        if (cursor instanceof InvalidCursor) return yield* Effect.fail(cursor)
        if (cursor.generation !== head.generation) {
          return yield* Effect.fail(new InvalidCursor({ field: "cursor", message: "outlived its feed (the feed was deleted)" }))
        }
        if (request.order !== undefined && backward !== cursor.backward) return yield* Effect.fail(invalid("order", "differs from the cursor's"))
        backward = cursor.backward
        start = cursor.offset
        inclusive = false
      } else if (request.offset !== undefined) {
        if (!Number.isSafeInteger(request.offset) || request.offset < 0) return yield* Effect.fail(invalid("offset", "must be a non-negative integer"))
        start = request.offset
      } else if (request.timestamp !== undefined) {
        if (!Number.isFinite(request.timestamp)) return yield* Effect.fail(invalid("timestamp", "must be a finite number"))
        const found = yield* seekTimestamp(context.view, head, request.timestamp, backward)
        if (found === undefined) return { items: [], cursor: null }
        start = found.offset
        known = found.record
      } else if (request.nonce !== undefined) {
        const nonce = Nonce.parse(request.nonce, "nonce")
        if (nonce instanceof InvalidArgument) return yield* Effect.fail(nonce)
        const found = yield* seekNonce(context.view, head, nonce, backward)
        if (found === undefined) return { items: [], cursor: null }
        start = found.offset
        known = found.record
      }
      const stored = yield* collect(context.view, head, start, inclusive, backward, limit, known)
      const last = stored[stored.length - 1]
      return {
        items: stored.map(toEntry),
        cursor: last === undefined ? null : Cursor.encode(context.type, context.id, { backward, generation: head.generation, offset: last.offset })
      }
    })
  }

  /** Up to `limit` live entries from `start` (inclusive or not) in a direction; `known`, when given, may be the record holding `start`. */
  function collect(view: StoreView, head: Head.Head, start: number | undefined, inclusive: boolean, backward: boolean, limit: number, known?: Record.FeedRecord) {
    return Effect.gen(function*() {
      const out: Array<Record.StoredEntry> = []
      if (!Head.exists(head)) return out
      // A page also ends at `pageBytesMax` of values (its first entry always fits).
      let bytes = 0
      const full = () => out.length >= limit || bytes >= limits.pageBytesMax
      const add = (entry: Record.StoredEntry) => {
        out.push(entry)
        bytes += entry.value.length
      }
      const accepts = (offset: number) =>
        start === undefined || (backward ? (inclusive ? offset <= start : offset < start) : (inclusive ? offset >= start : offset > start))
      // From the start's position in the record on: entries before it are not even decoded.
      const take = (record: Record.FeedRecord) => {
        const count = Record.size(record)
        const at = start === undefined ? undefined : start - record.firstOffset
        if (backward) {
          for (let i = at === undefined ? count - 1 : Math.min(count - 1, at); i >= 0 && !full(); i--) {
            const entry = Record.entryAt(record, i)
            if (!entry.removed && accepts(entry.offset)) add(entry)
          }
        } else {
          for (let i = at === undefined ? 0 : Math.max(0, at); i < count && !full(); i++) {
            const entry = Record.entryAt(record, i)
            if (!entry.removed && accepts(entry.offset)) add(entry)
          }
        }
      }
      let from: number | undefined
      if (start !== undefined && known !== undefined && Record.holds(known, start)) {
        take(known)
        from = known.firstOffset
      } else if (start !== undefined && !backward) {
        // Forward, one scan usually finds the start's record and the ones after it: as many as
        // full records would need, whatever the start's place in its record.
        const span = limits.recordEntriesMax
        const around = yield* Navigate.recordsAround(view, head.generation, start, span, Math.ceil((limit - 1) / span))
        if (around !== undefined) {
          if (around.at !== undefined) take(around.at)
          for (const record of around.next) take(record)
          const last = around.next[around.next.length - 1] ?? around.at
          if (around.end || full()) return out
          from = last?.firstOffset
        } else {
          const first = yield* Navigate.recordAtOrBefore(view, head.generation, start)
          if (first !== undefined) {
            take(first)
            from = first.firstOffset
          }
        }
      } else if (start !== undefined) {
        const first = yield* Navigate.recordAtOrBefore(view, head.generation, start)
        if (first === undefined) return out
        take(first)
        from = first.firstOffset
      }
      // Read records in growing steps: few reads for dense records, bounded waste for sparse ones.
      let step = 2
      while (!full()) {
        const records = yield* Navigate.recordsFrom(view, head.generation, from, backward, step)
        for (const record of records) take(record)
        if (records.length < step) break
        from = records[records.length - 1]!.firstOffset
        step = Math.min(step * 2, 256)
      }
      return out
    })
  }

  function seekTimestamp(view: StoreView, head: Head.Head, timestamp: number, backward: boolean) {
    if (!Head.exists(head)) return Effect.succeed(undefined)
    const low = 1
    const high = head.nextOffset - 1
    // Timestamps grow with offsets, mostly evenly: the search interpolates between the feed's bounds.
    const guide = (target: number): Navigate.Guide => ({
      key: (entry) => entry.timestamp,
      target,
      lowKey: head.minTimestamp ?? head.lastTimestamp,
      highKey: head.lastTimestamp
    })
    const span = limits.recordEntriesMax
    if (!backward) return Navigate.firstSatisfying(view, head.generation, low, high, (entry) => entry.timestamp >= timestamp, guide(timestamp), span)
    // Backward: the last entry at or before the timestamp, just before the first one after it.
    return Effect.map(
      Navigate.firstSatisfying(view, head.generation, low, high, (entry) => entry.timestamp > timestamp, guide(timestamp), span),
      (after): { readonly offset: number; readonly record?: Record.FeedRecord } | undefined =>
        after === undefined ? { offset: high } : after.offset - 1 >= low ? { offset: after.offset - 1, record: after.record } : undefined
    )
  }

  function seekNonce(view: StoreView, head: Head.Head, nonce: bigint, backward: boolean) {
    return Effect.gen(function*() {
      if (!Head.exists(head)) return undefined
      const high = head.nextOffset - 1
      // The last nonce up to an entry never decreases along offsets, whether or not the entry carries one.
      const reaches = (target: bigint) => (entry: Record.StoredEntry, record: Record.FeedRecord) => {
        let last = record.nonceBefore
        for (const candidate of record.entries) {
          if (candidate.nonce !== undefined) last = candidate.nonce
          if (candidate.offset === entry.offset) break
        }
        return last !== undefined && last >= target
      }
      if (!backward) {
        const at = yield* Navigate.firstSatisfying(view, head.generation, 1, high, reaches(nonce))
        if (at === undefined) return undefined
        return yield* nextWithNonce(view, head, at.offset, false, (value) => value >= nonce, at.record)
      }
      const above = yield* Navigate.firstSatisfying(view, head.generation, 1, high, reaches(nonce + 1n))
      const from = above === undefined ? high : above.offset - 1
      if (from < 1) return undefined
      return yield* nextWithNonce(view, head, from, true, (value) => value <= nonce, above?.record)
    })
  }

  /**
   * From `offset` (inclusive) in a direction, the first live entry whose nonce passes `test`, with
   * the record holding it; `known`, when given, may be the record holding `offset` (not read again).
   */
  function nextWithNonce(view: StoreView, head: Head.Head, offset: number, backward: boolean, test: (nonce: bigint) => boolean, known?: Record.FeedRecord) {
    return Effect.gen(function*() {
      const first = known !== undefined && Record.holds(known, offset) ? known : yield* Navigate.recordAtOrBefore(view, head.generation, offset)
      const pick = (record: Record.FeedRecord) => {
        const entries = backward ? [...record.entries].reverse() : record.entries
        return entries.find((entry) =>
          (backward ? entry.offset <= offset : entry.offset >= offset) && !entry.removed && entry.nonce !== undefined && test(entry.nonce))
      }
      if (first !== undefined) {
        const found = pick(first)
        if (found !== undefined) return { offset: found.offset, record: first }
      }
      let from = first?.firstOffset
      // Bounded steps of records; the search ends at the end of the feed.
      for (;;) {
        const records = yield* Navigate.recordsFrom(view, head.generation, from, backward, 16)
        for (const record of records) {
          const found = pick(record)
          if (found !== undefined) return { offset: found.offset, record }
        }
        if (records.length < 16) return undefined
        from = records[records.length - 1]!.firstOffset
      }
    })
  }

  // ------------------------------------------------------------------ retention

  function scheduleTrimIfDue(context: Entity.DirectContext<FeedState>) {
    if (!retains) return Effect.void
    const state = context.state
    const now = clock()
    // One trim outstanding at a time; a request older than a second is assumed lost (a full mailbox).
    if (state.trimRequestedAt !== undefined && now - state.trimRequestedAt < 1_000) return Effect.void
    if (!dueForTrim(state.head)) return Effect.void
    state.trimRequestedAt = now
    return selfSend(context, "Trim", undefined)
  }

  function dueForTrim(head: Head.Head): boolean {
    if (retention.maxEntries !== undefined && head.count > retention.maxEntries) return true
    return retention.maxAgeMillis !== undefined && head.minTimestamp !== null && head.minTimestamp < clock() - retention.maxAgeMillis
  }

  /** Removes the oldest entries past the retention, a bounded number of records per message. */
  function trim(context: Entity.DirectContext<FeedState>) {
    return Effect.gen(function*() {
      const state = context.state
      state.trimRequestedAt = undefined
      let head = state.head
      const cutoff = retention.maxAgeMillis === undefined ? undefined : clock() - retention.maxAgeMillis
      const expired = (entry: Record.StoredEntry, count: number) =>
        (retention.maxEntries !== undefined && count > retention.maxEntries) || (cutoff !== undefined && entry.timestamp < cutoff)
      const records = yield* Navigate.recordsFrom(context.view, head.generation, undefined, false, TRIM_RECORDS_MAX)
      let count = head.count
      let bytes = head.bytes
      for (const record of records) {
        const live = record.entries.filter((entry) => !entry.removed)
        const isTail = state.tail?.firstOffset === record.firstOffset
        if (live.length === 0) {
          // Only tombstones (a tail trimmed earlier, or removals): nothing to count, nothing to keep.
          if (!isTail) yield* context.view.delete(Navigate.RECORDS, Record.recordKey(record.generation, record.firstOffset))
          continue
        }
        const gone = live.filter((entry, i) => expired(entry, count - i))
        if (gone.length === 0) break
        count -= gone.length
        bytes -= gone.reduce((sum, entry) => sum + entry.value.length, 0)
        if (gone.length === live.length && !isTail) {
          yield* context.view.delete(Navigate.RECORDS, Record.recordKey(record.generation, record.firstOffset))
        } else {
          const removed = new Set(gone.map((entry) => entry.offset))
          const updated = { ...record, entries: record.entries.map((entry) => (removed.has(entry.offset) ? { ...entry, value: new Uint8Array(0), removed: true } : entry)) }
          yield* putRecord(context.view, updated)
          if (isTail) state.tail = updated
          if (gone.length < live.length) break
        }
      }
      if (count === head.count) return
      head = { ...head, count, bytes }
      if (count === 0) {
        head.firstOffset = head.lastOffset = head.minTimestamp = head.maxTimestamp = null
      } else {
        const first = yield* collect(context.view, head, undefined, true, false, 1)
        head.firstOffset = first[0]?.offset ?? null
        head.minTimestamp = first[0]?.timestamp ?? null
      }
      yield* putHead(context.view, head)
      state.head = head
      yield* scheduleTrimIfDue(context)
    })
  }

  // ------------------------------------------------------------------ compaction

  /**
   * One step of compaction: from where the last step stopped, reads up to `compactRecordsMax`
   * records before the tail and merges each run of contiguous records whose entries and bytes fit
   * one record into the first of the run. Offsets are positions in a record, so only records with
   * no gap between them merge; tombstones are kept (offsets never shift). The tail is left alone:
   * it is the record appends extend. Each step moves the mark to its last run, the only record
   * of the step that may still grow; records before the mark are not read again, so room that
   * later removals free in them (tombstones keep no value bytes) is not reclaimed by merging.
   */
  function compact(context: Entity.DirectContext<FeedState>) {
    return Effect.gen(function*() {
      const { head, tail } = context.state
      const none = { merged: 0, more: false }
      if (!Head.exists(head) || tail === undefined) return none
      const generation = head.generation
      const stored = yield* context.view.get(COMPACTED, "")
      const mark = stored === undefined ? undefined : Record.parseKey(stored)
      const from = mark !== undefined && mark.generation === generation ? mark.firstOffset : 0
      if (from >= tail.firstOffset) return none
      const entries = yield* context.view.scan(Navigate.RECORDS, {
        gte: Record.recordKey(generation, from),
        lt: Record.recordKey(generation, tail.firstOffset),
        limit: compactRecordsMax
      })
      const records = entries.map((entry) => Record.decode(entry.key, entry.value))
      const valueBytes = (record: Record.FeedRecord) => record.entries.reduce((sum, entry) => sum + entry.value.length, 0)
      let merged = 0
      // The run's first record, and its entries once others joined it (copied once, then appended to).
      let run: Record.FeedRecord | undefined
      let runEntries: Array<Record.StoredEntry> | undefined
      let runBytes = 0
      const runSize = () => runEntries?.length ?? Record.size(run!)
      const close = () =>
        runEntries === undefined
          ? Effect.void
          : putRecord(context.view, { generation, firstOffset: run!.firstOffset, nonceBefore: run!.nonceBefore, entries: runEntries })
      for (const record of records) {
        const bytes = valueBytes(record)
        const joins = run !== undefined &&
          run.firstOffset + runSize() === record.firstOffset &&
          runSize() + Record.size(record) <= limits.recordEntriesMax &&
          runBytes + bytes <= limits.recordBytesMax
        if (joins) {
          runEntries ??= [...run!.entries]
          for (const entry of record.entries) runEntries.push(entry)
          runBytes += bytes
          merged++
          yield* context.view.delete(Navigate.RECORDS, Record.recordKey(generation, record.firstOffset))
        } else {
          yield* close()
          run = record
          runEntries = undefined
          runBytes = bytes
        }
      }
      yield* close()
      const more = records.length === compactRecordsMax
      // A feed with nothing new to merge costs reads only: the mark is written when it moves.
      if (run !== undefined && run.firstOffset !== from) yield* context.view.put(COMPACTED, "", Record.recordKey(generation, run.firstOffset))
      // The rest runs as later messages, after whatever the feed was sent meanwhile.
      if (more) yield* selfSend(context, "Compact", undefined)
      return { merged, more }
    })
  }

  /** Sends a message to this same feed (trim and purge steps run after the current message). */
  function selfSend(context: Entity.DirectContext<FeedState>, tag: "Trim" | "Compact" | "Purge", payload: unknown) {
    return Effect.flatMap(Messenger, (messenger) =>
      Effect.sync(() => messenger.deliver({ type: context.type, id: context.id, tag, payload, reply: undefined, deadline: Number.POSITIVE_INFINITY })))
  }
}
