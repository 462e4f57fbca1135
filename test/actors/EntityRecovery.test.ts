/**
 * Goal: an entity rebuilds the same state from the store wherever and whenever it is activated
 * (invariant 5), in both persistence styles, and nact's own persistent actors run on our stores.
 * Method: counters and wallets on LevelDB in a temp directory; close the runtime and the store,
 * reopen the directory in a fresh runtime and compare. Event-sourced recovery is checked with and
 * without snapshots by reading what the store holds.
 */
import { Effect, Layer, Metric } from "effect"
import { configurePersistence, dispatch, query, spawnPersistent, start, stop } from "nact"
import { strict as assert } from "node:assert"
import { describe, it } from "vitest"
import * as Entity from "../../actors/Entity.js"
import * as EntityClient from "../../actors/EntityClient.js"
import * as EntityRuntime from "../../actors/EntityRuntime.js"
import * as NactPersistenceEngine from "../../actors/NactPersistenceEngine.js"
import { Counter, CounterBehavior, Increment } from "../../examples/entities/Counter.js"
import { Balance, Deposit, Wallet, WalletBehavior, walletDefinition, Withdraw } from "../../examples/entities/Wallet.js"
import { IndexedStore } from "../../persistence/IndexedStore.js"
import { KeyValueStore } from "../../persistence/KeyValueStore.js"
import * as LevelStore from "../../persistence/LevelStore.js"
import * as MemoryStore from "../../persistence/MemoryStore.js"
import { tempDir } from "../support/tempDir.js"

/** The wallet without snapshots: recovery must replay the whole log. */
const PlainWallet = Entity.make("plain-wallet", [Deposit, Withdraw, Balance])
const UnsnapshottedWallet = Entity.eventSourced(PlainWallet, { ...walletDefinition, snapshotEvery: 1_000_000 })

const node = (directory: string) =>
  Layer.mergeAll(
    EntityRuntime.register(CounterBehavior),
    EntityRuntime.register(WalletBehavior),
    EntityRuntime.register(UnsnapshottedWallet)
  ).pipe(Layer.provideMerge(EntityRuntime.layerLocal), Layer.provideMerge(LevelStore.layer({ directory })))

const run = <A, E>(layer: Layer.Layer<any, any>, effect: Effect.Effect<A, E, any>): Promise<A> =>
  Effect.runPromise(Effect.scoped(Effect.provide(effect, layer)) as Effect.Effect<A, E>)

describe("entity recovery", () => {
  it("gives the same direct-style state after the process's store is closed and reopened", async () => {
    const directory = tempDir("recovery-direct")
    const expected = await run(node(directory), Effect.gen(function*() {
      const counter = yield* EntityClient.make(Counter)
      const totals = new Map<string, number>()
      yield* Effect.forEach(Array.from({ length: 3_000 }, (_, i) => i), (i) => {
        const id = `c${i % 100}`
        totals.set(id, (totals.get(id) ?? 0) + (i % 7))
        return counter.ask(id, "Increment", { by: i % 7 })
      }, { concurrency: 200, discard: true })
      return totals
    }))
    const recovered = await run(node(directory), Effect.gen(function*() {
      const counter = yield* EntityClient.make(Counter)
      return new Map(yield* Effect.forEach([...expected.keys()], (id) => Effect.map(counter.ask(id, "Get"), (value) => [id, value] as const)))
    }))
    assert.deepEqual(recovered, expected)
  })

  it("rebuilds an event-sourced entity from snapshot plus tail, and from the whole log without snapshots", async () => {
    const directory = tempDir("recovery-events")
    await run(node(directory), Effect.gen(function*() {
      const wallet = yield* EntityClient.make(Wallet)
      const plain = yield* EntityClient.make(PlainWallet)
      for (let i = 1; i <= 120; i++) {
        yield* wallet.ask("w", "Deposit", { amount: i })
        yield* plain.ask("w", "Deposit", { amount: i })
      }
      yield* wallet.ask("w", "Withdraw", { amount: 20 })
      yield* plain.ask("w", "Withdraw", { amount: 20 })
      const refused = yield* Effect.flip(wallet.ask("w", "Withdraw", { amount: 1_000_000 }))
      assert.equal(refused._tag, "InsufficientFunds")
    }))
    const expected = { balance: (120 * 121) / 2 - 20, events: 121 }
    await run(node(directory), Effect.gen(function*() {
      const wallet = yield* EntityClient.make(Wallet)
      const plain = yield* EntityClient.make(PlainWallet)
      const runtime = yield* EntityRuntime.EntityRuntime
      const store = yield* KeyValueStore
      const indexed = yield* IndexedStore
      assert.deepEqual(yield* wallet.ask("w", "Balance"), expected)
      assert.deepEqual(yield* plain.ask("w", "Balance"), expected)
      const walletShard = String(runtime.shardOf("wallet", "w"))
      const snapshot = yield* store.get(walletShard, "wallet.snapshot", Buffer.from("w\u0000"))
      assert.ok(snapshot !== undefined, "the wallet wrote snapshots")
      assert.equal(JSON.parse(Buffer.from(snapshot).toString()).index, 100, "the latest snapshot is at event 100")
      assert.equal(yield* indexed.position(walletShard, "wallet/w"), 121, "the refused withdrawal wrote no event")
      const plainShard = String(runtime.shardOf("plain-wallet", "w"))
      assert.equal(yield* store.get(plainShard, "plain-wallet.snapshot", Buffer.from("w\u0000")), undefined)
    }))
    // Proof that recovery starts from the snapshot: one doctored (a million more in it) shows in
    // the recovered balance, with the 21 events after it replayed on top.
    await run(node(directory), Effect.gen(function*() {
      const runtime = yield* EntityRuntime.EntityRuntime
      const store = yield* KeyValueStore
      const walletShard = String(runtime.shardOf("wallet", "w"))
      const key = Buffer.from("w\u0000")
      const stored = JSON.parse(Buffer.from((yield* store.get(walletShard, "wallet.snapshot", key))!).toString()) as { index: number; state: string }
      const state = JSON.parse(stored.state) as { balance: number }
      const doctored = { ...stored, state: JSON.stringify({ ...state, balance: state.balance + 1_000_000 }) }
      yield* store.put(walletShard, "wallet.snapshot", key, JSON.stringify(doctored))
      const wallet = yield* EntityClient.make(Wallet)
      assert.deepEqual(yield* wallet.ask("w", "Balance"), { ...expected, balance: expected.balance + 1_000_000 })
    }))
  })

  it("commits the writes of many entities in shared rounds (group commit)", async () => {
    const layer = EntityRuntime.register(CounterBehavior).pipe(Layer.provideMerge(EntityRuntime.layerLocal), Layer.provideMerge(MemoryStore.layer))
    await run(layer, Effect.gen(function*() {
      const counter = yield* EntityClient.make(Counter)
      const rounds = () =>
        Effect.map(Metric.snapshot, (snapshots) =>
          snapshots
            .filter((snapshot) => snapshot.id === "shardfeed_commit_batch_writes")
            .reduce((sum, snapshot) => sum + Number((snapshot.state as { count: number }).count), 0))
      // Entities per round, summed over rounds: each of the 2,000 entities took part in one.
      const entities = () =>
        Effect.map(Metric.snapshot, (snapshots) =>
          snapshots
            .filter((snapshot) => snapshot.id === "shardfeed_commit_batch_entities")
            .reduce((sum, snapshot) => sum + Number((snapshot.state as { sum: number }).sum), 0))
      const before = yield* rounds()
      const entitiesBefore = yield* entities()
      yield* Effect.forEach(Array.from({ length: 2_000 }, (_, i) => i), (i) => counter.ask(`g${i}`, "Increment", { by: 1 }), { concurrency: 1_000, discard: true })
      // The last round's figures are recorded once its replies are out: let it finish.
      yield* Effect.yieldNow
      const used = (yield* rounds()) - before
      assert.ok(used < 200, `2,000 increments of 2,000 entities took ${used} commit rounds`)
      assert.equal((yield* entities()) - entitiesBefore, 2_000, "entities per round add up to the entities written")
    }))
  })

  it("lets a handler send to other entities", async () => {
    const Relay = Entity.make("relay", [Increment])
    const RelayBehavior = Entity.direct(Relay, {
      recover: () => Effect.succeed(undefined),
      handlers: {
        Increment: ({ by }) =>
          Effect.gen(function*() {
            const counter = yield* EntityClient.make(Counter)
            return yield* counter.ask("target", "Increment", { by: by * 10 })
          })
      }
    })
    const layer = Layer.mergeAll(EntityRuntime.register(CounterBehavior), EntityRuntime.register(RelayBehavior)).pipe(
      Layer.provideMerge(EntityRuntime.layerLocal),
      Layer.provideMerge(MemoryStore.layer)
    )
    await run(layer, Effect.gen(function*() {
      const relay = yield* EntityClient.make(Relay)
      assert.equal(yield* relay.ask("r", "Increment", { by: 2 }), 20)
      const counter = yield* EntityClient.make(Counter)
      assert.equal(yield* counter.ask("target", "Get"), 20)
    }))
  })
})

describe("nact persistence engine", () => {
  it("runs a plain nact spawnPersistent actor on our LevelDB store and recovers it", async () => {
    const directory = tempDir("nact-engine")
    const total = (values: ReadonlyArray<number>) =>
      run(LevelStore.layer({ directory }), Effect.gen(function*() {
        const engine = NactPersistenceEngine.make(yield* KeyValueStore, yield* IndexedStore)
        const system = start(configurePersistence(engine))
        const actor = spawnPersistent(system, async (state: number, message: { add?: number; sender?: unknown }, context: any) => {
          if (message.add !== undefined) {
            if (!context.recovering) await context.persist(message)
            return (state ?? 0) + message.add
          }
          dispatch(message.sender as never, state ?? 0)
          return state
        }, "sum", "sum", { snapshotEvery: 3 })
        for (const add of values) dispatch(actor, { add })
        const result = yield* Effect.promise(() => query(actor, (sender: unknown) => ({ sender }), 5_000))
        stop(system)
        // The stream nact reads is also a promise of every event, as nact's type says.
        const events = yield* Effect.promise(async () => await engine.events("sum"))
        assert.deepEqual(events.map((event) => (event.data as { add: number }).add).slice(-values.length), values)
        return result as number
      }))
    assert.equal(await total([1, 2, 3, 4]), 10)
    assert.equal(await total([5]), 15, "the events of the first run were recovered")
  })
})
