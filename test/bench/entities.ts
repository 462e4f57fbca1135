/**
 * `npm run bench -- entities [--seconds 3]`: the entity runtime against raw nact, raw
 * classic-level and effect/cluster, in one run.
 *
 * - ask round trips to one entity, one at a time, vs raw nact `query` round trips;
 * - asks spread over 10,000 entities with 1,000 in flight vs the same on raw nact actors;
 * - persisted increments (direct style, LevelDB, 10,000 entities, 1,000 in flight, each
 *   acknowledged after its commit) vs raw classic-level batched puts of the same records, and
 *   vs the floor of the prescribed design (`floor.ts`: raw nact actors and group commit alone);
 * - effect 4.1.0's effect/cluster (TestRunner, volatile messages) running an equivalent entity,
 *   to one entity and over 1,000, vs shardfeed's ask at the same concurrency.
 *
 * Two drivers keep N calls in flight: one with plain Promises (raw nact, the Promise facade),
 * one with N fibers of one Effect program, each looping over its calls (the Effect API, and
 * effect/cluster, whose clients are Effects too). An Effect program runs its asks in its own
 * fibers; the cost of entering the Effect runtime once per call (`Effect.runPromise` per ask)
 * is a driver's, not an ask's, and is shown on its own line, with no target.
 * `--rounds` (default 3) runs every contender and baseline in turn that many times; each figure
 * is the median of its rounds, each ratio the median of the rounds' ratios, and every round is
 * printed.
 */
import { ClassicLevel } from "classic-level"
import { Effect, Layer, ManagedRuntime, Schema } from "effect"
import { Entity as ClusterEntity, TestRunner } from "effect/cluster"
import { Rpc } from "effect/rpc"
import { dispatch, query, spawn, start, stop } from "nact"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as EntityClient from "../../actors/EntityClient.js"
import * as EntityRuntime from "../../actors/EntityRuntime.js"
import { Counter, CounterBehavior } from "../../examples/entities/Counter.js"
import * as LevelStore from "../../persistence/LevelStore.js"
import * as MemoryStore from "../../persistence/MemoryStore.js"
import { nactGroupCommitFloor } from "./floor.js"
import { drive, driveEffect, median, options, report, type Row } from "./report.js"

/** Warm up, then measure. */
const measure = async (inFlight: number, millis: number, call: (i: number) => Promise<unknown>) => {
  await drive(inFlight, Math.min(500, millis / 3), call)
  return drive(inFlight, millis, call)
}

/** Warm up, then measure, with Effects. */
const measureEffect = <R>(inFlight: number, millis: number, call: (i: number) => Effect.Effect<unknown, unknown, R>) =>
  Effect.andThen(driveEffect(inFlight, Math.min(500, millis / 3), call), driveEffect(inFlight, millis, call))

const tempDir = (label: string) => Fs.mkdtempSync(Path.join(Os.tmpdir(), `shardfeed-bench-${label}-`))

/** Raw nact: `count` counter actors answering queries. */
const nactFigures = async (millis: number) => {
  const system = start()
  const actors = Array.from({ length: 10_000 }, (_, i) =>
    spawn(system, (state: number, message: { sender: unknown }) => {
      dispatch(message.sender as never, state + 1)
      return state + 1
    }, `a${i}`, { initialState: 0 }))
  // nact draws a query's temporary reference id as a random 32-bit number, so among 1,000
  // queries in flight over millions, two now and then share one and the reply of the first is
  // lost: such a query times out (after a second, not to stall its driver) and is counted.
  let lost = 0
  const ask = (actor: (typeof actors)[number]) =>
    query(actor, (sender: unknown) => ({ sender }), 1_000).then(() => undefined, () => void lost++)
  const one = await measure(1, millis, () => ask(actors[0]!))
  const spread = await measure(1_000, millis, (i) => ask(actors[i % 10_000]!))
  stop(system)
  return { one, spread, lost }
}

const ourFigures = async (millis: number) => {
  const runtime = ManagedRuntime.make(
    EntityRuntime.register(CounterBehavior).pipe(Layer.provideMerge(EntityRuntime.layerLocal), Layer.provideMerge(MemoryStore.layer))
  )
  const client = await runtime.runPromise(EntityClient.make(Counter))
  try {
    const one = await measure(1, millis, () => client.promise.ask("one", "Get"))
    const spread = await measure(1_000, millis, (i) => client.promise.ask(`e${i % 10_000}`, "Get"))
    const oneEffect = await Effect.runPromise(measureEffect(1, millis, () => client.ask("one", "Get")))
    const spreadEffect = await Effect.runPromise(measureEffect(1_000, millis, (i) => client.ask(`e${i % 10_000}`, "Get")))
    const oneRunPromise = await measure(1, millis, () => Effect.runPromise(client.ask("one", "Get")))
    const peerOne = await Effect.runPromise(measureEffect(100, millis, () => client.ask("one", "Get")))
    const peerSpread = await Effect.runPromise(measureEffect(1_000, millis, (i) => client.ask(`p${i % 1_000}`, "Get")))
    return { one, spread, oneEffect, spreadEffect, oneRunPromise, peerOne, peerSpread }
  } finally {
    await runtime.dispose()
  }
}

const persistedFigures = async (millis: number) => {
  const directory = tempDir("entities-level")
  const runtime = ManagedRuntime.make(
    EntityRuntime.register(CounterBehavior).pipe(
      Layer.provideMerge(EntityRuntime.layerLocal),
      Layer.provideMerge(LevelStore.layer({ directory }))
    )
  )
  const client = await runtime.runPromise(EntityClient.make(Counter))
  try {
    return await measure(1_000, millis, (i) => client.promise.ask(`c${i % 10_000}`, "Increment", { by: 1 }))
  } finally {
    await runtime.dispose()
    Fs.rmSync(directory, { recursive: true, force: true })
  }
}

/** Raw classic-level: the same records (one key per counter) written in batches of 1,000. */
const rawLevelFigures = async (millis: number) => {
  const directory = tempDir("entities-raw")
  const db = new ClassicLevel<string, string>(directory)
  await db.open()
  const counts = new Array<number>(10_000).fill(0)
  let next = 0
  const batch = () => {
    const ops = []
    for (let i = 0; i < 1_000; i++) {
      const id = next++ % 10_000
      counts[id]! += 1
      ops.push({ type: "put" as const, key: `counter.value/c${id}`, value: String(counts[id]) })
    }
    return db.batch(ops).then(() => 1_000)
  }
  try {
    await batch()
    let done = 0
    const started = performance.now()
    while (performance.now() - started < millis) done += await batch()
    return (done * 1000) / (performance.now() - started)
  } finally {
    await db.close()
    Fs.rmSync(directory, { recursive: true, force: true })
  }
}

/** effect/cluster's in-process TestRunner with an equivalent entity (volatile messages). */
const clusterFigures = async (millis: number) => {
  const Get = Rpc.make("Get", { success: Schema.Number })
  const PeerCounter = ClusterEntity.make("PeerCounter", [Get])
  const handlers = PeerCounter.toLayer(Effect.succeed({ Get: () => Effect.succeed(1) }))
  const runtime = ManagedRuntime.make(handlers.pipe(Layer.provideMerge(TestRunner.layer)))
  const makeClient = await runtime.runPromise(PeerCounter.client)
  const clients = Array.from({ length: 1_000 }, (_, i) => makeClient(`p${i}`))
  try {
    const one = await runtime.runPromise(measureEffect(100, millis, () => clients[0]!.Get()))
    const spread = await runtime.runPromise(measureEffect(1_000, millis, (i) => clients[i % 1_000]!.Get()))
    return { one, spread }
  } finally {
    await runtime.dispose()
  }
}

export const main = async (args: ReadonlyArray<string>): Promise<void> => {
  const flags = options(args)
  const millis = Number(flags.seconds ?? 3) * 1000
  const rounds = Number(flags.rounds ?? 3)
  // Contenders and baselines alternate, round after round, and each figure is the median of its
  // rounds: this machine's speed drifts within a run, and a baseline measured once, minutes
  // away from its contender, can make any ratio.
  const runs: Array<{
    nact: Awaited<ReturnType<typeof nactFigures>>
    ours: Awaited<ReturnType<typeof ourFigures>>
    persisted: number
    rawLevel: number
    floor: number
    cluster: Awaited<ReturnType<typeof clusterFigures>>
  }> = []
  for (let round = 1; round <= rounds; round++) {
    const figures = {
      nact: await nactFigures(millis),
      ours: await ourFigures(millis),
      persisted: await persistedFigures(millis),
      rawLevel: await rawLevelFigures(millis),
      floor: await nactGroupCommitFloor({
        entities: 10_000,
        inFlight: 1_000,
        millis,
        record: (entity, count) => [`counter.value/c${entity}`, String(count)]
      }),
      cluster: await clusterFigures(millis)
    }
    runs.push(figures)
    const rounded = (value: number) => Math.round(value).toLocaleString("en-US")
    console.log(
      `round ${round}: nact ${rounded(figures.nact.one)} / ${rounded(figures.nact.spread)}; ours ${rounded(figures.ours.one)} / ${rounded(figures.ours.spread)} ` +
        `(Effect ${rounded(figures.ours.oneEffect)} / ${rounded(figures.ours.spreadEffect)}); persisted ${rounded(figures.persisted)} vs raw ${rounded(figures.rawLevel)} (floor ${rounded(figures.floor)}); ` +
        `effect/cluster ${rounded(figures.cluster.one)} / ${rounded(figures.cluster.spread)}`
    )
  }
  type Run = (typeof runs)[number]
  const of = (pick: (run: Run) => number) => median(runs.map(pick))
  // A ratio is the median of the rounds' own ratios: each round's contender and baseline ran
  // seconds apart, while the machine's speed drifts between rounds.
  const ratio = (contender: (run: Run) => number, baseline: (run: Run) => number) =>
    median(runs.map((run) => contender(run) / baseline(run)))
  const nact = { one: of((run) => run.nact.one), spread: of((run) => run.nact.spread) }
  const ours = {
    one: of((run) => run.ours.one),
    spread: of((run) => run.ours.spread),
    oneEffect: of((run) => run.ours.oneEffect),
    spreadEffect: of((run) => run.ours.spreadEffect),
    oneRunPromise: of((run) => run.ours.oneRunPromise),
    peerOne: of((run) => run.ours.peerOne),
    peerSpread: of((run) => run.ours.peerSpread)
  }
  const persisted = of((run) => run.persisted)
  const rawLevel = of((run) => run.rawLevel)
  const floor = of((run) => run.floor)
  const cluster = { one: of((run) => run.cluster.one), spread: of((run) => run.cluster.spread) }
  const rows: Array<Row> = [
    { name: "ask round trips, one entity (Promise)", value: ours.one, unit: "asks/s", baseline: "raw nact query", ratio: ratio((run) => run.ours.one, (run) => run.nact.one), target: ">= 0.7x" },
    { name: "ask round trips, one entity (Effect)", value: ours.oneEffect, unit: "asks/s", baseline: "raw nact query", ratio: ratio((run) => run.ours.oneEffect, (run) => run.nact.one), target: ">= 0.7x" },
    { name: "  the same, one Effect.runPromise per ask", value: ours.oneRunPromise, unit: "asks/s", baseline: "raw nact query", ratio: ratio((run) => run.ours.oneRunPromise, (run) => run.nact.one) },
    { name: "raw nact query round trips", value: nact.one, unit: "queries/s" },
    { name: "ask, 10,000 entities, 1,000 in flight (Promise)", value: ours.spread, unit: "asks/s", baseline: "raw nact actors", ratio: ratio((run) => run.ours.spread, (run) => run.nact.spread), target: ">= 0.7x" },
    { name: "ask, 10,000 entities, 1,000 in flight (Effect)", value: ours.spreadEffect, unit: "asks/s", baseline: "raw nact actors", ratio: ratio((run) => run.ours.spreadEffect, (run) => run.nact.spread), target: ">= 0.7x" },
    { name: "raw nact, 10,000 actors, 1,000 in flight", value: nact.spread, unit: "queries/s" },
    { name: "persisted increments, LevelDB, 10,000 entities", value: persisted, unit: "acks/s", baseline: "raw classic-level batches", ratio: ratio((run) => run.persisted, (run) => run.rawLevel), target: ">= 0.8x" },
    { name: "raw classic-level batched puts (1,000)", value: rawLevel, unit: "puts/s" },
    { name: "floor: nact actor per entity + group commit", value: floor, unit: "acks/s", baseline: "raw classic-level batches", ratio: ratio((run) => run.floor, (run) => run.rawLevel) },
    { name: "persisted increments against that floor", value: persisted, unit: "acks/s", baseline: "the floor", ratio: ratio((run) => run.persisted, (run) => run.floor) },
    { name: "ask, one entity, 100 in flight (Effect)", value: ours.peerOne, unit: "asks/s", baseline: "effect/cluster same", ratio: ratio((run) => run.ours.peerOne, (run) => run.cluster.one), target: ">= 5x" },
    { name: "effect/cluster TestRunner, one entity", value: cluster.one, unit: "calls/s" },
    { name: "ask, 1,000 entities, 1,000 in flight (Effect)", value: ours.peerSpread, unit: "asks/s", baseline: "effect/cluster same", ratio: ratio((run) => run.ours.peerSpread, (run) => run.cluster.spread), target: ">= 5x" },
    { name: "effect/cluster TestRunner, 1,000 entities", value: cluster.spread, unit: "calls/s" }
  ]
  report("entities", rows, { seconds: millis / 1000, rounds, nactQueriesLost: runs.map((run) => run.nact.lost) })
}
