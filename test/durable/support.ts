/**
 * Shared pieces of the durable-work tests: the `ledger` entity, which appends every `Note` it
 * accepts to a log kept in its store (so a handled message survives a crash of its worker) and
 * can be told to refuse notes; a node hosting it with durable messages; a random key prefix per
 * test file; and a bounded poll for conditions that become true eventually.
 */
import { Effect, Layer, Schema } from "effect"
import { Rpc } from "effect/rpc"
import * as Entity from "../../actors/Entity.js"
import * as EntityRuntime from "../../actors/EntityRuntime.js"
import { defaults, RuntimeConfig, type RuntimeConfigShape } from "../../actors/RuntimeConfig.js"
import type { IndexedStore } from "../../persistence/IndexedStore.js"
import type { KeyValueStore } from "../../persistence/KeyValueStore.js"
import type { StoreBackend } from "../../persistence/StoreBackend.js"
import type { DurableConfig } from "../../src/durable/DurableConfig.js"
import * as DurableMessages from "../../src/durable/DurableMessages.js"

/** The ledger's declared failure: it refused a note (the test said so). */
export class Refused extends Schema.TaggedError<Refused>()("Refused", { seq: Schema.Number }) {}

/** Appends `seq` to the ledger's log; answers the log's length. */
export const Note = Rpc.make("Note", { payload: { seq: Schema.Number }, success: Schema.Number, error: Refused })
/** Answers the log. */
export const Notes = Rpc.make("Notes", { success: Schema.Array(Schema.Number) })

/** The ledger entity type. */
export const Ledger = Entity.make("ledger", [Note, Notes])

/** Test-controlled refusals: `refuse(entity, seq, attempt)` (attempt counts from 1 per note). */
export class Knobs {
  readonly attempts = new Map<string, number>()
  refuse: (entity: string, seq: number, attempt: number) => boolean = () => false
  /** Every note handled (accepted or refused), in handling order: `entity:seq:accepted|refused`. */
  readonly handled: Array<string> = []
}

const decodeLog = (bytes: Uint8Array | undefined): Array<number> =>
  bytes === undefined ? [] : (JSON.parse(Buffer.from(bytes).toString("utf8")) as Array<number>)

/** The ledger's behaviour: the log lives under one key of the entity's store slice. */
export const ledgerBehavior = (knobs: Knobs = new Knobs()) =>
  Entity.direct(Ledger, {
    recover: ({ view }) => Effect.map(view.get("log", ""), decodeLog),
    handlers: {
      Note: ({ seq }, context) =>
        Effect.gen(function*() {
          const key = `${context.id}:${seq}`
          const attempt = (knobs.attempts.get(key) ?? 0) + 1
          knobs.attempts.set(key, attempt)
          if (knobs.refuse(context.id, seq, attempt)) {
            knobs.handled.push(`${context.id}:${seq}:refused`)
            return yield* Effect.fail(new Refused({ seq }))
          }
          const next = [...context.state, seq]
          yield* context.view.put("log", "", JSON.stringify(next))
          context.setState(next)
          knobs.handled.push(`${context.id}:${seq}:accepted`)
          return next.length
        }),
      Notes: (_, context) => Effect.succeed(context.state)
    }
  })

/** A random key prefix for one test file (BullMQ prefix syntax). */
export const testPrefix = (label: string) => `sft-${label}-${Math.random().toString(36).slice(2, 10)}`

/** A node hosting ledgers on `stores` with durable messages on `url` under `prefix`. */
export const durableNode = <E>(options: {
  readonly url: string
  readonly prefix: string
  readonly stores: Layer.Layer<KeyValueStore | IndexedStore | StoreBackend, E>
  readonly knobs?: Knobs
  readonly config?: Partial<DurableConfig>
  readonly runtime?: Partial<RuntimeConfigShape>
}) => {
  const runtime = EntityRuntime.register(ledgerBehavior(options.knobs)).pipe(
    Layer.provideMerge(EntityRuntime.layerLocal),
    Layer.provideMerge(options.stores),
    Layer.provideMerge(Layer.succeed(RuntimeConfig)({ ...defaults, shardCount: 16, ...options.runtime }))
  )
  return DurableMessages.layer({ url: options.url, config: { prefix: options.prefix, ...options.config } }).pipe(Layer.provideMerge(runtime))
}

/** Polls `check` every `everyMillis` until it answers true, at most `timeoutMillis` (then fails with `what`). */
export const eventually = <E, R>(what: string, check: Effect.Effect<boolean, E, R>, timeoutMillis = 30_000, everyMillis = 25) =>
  Effect.gen(function*() {
    const deadline = Date.now() + timeoutMillis
    for (;;) {
      if (yield* check) return
      if (Date.now() > deadline) return yield* Effect.die(new Error(`timed out waiting until ${what}`))
      yield* Effect.sleep(everyMillis)
    }
  })
