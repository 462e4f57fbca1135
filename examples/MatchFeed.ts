/**
 * A feed type defined in app code with a typed entry schema, hosted by a node next to the
 * built-in JSON feeds. Live matches append goals and cards; a reader pages the newest events
 * and tails the rest with a cursor. The node also serves HTTP, where the typed feed answers on
 * the generic entity route (`POST /v1/entities/feed.match-events/<match>/ask`).
 *
 * Run: `npm run build && node dist/examples/MatchFeed.js [data directory]`
 */
import { Console, Effect, Layer, Schema } from "effect"
import { Feed } from "../src/index.js"
import * as Node from "../src/node/Node.js"
import * as HttpServer from "../src/server/HttpServer.js"

/** What happens in a match: a union schema gives a polymorphic feed. */
export const MatchEvent = Schema.Union([
  Schema.TaggedStruct("Goal", { minute: Schema.Number, player: Schema.String }),
  Schema.TaggedStruct("Card", { minute: Schema.Number, player: Schema.String, color: Schema.Literals(["yellow", "red"]) })
])

/** The match-events feed type: the last 10,000 events of a match are kept. */
export const MatchFeed = Feed.define("match-events", { entry: MatchEvent, retention: { maxEntries: 10_000 } })

const options: Node.NodeOptions = { data: process.argv[2] ?? "./data/example-match", host: "127.0.0.1", port: 0 }

const program = Effect.gen(function*() {
  const address = yield* HttpServer.make(Node.routes, { host: options.host, port: options.port })
  const feeds = yield* Feed.client(MatchFeed)
  // Nonces make the appends safe to retry: a second run reports duplicates and writes nothing.
  const results = yield* feeds.append("final-2026", [
    { value: { _tag: "Goal", minute: 12, player: "Ada" }, nonce: 1 },
    { value: { _tag: "Card", minute: 30, player: "Grace", color: "yellow" }, nonce: 2 },
    { value: { _tag: "Goal", minute: 88, player: "Grace" }, nonce: 3 }
  ])
  yield* Console.log(`appended: ${JSON.stringify(results)}`)
  const newest = yield* feeds.page("final-2026", { order: "backward", limit: 2 })
  for (const entry of newest.items) yield* Console.log(`#${entry.offset} ${entry.value._tag} by ${entry.value.player} at ${entry.value.minute}'`)
  const metadata = yield* feeds.metadata("final-2026")
  yield* Console.log(`${metadata.count} events, last nonce ${metadata.lastNonce}; HTTP on http://127.0.0.1:${address.port}`)
})

const node = Feed.layer(MatchFeed).pipe(Layer.provideMerge(Node.layer(options)))

Effect.runPromise(program.pipe(Effect.scoped, Effect.provide(node))).catch((error) => {
  console.error(error)
  process.exitCode = 1
})

