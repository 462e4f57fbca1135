/**
 * The floor of the design the issues prescribe, measured in the same run as our figures: raw
 * nact actors, one per entity, each message writing one record, the writes of every actor
 * gathered into one classic-level batch per round (group commit, nothing else: no routing,
 * schema, fencing, staging, metrics or typed errors), each query answered after its batch is
 * written. A runtime built as the issues say (one nact actor per active entity, replies after
 * the write is durable) cannot be faster than this, so a target above it cannot be met by any
 * such runtime; the benchmarks print it next to the targets for that reason.
 */
import { ClassicLevel } from "classic-level"
import { dispatch, query, spawn, start, stop } from "nact"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { drive } from "./report.js"

/** What the floor writes: `entities` actors, message `i` going to actor `i % entities`. */
export interface FloorOptions {
  readonly entities: number
  readonly inFlight: number
  readonly millis: number
  /** The key and value written by actor `entity` for its `count`-th message. */
  readonly record: (entity: number, count: number) => readonly [key: string, value: string]
}

/** Acknowledged messages per second through nact actors and group-committed classic-level batches. */
export const nactGroupCommitFloor = async (options: FloorOptions): Promise<number> => {
  const directory = Fs.mkdtempSync(Path.join(Os.tmpdir(), "shardfeed-bench-floor-"))
  const db = new ClassicLevel<string, string>(directory)
  await db.open()
  let puts: Array<readonly [string, string]> = []
  let replies: Array<() => void> = []
  let writing = false
  let scheduled = false
  const schedule = () => {
    if (scheduled) return
    scheduled = true
    setImmediate(flush)
  }
  // One batch at a time; what arrives meanwhile goes in the next one.
  const flush = async () => {
    scheduled = false
    if (writing || puts.length === 0) return
    writing = true
    const batch = db.batch()
    for (const [key, value] of puts) batch.put(key, value)
    const answered = replies
    puts = []
    replies = []
    await batch.write()
    for (const reply of answered) reply()
    writing = false
    if (puts.length > 0) schedule()
  }
  const system = start()
  const actors = Array.from({ length: options.entities }, (_, entity) =>
    spawn(system, (count: number, message: { sender: unknown }) => {
      const next = count + 1
      puts.push(options.record(entity, next))
      replies.push(() => dispatch(message.sender as never, next))
      schedule()
      return next
    }, `floor${entity}`, { initialState: 0 }))
  // A lost reply (nact's random temporary ids can collide) ends its query after a second.
  const ask = (i: number) => query(actors[i % options.entities]!, (sender: unknown) => ({ sender }), 1_000).catch(() => undefined)
  try {
    await drive(options.inFlight, Math.min(500, options.millis / 3), ask)
    return await drive(options.inFlight, options.millis, ask)
  } finally {
    stop(system)
    await db.close()
    Fs.rmSync(directory, { recursive: true, force: true })
  }
}
