/**
 * Entity types built to probe the runtime: one that records how its messages interleave, one that
 * blocks until the test releases it, one that crashes on command. Their knobs live in a `Probes`
 * object created per test, so tests never share state.
 */
import { Deferred, Effect, Layer, Schema } from "effect"
import { Rpc } from "effect/rpc"
import * as Entity from "../../actors/Entity.js"
import * as EntityRuntime from "../../actors/EntityRuntime.js"
import { RuntimeConfig, defaults, type RuntimeConfigShape } from "../../actors/RuntimeConfig.js"
import * as MemoryStore from "../../persistence/MemoryStore.js"
import type { IndexedStore } from "../../persistence/IndexedStore.js"
import type { KeyValueStore } from "../../persistence/KeyValueStore.js"
import type { StoreBackend } from "../../persistence/StoreBackend.js"

/** Records `seq` from `sender`; answers whether another handler of this entity was running. */
export const Record = Rpc.make("Record", {
  payload: { sender: Schema.Number, seq: Schema.Number },
  success: Schema.Struct({ overlapped: Schema.Boolean, outOfOrder: Schema.Boolean, count: Schema.Number })
})
/** Waits until the test completes the gate named `gate`. */
export const Block = Rpc.make("Block", { payload: { gate: Schema.String }, success: Schema.Number })
/** Writes `value` under `key`, then dies if the crash budget of this entity is not spent. */
export const CrashingWrite = Rpc.make("CrashingWrite", { payload: { key: Schema.String, value: Schema.String }, success: Schema.String })
/** Always dies. */
export const Poison = Rpc.make("Poison")
/** Answers the value under `key`. */
export const Read = Rpc.make("Read", { payload: { key: Schema.String }, success: Schema.NullOr(Schema.String) })
/** Writes `value` under `key` and answers `value`. */
export const Write = Rpc.make("Write", { payload: { key: Schema.String, value: Schema.String }, success: Schema.String })

/** A declared failure of `RefusingWrite`. */
export class Refused extends Schema.TaggedError<Refused>()("Refused", { key: Schema.String }) {}
/** Notes `value` under `key` in memory and writes it, then fails with the declared `Refused`. */
export const RefusingWrite = Rpc.make("RefusingWrite", { payload: { key: Schema.String, value: Schema.String }, success: Schema.String, error: Refused })
/** Answers the value noted under `key` in memory (the entity's state, not the store). */
export const Noted = Rpc.make("Noted", { payload: { key: Schema.String }, success: Schema.NullOr(Schema.String) })

/** The probe entity type. */
export const Probe = Entity.make("probe", [Record, Block, CrashingWrite, Poison, Read, Write, RefusingWrite, Noted])

interface ProbeState {
  count: number
  readonly lastSeq: Map<number, number>
  readonly scratch: Map<string, string>
}

/** Test-controlled knobs of the probe behaviour. */
export class Probes {
  running = 0
  readonly gates = new Map<string, Deferred.Deferred<number>>()
  /** Crashes left per entity id for `CrashingWrite`. */
  readonly crashes = new Map<string, number>()
  handled = 0
  /** `Record` messages handled after a later one of the same sender (sends included, which nobody answers). */
  reorders = 0

  gate(name: string): Deferred.Deferred<number> {
    let gate = this.gates.get(name)
    if (gate === undefined) {
      gate = Deferred.makeUnsafe<number>()
      this.gates.set(name, gate)
    }
    return gate
  }

  /** The probe behaviour wired to these knobs. */
  behavior(options: Entity.TypeOptions = {}) {
    const probes = this
    const text = (bytes: Uint8Array | undefined) => (bytes === undefined ? null : Buffer.from(bytes).toString())
    return Entity.direct(Probe, {
      recover: () => Effect.succeed<ProbeState>({ count: 0, lastSeq: new Map(), scratch: new Map() }),
      options,
      handlers: {
        Record: ({ sender, seq }, context) =>
          Effect.gen(function*() {
            probes.running++
            const overlapped = probes.running > 1
            // Give other fibers a chance to interleave if the runtime allowed it.
            yield* Effect.yieldNow
            const last = context.state.lastSeq.get(sender) ?? -1
            if (seq <= last) probes.reorders++
            context.state.lastSeq.set(sender, seq)
            context.state.count++
            probes.running--
            probes.handled++
            return { overlapped, outOfOrder: seq <= last, count: context.state.count }
          }),
        Block: ({ gate }) => Deferred.await(probes.gate(gate)),
        CrashingWrite: ({ key, value }, context) =>
          Effect.gen(function*() {
            context.state.scratch.set(key, value)
            yield* context.view.put("data", key, value)
            const left = probes.crashes.get(context.id) ?? 0
            if (left > 0) {
              probes.crashes.set(context.id, left - 1)
              return yield* Effect.die(new Error(`planned crash of ${context.id}`))
            }
            return value
          }),
        RefusingWrite: ({ key, value }, context) =>
          Effect.gen(function*() {
            context.state.scratch.set(key, value)
            yield* context.view.put("data", key, value)
            return yield* Effect.fail(new Refused({ key }))
          }),
        Noted: ({ key }, context) => Effect.succeed(context.state.scratch.get(key) ?? null),
        Poison: () => Effect.die(new Error("poison")),
        Read: ({ key }, context) => Effect.map(context.view.get("data", key), text),
        Write: ({ key, value }, context) => Effect.as(context.view.put("data", key, value), value)
      }
    })
  }
}

/** A runtime owning every shard over `stores`, with config overrides and the probe behaviour. */
export const runtimeLayer = <E>(
  probes: Probes,
  overrides: Partial<RuntimeConfigShape> = {},
  stores: Layer.Layer<KeyValueStore | IndexedStore | StoreBackend, E> = MemoryStore.layer,
  typeOptions: Entity.TypeOptions = {}
) =>
  EntityRuntime.register(probes.behavior(typeOptions)).pipe(
    Layer.provideMerge(EntityRuntime.layerLocal),
    Layer.provideMerge(stores),
    Layer.provide(Layer.succeed(RuntimeConfig)({ ...defaults, shardCount: 64, ...overrides }))
  )
