/**
 * The writes of one entity that are not durable yet, by commit round. An entity handles its next
 * messages while its previous writes are being committed (pipelining), so its reads must see
 * those writes: `view` lays them over the store. The group committer takes the open round's
 * writes (`takeOpen`), and `release` forgets them once they are durable; a key written again in a
 * later round keeps its newer value until that round is durable too.
 *
 * Each round remembers the keys it touched, so taking and releasing a round costs the size of the
 * round, not of everything pending.
 */
import { Effect } from "effect"
import { fromLatin1, toBytes, toLatin1 } from "../../persistence/internal/bytes.js"
import type { LatinRange } from "../../persistence/internal/sortedMap.js"
import type { BatchOp, Bytes, ScanOptions } from "../../persistence/KeyValueStore.js"
import type { Entry, WriteOp } from "../../persistence/StoreBackend.js"
import type { StoreConfigShape } from "../../persistence/StoreConfig.js"
import type { ReadError, WriteError } from "../../persistence/StoreError.js"
import { mergeScan, type Staged, type StoreView } from "../../persistence/StoreView.js"

interface Pending {
  readonly entry: Staged
  readonly round: number
}

/**
 * One namespace of pending writes: a plain map (O(1) writes and lookups), with its keys sorted
 * only when a scan needs them, and kept until the next change.
 */
class PendingNamespace {
  readonly map = new Map<string, Pending>()
  private sorted: Array<string> | undefined

  get size(): number {
    return this.map.size
  }

  get(key: string): Pending | undefined {
    return this.map.get(key)
  }

  set(key: string, pending: Pending): void {
    if (!this.map.has(key)) this.sorted = undefined
    this.map.set(key, pending)
  }

  delete(key: string): void {
    if (this.map.delete(key)) this.sorted = undefined
  }

  *range(range: LatinRange, reverse: boolean): Generator<readonly [string, Staged]> {
    this.sorted ??= [...this.map.keys()].sort()
    const keys = this.sorted
    const inRange = (key: string) =>
      (range.gte === undefined || key >= range.gte) && (range.gt === undefined || key > range.gt) &&
      (range.lte === undefined || key <= range.lte) && (range.lt === undefined || key < range.lt)
    if (reverse) {
      for (let i = keys.length - 1; i >= 0; i--) if (inRange(keys[i]!)) yield [keys[i]!, this.map.get(keys[i]!)!.entry] as const
    } else {
      for (const key of keys) if (inRange(key)) yield [key, this.map.get(key)!.entry] as const
    }
  }
}

interface Touched {
  readonly namespace: string
  readonly key: string
}

/** The writes of one entity's open round, as taken for a commit. */
export interface Taken {
  readonly round: number
  readonly ops: ReadonlyArray<WriteOp>
}

/** An entity's not-yet-durable writes. */
export class PendingWrites {
  private readonly namespaces = new Map<string, PendingNamespace>()
  /** Keys and appends written in each round not yet released, oldest round first. */
  private readonly rounds = new Map<number, { touched: Array<Touched>; appends: Array<WriteOp & { readonly _tag: "Append" }> }>()
  /** The round new writes join. */
  openRound = 1
  /** Writes in the open round (keys, plus appended values one by one). */
  openCount = 0
  /** Keys and appends not yet durable, all rounds. */
  pendingCount = 0

  private roundOf(round: number) {
    let entry = this.rounds.get(round)
    if (entry === undefined) {
      entry = { touched: [], appends: [] }
      this.rounds.set(round, entry)
    }
    return entry
  }

  private write(namespace: string, key: string, entry: Staged): void {
    let map = this.namespaces.get(namespace)
    if (map === undefined) {
      map = new PendingNamespace()
      this.namespaces.set(namespace, map)
    }
    const previous = map.get(key)
    if (previous === undefined) this.pendingCount++
    if (previous === undefined || previous.round !== this.openRound) {
      this.openCount++
      this.roundOf(this.openRound).touched.push({ namespace, key })
    }
    map.set(key, { entry, round: this.openRound })
  }

  /** Adds a message's staged entries (latin-1 keys) to the open round. */
  absorbStaged(entries: ReadonlyMap<string, ReadonlyMap<string, Staged>>): void {
    for (const [namespace, map] of entries) for (const [key, entry] of map) this.write(namespace, key, entry)
  }

  /** Adds batch ops (puts, deletes and appends) to the open round. */
  absorb(ops: ReadonlyArray<BatchOp>): void {
    for (const op of ops) {
      if (op.op === "append") {
        this.roundOf(this.openRound).appends.push({ _tag: "Append", topic: op.topic, values: op.values.map(toBytes) })
        this.openCount += op.values.length
        this.pendingCount += op.values.length
      } else if (op.op === "put") {
        this.write(op.namespace, toLatin1(toBytes(op.key)), { value: toBytes(op.value) })
      } else if (op.op === "delete") {
        this.write(op.namespace, toLatin1(toBytes(op.key)), { deleted: true })
      }
    }
  }

  /** Whether the open round holds any write. */
  get hasOpen(): boolean {
    return this.openCount > 0
  }

  /** Closes the open round and returns its writes for one commit. */
  takeOpen(): Taken {
    const round = this.openRound
    const ops: Array<WriteOp> = []
    const written = this.rounds.get(round)
    if (written !== undefined) {
      for (const { namespace, key } of written.touched) {
        const pending = this.namespaces.get(namespace)?.get(key)
        if (pending === undefined || pending.round !== round) continue
        ops.push("deleted" in pending.entry
          ? { _tag: "Delete", namespace, key: fromLatin1(key) }
          : { _tag: "Put", namespace, key: fromLatin1(key), value: pending.entry.value })
      }
      for (const append of written.appends) ops.push(append)
    }
    this.openRound++
    this.openCount = 0
    return { round, ops }
  }

  /** Forgets the writes of rounds up to `round`, now durable. */
  release(round: number): void {
    for (const [number, written] of this.rounds) {
      if (number > round) continue
      for (const { namespace, key } of written.touched) {
        const map = this.namespaces.get(namespace)
        const pending = map?.get(key)
        // A key written again in a later round stays until that round is durable.
        if (pending !== undefined && pending.round <= round) {
          map!.delete(key)
          this.pendingCount--
        }
      }
      for (const append of written.appends) this.pendingCount -= append.values.length
      this.rounds.delete(number)
    }
  }

  /** Forgets everything (the writes failed to commit). */
  discard(): void {
    this.namespaces.clear()
    this.rounds.clear()
    this.openCount = 0
    this.pendingCount = 0
  }

  /** A view of `base` with these writes laid over it. */
  view(base: StoreView, config: StoreConfigShape): StoreView {
    return new PendingView(this.namespaces, base, config)
  }
}

/** Reads through the pending writes, then the store. */
class PendingView implements StoreView {
  readonly partition: string

  constructor(
    private readonly namespaces: ReadonlyMap<string, PendingNamespace>,
    private readonly base: StoreView,
    private readonly config: StoreConfigShape
  ) {
    this.partition = base.partition
  }

  private lookup(namespace: string, key: Bytes): Pending | undefined {
    const map = this.namespaces.get(namespace)
    return map === undefined || map.size === 0 ? undefined : map.get(toLatin1(toBytes(key)))
  }

  get(namespace: string, key: Bytes): Effect.Effect<Uint8Array | undefined, ReadError> {
    const pending = this.lookup(namespace, key)
    if (pending === undefined) return this.base.get(namespace, key)
    return Effect.succeed("deleted" in pending.entry ? undefined : pending.entry.value)
  }

  getMany(namespace: string, keys: ReadonlyArray<Bytes>): Effect.Effect<ReadonlyArray<Uint8Array | undefined>, ReadError> {
    const found = keys.map((key) => this.lookup(namespace, key))
    const missing = keys.filter((_, i) => found[i] === undefined)
    return Effect.map(missing.length === 0 ? Effect.succeed([]) : this.base.getMany(namespace, missing), (values) => {
      let next = 0
      return found.map((pending) => (pending === undefined ? values[next++] : "deleted" in pending.entry ? undefined : pending.entry.value))
    })
  }

  scan(namespace: string, options: ScanOptions = {}): Effect.Effect<ReadonlyArray<Entry>, ReadError> {
    const map = this.namespaces.get(namespace)
    if (map === undefined || map.size === 0) return this.base.scan(namespace, options)
    return mergeScan(this.base, namespace, options, (range, reverse) => map.range(range, reverse), this.config)
  }

  put(namespace: string, key: Bytes, value: Bytes): Effect.Effect<void, WriteError> {
    return this.base.put(namespace, key, value)
  }

  delete(namespace: string, key: Bytes): Effect.Effect<void, WriteError> {
    return this.base.delete(namespace, key)
  }
}
