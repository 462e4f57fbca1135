/**
 * `npm run bench -- feed [--seconds 3]`: feeds on LevelDB against raw classic-level, one run,
 * 100-byte entries.
 *
 * - appends to 1,000 feeds, 1,000 appends (of one item) in flight, each acknowledged after its
 *   commit, vs raw classic-level batched puts of one key per entry (batches of 1,000);
 * - the floor of the prescribed design for the first (`floor.ts`: a raw nact actor per feed,
 *   one put per append, group commit, nothing else), since the target lies above it;
 * - appends to one hot feed at the same in-flight depth, vs the same raw figure;
 * - 100-entry pages at random positions of a 1,000,000-entry feed vs raw classic-level iterators
 *   reading 100 consecutive keys at random positions of 1,000,000 keys;
 * - seek by timestamp in the 1,000,000-entry feed: p50 and p99 latency, each seek alone, next to
 *   a raw classic-level iterator seek in 1,000,000 keys timed the same way (the floor any seek
 *   has on this machine);
 * - not in the targets: 100-entry pages of a feed written one item per append (a record
 *   per entry) before and after `compact`, and how long compaction took.
 *
 * Appends and pages are driven as an Effect application calls the Feed API: from fibers, each
 * looping over its calls (as the entities benchmark drives asks). The hot feed is also measured
 * with one `Effect.runPromise` per append, a Promise caller's way, for comparison.
 */
import { ClassicLevel } from "classic-level"
import { Effect, ManagedRuntime } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as LevelStore from "../../persistence/LevelStore.js"
import * as Feed from "../../src/feed/Feed.js"
import { feedNode } from "../feed/support.js"
import { nactGroupCommitFloor } from "./floor.js"
import { drive, driveEffect, options, quantile, report, type Row } from "./report.js"

const VALUE = "x".repeat(98)
const tempDir = (label: string) => Fs.mkdtempSync(Path.join(Os.tmpdir(), `shardfeed-bench-${label}-`))

const rawPuts = async (millis: number) => {
  const directory = tempDir("feed-raw")
  const db = new ClassicLevel<string, string>(directory)
  await db.open()
  let next = 0
  try {
    let done = 0
    const started = performance.now()
    while (performance.now() - started < millis) {
      const ops = Array.from({ length: 1_000 }, () => {
        const n = next++
        return { type: "put" as const, key: `feed-${n % 1_000}/${String(n).padStart(12, "0")}`, value: VALUE }
      })
      await db.batch(ops)
      done += ops.length
    }
    return (done * 1000) / (performance.now() - started)
  } finally {
    await db.close()
    Fs.rmSync(directory, { recursive: true, force: true })
  }
}

const rawPages = async (millis: number) => {
  const directory = tempDir("feed-raw-pages")
  const db = new ClassicLevel<string, string>(directory)
  await db.open()
  const key = (n: number) => `big/${String(n).padStart(12, "0")}`
  for (let start = 0; start < 1_000_000; start += 10_000) {
    await db.batch(Array.from({ length: 10_000 }, (_, i) => ({ type: "put" as const, key: key(start + i), value: VALUE })))
  }
  try {
    const pages = await drive(1, millis, async (i) => {
      const from = (i * 7_919) % (1_000_000 - 100)
      const iterator = db.iterator({ gte: key(from), limit: 100 })
      const entries = await iterator.nextv(100)
      await iterator.close()
      if (entries.length !== 100) throw new Error("short raw page")
    })
    // The floor under any seek: one raw iterator seek, timed alone, as the feed's seeks are.
    const seeks: Array<number> = []
    for (let i = 0; i < 2_000; i++) {
      const started = performance.now()
      const iterator = db.iterator({ gte: key((i * 104_729) % 1_000_000), limit: 1 })
      await iterator.nextv(1)
      await iterator.close()
      seeks.push(performance.now() - started)
    }
    return { pages, seeks }
  } finally {
    await db.close()
    Fs.rmSync(directory, { recursive: true, force: true })
  }
}

export const main = async (args: ReadonlyArray<string>): Promise<void> => {
  const flags = options(args)
  const millis = Number(flags.seconds ?? 3) * 1000
  const directory = tempDir("feed")
  const runtime = ManagedRuntime.make(feedNode(LevelStore.layer({ directory }), 1_024))
  const feeds = await runtime.runPromise(Feed.client(Feed.Json))
  const append = (feed: string) => feeds.append(feed, [{ value: VALUE }])
  // The Feed API is an Effect API: an application keeps its appends in flight from fibers.
  const inFibers = (inFlight: number, call: (i: number) => Effect.Effect<unknown, unknown>) => runtime.runPromise(driveEffect(inFlight, millis, call))
  try {
    await runtime.runPromise(driveEffect(1_000, 500, (i) => append(`warm-${i % 1_000}`)))
    const spread = await inFibers(1_000, (i) => append(`feed-${i % 1_000}`))
    const hot = await inFibers(1_000, () => append("hot"))
    // The same with a runtime entry per append (a Promise caller's way), for comparison.
    const hotPromises = await drive(1_000, millis, () => Effect.runPromise(append("hot")))
    // A million entries, appended 1,000 per call, timestamps one per 3 entries.
    for (let start = 0; start < 1_000_000; start += 1_000) {
      await Effect.runPromise(feeds.append("big", Array.from({ length: 1_000 }, (_, i) => ({ value: VALUE, timestamp: 1_000_000 + Math.floor((start + i) / 3) }))))
    }
    const pages = await inFibers(1, (i) =>
      Effect.flatMap(feeds.page("big", { offset: 1 + ((i * 7_919) % (1_000_000 - 100)), limit: 100 }), (page) =>
        page.items.length === 100 ? Effect.void : Effect.die(new Error("short page"))))
    const seeks: Array<number> = []
    for (let i = 0; i < 2_000; i++) {
      const started = performance.now()
      await Effect.runPromise(feeds.page("big", { timestamp: 1_000_000 + ((i * 104_729) % 333_333), limit: 1 }))
      seeks.push(performance.now() - started)
    }
    // One item per acknowledged append: a commit round, so a record, per entry.
    const TRICKLE = 20_000
    for (let i = 0; i < TRICKLE; i++) await Effect.runPromise(append("trickle"))
    const tricklePage = (i: number) =>
      Effect.runPromise(feeds.page("trickle", { offset: 1 + ((i * 7_919) % (TRICKLE - 100)), limit: 100 })).then((page) => {
        if (page.items.length !== 100) throw new Error("short page")
      })
    const fragmented = await drive(1, millis, tricklePage)
    const compactStarted = performance.now()
    for (let steps = 0; ; steps++) {
      const step = await Effect.runPromise(feeds.compact("trickle"))
      if (step.merged === 0 && !step.more) break
      if (steps > 10_000) throw new Error("compaction did not converge")
    }
    const compactMillis = performance.now() - compactStarted
    const compacted = await drive(1, millis, tricklePage)
    const raw = await rawPuts(millis)
    const floor = await nactGroupCommitFloor({
      entities: 1_000,
      inFlight: 1_000,
      millis,
      record: (feed, count) => [`feed-${feed}/${String(count).padStart(12, "0")}`, VALUE]
    })
    const { pages: rawPage, seeks: rawSeeks } = await rawPages(millis)
    const rows: Array<Row> = [
      { name: "appends, 1,000 feeds, 1,000 in flight", value: spread, unit: "entries/s", baseline: "raw batched puts, key per entry", ratio: spread / raw, target: ">= 1.0x" },
      { name: "floor: nact actor per feed + group commit", value: floor, unit: "entries/s", baseline: "raw batched puts, key per entry", ratio: floor / raw },
      { name: "appends, 1,000 feeds, against that floor", value: spread, unit: "entries/s", baseline: "the floor", ratio: spread / floor },
      { name: "appends, one hot feed, 1,000 in flight", value: hot, unit: "entries/s", baseline: "raw batched puts, key per entry", ratio: hot / raw, target: ">= 0.5x" },
      { name: "  the same, one Effect.runPromise per append", value: hotPromises, unit: "entries/s", baseline: "raw batched puts, key per entry", ratio: hotPromises / raw },
      { name: "raw classic-level batched puts", value: raw, unit: "puts/s" },
      { name: "100-entry pages, random positions, 1M feed", value: pages, unit: "pages/s", baseline: "raw iterator, 100 keys", ratio: pages / rawPage, target: ">= 1.0x" },
      { name: "raw classic-level iterator pages", value: rawPage, unit: "pages/s" },
      { name: "seek by timestamp p50", value: quantile(seeks, 0.5), unit: "ms" },
      { name: "seek by timestamp p99", value: quantile(seeks, 0.99), unit: "ms", target: "< 2 ms" },
      { name: "  raw classic-level iterator seek p50", value: quantile(rawSeeks, 0.5), unit: "ms" },
      { name: "  raw classic-level iterator seek p99", value: quantile(rawSeeks, 0.99), unit: "ms" },
      { name: "100-entry pages, 20,000 single appends", value: fragmented, unit: "pages/s" },
      { name: "  the same after compaction", value: compacted, unit: "pages/s", baseline: "before compaction", ratio: compacted / fragmented },
      { name: "  compaction of 20,000 records", value: compactMillis, unit: "ms" }
    ]
    report("feed", rows, { seconds: millis / 1000, entryBytes: 100 })
  } finally {
    await runtime.dispose()
    Fs.rmSync(directory, { recursive: true, force: true })
  }
}
