/**
 * Goal: the shard assignment is a deterministic, balanced, stable function of the live workers.
 * Method: seeded random worker sets (the seed is logged; ASSIGNMENT_SEED replays it) of 1 to 12
 * workers with weights 1 to 4 over 64 to 4,096 shards: every shard has an owner, each worker's
 * load is within ±10% (and within one shard) of its weighted share, the map does not depend on
 * the order workers are listed in, and a join or a leave moves about 1/N of the shards.
 */
import { strict as assert } from "node:assert"
import { describe, it } from "vitest"
import { assign, capacities, moved, type WorkerSpec } from "../../sharding/Assignment.js"

const random = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

const counts = (owners: ReadonlyArray<string | null>) => {
  const out = new Map<string, number>()
  for (const owner of owners) if (owner !== null) out.set(owner, (out.get(owner) ?? 0) + 1)
  return out
}

describe("shard assignment", () => {
  const seed = Number(process.env.ASSIGNMENT_SEED ?? Date.now() % 1_000_000)
  console.log(`assignment seed ${seed}; replay with ASSIGNMENT_SEED=${seed}`)

  it("balances every worker within ±10% of its weighted share, deterministically", () => {
    const next = random(seed)
    for (let round = 0; round < 40; round++) {
      const shardCount = [64, 256, 1_024, 4_096][Math.floor(next() * 4)]!
      const workers: Array<WorkerSpec> = Array.from({ length: 1 + Math.floor(next() * 12) }, (_, i) => ({
        id: `w${i}-${Math.floor(next() * 1e6)}`,
        weight: 1 + Math.floor(next() * 4)
      }))
      const owners = assign(workers, shardCount)
      assert.equal(owners.filter((owner) => owner === null).length, 0, "every shard has an owner")
      const total = workers.reduce((sum, worker) => sum + worker.weight, 0)
      const load = counts(owners)
      for (const worker of workers) {
        const share = (shardCount * worker.weight) / total
        const got = load.get(worker.id) ?? 0
        assert.ok(Math.abs(got - share) <= Math.max(1, 0.1 * share), `round ${round}: ${worker.id} has ${got}, share ${share.toFixed(1)}`)
      }
      const shuffled = [...workers].sort(() => next() - 0.5)
      assert.deepEqual(assign(shuffled, shardCount), owners, "the order workers are listed in does not matter")
    }
  })

  it("moves about 1/N of the shards when a worker joins or leaves", () => {
    const next = random(seed + 1)
    for (let round = 0; round < 30; round++) {
      const shardCount = 1_024
      const n = 2 + Math.floor(next() * 8)
      const workers = Array.from({ length: n }, (_, i) => ({ id: `worker-${i}-${Math.floor(next() * 1e6)}`, weight: 1 }))
      const before = assign(workers, shardCount)
      const joined = assign([...workers, { id: `new-${round}`, weight: 1 }], shardCount)
      const ideal = shardCount / (n + 1)
      const onJoin = moved(before, joined)
      assert.ok(onJoin >= ideal - 1 && onJoin <= 1.5 * ideal, `join of an ${n + 1}th worker moved ${onJoin}, ideal ${ideal.toFixed(0)}`)
      const leaver = workers[Math.floor(next() * n)]!
      const left = assign(workers.filter((worker) => worker !== leaver), shardCount)
      const onLeave = moved(before, left)
      const owned = before.filter((owner) => owner === leaver.id).length
      assert.ok(onLeave >= owned && onLeave <= 1.5 * owned, `leave moved ${onLeave}, the leaver owned ${owned}`)
    }
  })

  it("shares by weight with exact rounding, and has no owner without workers", () => {
    assert.deepEqual(Object.fromEntries(capacities([{ id: "a", weight: 1 }, { id: "b", weight: 2 }], 10)), { a: 3, b: 7 })
    assert.deepEqual(assign([], 4), [null, null, null, null])
    assert.deepEqual(assign([{ id: "only", weight: 0 }], 2), [null, null], "a worker of weight 0 takes nothing")
    const heavy = counts(assign([{ id: "a", weight: 1 }, { id: "b", weight: 3 }], 1_024))
    assert.deepEqual([heavy.get("a"), heavy.get("b")], [256, 768])
  })
})
