/**
 * `shardfeed dead-letters list|retry|purge`: the dead letters of durable messages, straight from
 * Redis (no node needed). `list` prints one line per dead letter (or JSON lines with `--json`)
 * and the cursor of the next page; `retry` sends one again, to the end of its entity's order;
 * `purge` removes one (`--id`), a type's (`--type`) or all (`--all`).
 */
import { Console, Effect, Option } from "effect"
import { Command, Flag } from "effect/cli"
import * as DeadLetters from "../durable/DeadLetters.js"
import * as Node from "../node/Node.js"
import * as Settings from "./Settings.js"

const queue = Settings.string("queue", "the durable messages' BullMQ queue", "shardfeed-durable", Settings.envName("durable-queue"))
const prefix = Settings.string("prefix", "the durable messages' BullMQ key prefix", "shardfeed", Settings.envName("durable-prefix"))
const redis = Settings.redis
const cluster = Settings.optionalString(
  "cluster",
  "the worker cluster whose dead letters these are (its durable messages live under the prefix shardfeed.<cluster>; overrides --prefix)",
  "none: --prefix"
)

/** The prefix the flags name: a worker cluster's own (`shardfeed worker --cluster`), or `--prefix`. */
const prefixOf = (flags: { readonly prefix: string; readonly cluster: Option.Option<string> }) =>
  Option.match(flags.cluster, { onNone: () => flags.prefix, onSome: Node.clusterPrefix })

const provide = <A, E>(
  flags: { readonly redis: string; readonly queue: string; readonly prefix: string; readonly cluster: Option.Option<string> },
  effect: Effect.Effect<A, E, DeadLetters.DeadLetters>
) => effect.pipe(Effect.provide(DeadLetters.layer({ url: flags.redis, config: { queueName: flags.queue, prefix: prefixOf(flags) } })))

const line = (item: DeadLetters.DeadLetter) =>
  `${item.id}  ${item.type}/${item.entity}  ${item.message._tag}  attempts=${item.attempts}  ${new Date(item.deadAt).toISOString()}  ${item.error}`

const list = Command.make("list", {
  cluster,
  redis,
  queue,
  prefix,
  type: Flag.String("type").pipe(Flag.withDescription("only this entity type's dead letters"), Flag.optional),
  limit: Flag.Int("limit").pipe(Flag.withDescription("1 to 1000 (default 100)"), Flag.withDefault(100)),
  cursor: Flag.String("cursor").pipe(Flag.withDescription("continue after a previous page"), Flag.optional),
  json: Flag.Boolean("json").pipe(Flag.withDescription("print JSON lines"), Flag.withDefault(false))
}, (flags) =>
  provide(flags, Effect.gen(function*() {
    const deadLetters = yield* DeadLetters.DeadLetters
    const page = yield* deadLetters.list({ type: Option.getOrUndefined(flags.type), limit: flags.limit, cursor: Option.getOrUndefined(flags.cursor) })
    for (const item of page.items) yield* Console.log(flags.json ? JSON.stringify(item) : line(item))
    if (page.cursor !== null) yield* Console.log(flags.json ? JSON.stringify({ cursor: page.cursor }) : `more: --cursor ${page.cursor}`)
    else if (page.items.length === 0 && !flags.json) yield* Console.log("no dead letters")
  }))).pipe(Command.withDescription("Lists dead letters, oldest first"))

const retry = Command.make("retry", { redis, queue, prefix, cluster, id: Flag.String("id").pipe(Flag.withDescription("the dead letter to send again")) }, (flags) =>
  provide(flags, Effect.gen(function*() {
    const sent = yield* Effect.flatMap(DeadLetters.DeadLetters, (deadLetters) => deadLetters.retry(flags.id))
    yield* Console.log(`sent again as ${sent.id}`)
  }))).pipe(Command.withDescription("Sends a dead letter again, to the end of its entity's order"))

const purge = Command.make("purge", {
  redis,
  queue,
  prefix,
  cluster,
  id: Flag.String("id").pipe(Flag.withDescription("remove this dead letter"), Flag.optional),
  type: Flag.String("type").pipe(Flag.withDescription("remove this entity type's dead letters"), Flag.optional),
  all: Flag.Boolean("all").pipe(Flag.withDescription("remove every dead letter"), Flag.withDefault(false))
}, (flags) =>
  provide(flags, Effect.gen(function*() {
    const chosen = [Option.isSome(flags.id), Option.isSome(flags.type), flags.all].filter(Boolean).length
    if (chosen !== 1) return yield* Effect.fail(new Node.NodeConfigError("give exactly one of --id, --type and --all"))
    const deadLetters = yield* DeadLetters.DeadLetters
    if (Option.isSome(flags.id)) {
      const deleted = yield* deadLetters.purge(flags.id.value)
      return yield* Console.log(deleted ? `purged ${flags.id.value}` : `no dead letter ${flags.id.value}`)
    }
    const purged = yield* deadLetters.purgeAll({ type: Option.getOrUndefined(flags.type) })
    yield* Console.log(`purged ${purged} dead letters`)
  }))).pipe(Command.withDescription("Removes dead letters: one, a type's, or all"))

/** The dead-letter commands, under `shardfeed dead-letters`. */
export const deadLetterCommand = Command.make("dead-letters").pipe(
  Command.withDescription("Lists, retries and purges the dead letters of durable messages"),
  Command.withSubcommands([list, retry, purge])
)
