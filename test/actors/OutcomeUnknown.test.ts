/**
 * Goal: a message that may have taken effect, but whose answer was lost, is answered
 * `OutcomeUnknown` and never handled a second time: not by the runtime, not by a worker's router
 * (which sends again only messages that were not handled), so a deposit cannot land twice. Two
 * places lose answers: the store (the commit ran in Redis, its reply was lost) and the worker
 * transport (the owner handled the message, the connection dropped before its reply).
 * Method: event-sourced wallets on a Redis of the test's own; a TCP proxy in front of the store's
 * Redis, or in front of the owning worker's transport (which advertises the proxy), swallows the
 * replies and then cuts the connections. The balance afterwards says how many times the deposit
 * was applied.
 */
import { Effect, Exit, Layer, ManagedRuntime } from "effect"
import { strict as assert } from "node:assert"
import { describe, it } from "vitest"
import * as EntityClient from "../../actors/EntityClient.js"
import * as EntityRuntime from "../../actors/EntityRuntime.js"
import { Wallet, WalletBehavior } from "../../examples/entities/Wallet.js"
import * as RedisStore from "../../persistence/RedisStore.js"
import * as Worker from "../../sharding/Worker.js"
import { errorTag } from "../support/errorTag.js"
import { freePort, type RedisProcess, startRedis } from "../support/RedisServer.js"
import { type TcpProxy, tcpProxy } from "../support/tcpProxy.js"
import { ownsEveryShard as holdsEveryShard } from "../sharding/inProcess.js"

const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis))

/** A node whose store reaches Redis at `storeUrl` (through the proxy); a worker coordinates directly. */
/**
 * Waits until the worker holds every shard: acquiring one registers its epoch with the store,
 * and a registration in flight when the proxy starts swallowing would hold the deposit's commit
 * behind it (one auto-pipeline per connection at a time), unsent. Bounded: 20 s.
 */
const ownsEveryShard = async (worker: ManagedRuntime.ManagedRuntime<any, any>) => {
  await holdsEveryShard(worker)
  // The last acquisitions' registrations end with their round.
  await sleep(200)
}

/** What a setup gives the scenario: a runtime that asks wallets, and the proxy that loses answers. */
interface Setup {
  readonly asker: ManagedRuntime.ManagedRuntime<any, any>
  readonly proxy: TcpProxy
  readonly close: () => Promise<void>
}

/** The runtime alone, its store reaching Redis through the proxy. */
const local = async (redis: RedisProcess): Promise<Setup> => {
  const proxy = await tcpProxy({ host: "127.0.0.1", port: redis.ports[0]! })
  const asker = ManagedRuntime.make(
    EntityRuntime.register(WalletBehavior).pipe(
      Layer.provideMerge(EntityRuntime.layerLocal),
      Layer.provideMerge(RedisStore.layer({ url: `redis://127.0.0.1:${proxy.port}`, keyPrefix: "lost-reply" }))
    )
  )
  return { asker, proxy, close: () => asker.dispose() }
}

/** A worker whose store reaches Redis through the proxy, on a connection of its own (coordination goes direct). */
const worker = async (redis: RedisProcess): Promise<Setup> => {
  const proxy = await tcpProxy({ host: "127.0.0.1", port: redis.ports[0]! })
  const asker = ManagedRuntime.make(Worker.layer(
    {
      redisUrl: redis.url,
      store: { _tag: "Redis", url: `redis://127.0.0.1:${proxy.port}` },
      transport: { host: "127.0.0.1", port: 0 },
      sharding: { clusterName: "lost-reply" }
    },
    EntityRuntime.register(WalletBehavior)
  ))
  await ownsEveryShard(asker)
  return { asker, proxy, close: () => asker.dispose() }
}

/** A worker owning the wallets, reached by a client-only worker through the proxy it advertises. */
const transport = async (redis: RedisProcess): Promise<Setup> => {
  const port = await freePort()
  const proxy = await tcpProxy({ host: "127.0.0.1", port })
  const owner = ManagedRuntime.make(Worker.layer(
    {
      redisUrl: redis.url,
      store: { _tag: "Redis" },
      transport: { host: "127.0.0.1", port, advertise: `127.0.0.1:${proxy.port}` },
      sharding: { clusterName: "lost-transport", workerId: "owner" }
    },
    EntityRuntime.register(WalletBehavior)
  ))
  await ownsEveryShard(owner)
  const asker = ManagedRuntime.make(Worker.layer({
    redisUrl: redis.url,
    store: { _tag: "Memory" },
    transport: { host: "127.0.0.1", port: 0 },
    sharding: { clusterName: "lost-transport", workerId: "client" },
    clientOnly: true
  }))
  return {
    asker,
    proxy,
    close: async () => {
      await asker.dispose()
      await owner.dispose()
    }
  }
}

const scenario = (setup: (redis: RedisProcess) => Promise<Setup>) => async () => {
  const redis = await startRedis()
  const { asker, proxy, close } = await setup(redis)
  try {
    const wallets = await asker.runPromise(EntityClient.make(Wallet))
    const deposit = (amount: number) => Effect.runPromiseExit(wallets.ask("w", "Deposit", { amount }, { timeoutMillis: 20_000 }))
    assert.equal(errorTag(await deposit(1)), "success", "a first deposit")
    proxy.swallowReplies(true)
    const before = proxy.swallowed()
    const lost = deposit(2)
    // The deposit goes through the proxy (nothing else does now) and is handled on the other
    // side, which answers once it is durable; the answer is dropped. Then the connections drop.
    // Bounded: 10 s.
    for (const deadline = Date.now() + 10_000; proxy.swallowed() === before && Date.now() < deadline;) await sleep(5)
    assert.ok(proxy.swallowed() > before, "the deposit was answered, and the answer dropped")
    assert.ok(proxy.cutAll() > 0, "connections were cut")
    proxy.swallowReplies(false)
    assert.equal(errorTag(await lost), "OutcomeUnknown", "the deposit whose answer was lost is answered OutcomeUnknown")
    // Bounded: 10 s for the connections to be made again and the wallet to answer.
    let balance: Exit.Exit<{ readonly balance: number }, unknown> | undefined
    for (const deadline = Date.now() + 10_000; Date.now() < deadline;) {
      balance = await Effect.runPromiseExit(wallets.ask("w", "Balance"))
      if (Exit.isSuccess(balance)) break
      await sleep(100)
    }
    assert.ok(balance !== undefined && Exit.isSuccess(balance), "the wallet answers again")
    assert.equal(balance.value.balance, 3, "the deposit whose answer was lost was applied once (1 + 2), not again")
  } finally {
    await close()
    await proxy.close()
    await redis.stop()
  }
}

describe("a message whose answer was lost", () => {
  it("from the store is answered OutcomeUnknown by the runtime, and applied once", scenario(local), 60_000)

  it("from the store is answered OutcomeUnknown through a worker's router, which does not send it again", scenario(worker), 60_000)

  it("from the owning worker is answered OutcomeUnknown by the sender's router, which does not send it again", scenario(transport), 60_000)
})
