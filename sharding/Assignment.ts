/**
 * Which worker should own which shard: a pure function of the live workers and their weights, so
 * every worker computes the same map from the same membership, and the coordinator only carries
 * decisions out.
 *
 * Each worker's share is its weighted part of the shards, rounded by largest remainder, so loads
 * are exact to one shard. Within those capacities shards go to the workers they prefer by
 * rendezvous hashing (MurmurHash3 of worker id and shard), settled as a stable matching
 * (Gale–Shapley, shards proposing, workers keeping the shards that prefer them most): a join or a
 * leave changes the preferences of few shards, so about 1/N of them move.
 */
import { murmur3 } from "../actors/ShardId.js"

/** A live worker as the assignment sees it. */
export interface WorkerSpec {
  readonly id: string
  readonly weight: number
}

const encoder = new TextEncoder()

/** The preference of `shard` for `worker` (higher is stronger), a stable 32-bit hash. */
export const preference = (worker: string, shard: number): number => murmur3(encoder.encode(`${worker}\u0000${shard}`))

/** Each worker's share of `shardCount` shards: weighted, rounded by largest remainder, ids sorted. */
export const capacities = (workers: ReadonlyArray<WorkerSpec>, shardCount: number): Map<string, number> => {
  const sorted = [...workers].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  const total = sorted.reduce((sum, worker) => sum + worker.weight, 0)
  const exact = sorted.map((worker) => ({ id: worker.id, share: (shardCount * worker.weight) / total }))
  const out = new Map(exact.map((entry) => [entry.id, Math.floor(entry.share)]))
  let left = shardCount - [...out.values()].reduce((sum, count) => sum + count, 0)
  const byRemainder = [...exact].sort((a, b) => (b.share - Math.floor(b.share)) - (a.share - Math.floor(a.share)) || (a.id < b.id ? -1 : 1))
  for (const entry of byRemainder) {
    if (left-- <= 0) break
    out.set(entry.id, out.get(entry.id)! + 1)
  }
  return out
}

/**
 * The target owner of every shard (worker ids; null for every shard when there is no worker).
 * Workers with a weight that is not a positive finite number are ignored.
 */
export const assign = (workers: ReadonlyArray<WorkerSpec>, shardCount: number): Array<string | null> => {
  const live = workers.filter((worker) => Number.isFinite(worker.weight) && worker.weight > 0)
  if (live.length === 0) return new Array<string | null>(shardCount).fill(null)
  const capacity = capacities(live, shardCount)
  const ids = [...capacity.keys()]
  // Each shard's workers, most preferred first (ties, vanishingly rare, broken by id).
  const preferences = Array.from({ length: shardCount }, (_, shard) =>
    ids
      .map((id) => ({ id, score: preference(id, shard) }))
      .sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : 1)))
  const next = new Array<number>(shardCount).fill(0)
  const held = new Map<string, Array<{ shard: number; score: number }>>(ids.map((id) => [id, []]))
  const owner = new Array<string | null>(shardCount).fill(null)
  const free: Array<number> = Array.from({ length: shardCount }, (_, shard) => shard).reverse()
  // Each proposal moves a shard down its list; there are at most shardCount × workers of them.
  while (free.length > 0) {
    const shard = free.pop()!
    const choice = preferences[shard]![next[shard]!++]!
    const list = held.get(choice.id)!
    if (list.length < capacity.get(choice.id)!) {
      list.push({ shard, score: choice.score })
      owner[shard] = choice.id
      continue
    }
    // The worker keeps the shards that prefer it most; the weakest one is displaced.
    let weakest = 0
    for (let i = 1; i < list.length; i++) {
      const candidate = list[i]!
      const current = list[weakest]!
      if (candidate.score < current.score || (candidate.score === current.score && candidate.shard > current.shard)) weakest = i
    }
    const displaced = list[weakest]!
    if (displaced.score < choice.score || (displaced.score === choice.score && displaced.shard > shard)) {
      list[weakest] = { shard, score: choice.score }
      owner[shard] = choice.id
      owner[displaced.shard] = null
      free.push(displaced.shard)
    } else {
      free.push(shard)
    }
  }
  return owner
}

/** How many shards change owner between two maps. */
export const moved = (before: ReadonlyArray<string | null>, after: ReadonlyArray<string | null>): number =>
  before.reduce((count, owner, shard) => count + (owner !== after[shard] ? 1 : 0), 0)
