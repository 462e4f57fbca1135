#!/usr/bin/env node
/**
 * The `shardfeed` command line: `serve` (a node on the embedded default; `npm start` runs it with
 * the defaults), `worker` (joins a Redis-coordinated cluster), `ingest` (BullMQ jobs into feeds),
 * `dead-letters` (list, retry, purge), `dump` and `restore` (archives, offline against a data
 * directory or online through a running node), and `bench`. Settings come from flags, then environment variables
 * (`SHARDFEED_DATA`, `SHARDFEED_HTTP`, `SHARDFEED_TOKEN`), then a JSON config file
 * (`SHARDFEED_CONFIG`, default `./shardfeed.json` when present), then the defaults `--help` shows.
 */
import { NodeChildProcessSpawner, NodeFileSystem, NodePath, NodeRuntime, NodeStdio, NodeTerminal } from "@effect/platform-node-shared"
import { Cause, ConfigProvider, Console, Effect, Exit, Layer } from "effect"
import { Command, Flag } from "effect/cli"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { commands as archiveCommands } from "./ArchiveCommands.js"
import { deadLetterCommand } from "./DeadLetterCommands.js"
import { ingestCommand } from "./IngestCommand.js"
import { serveCommand } from "./ServeCommand.js"
import { workerCommand } from "./WorkerCommand.js"

const VERSION = "0.1.0"

const bench = Command.make(
  "bench",
  { name: Flag.String("name").pipe(Flag.withDescription("store, entities, feed, http, cluster, zset, search, buffer or bullmq")) },
  ({ name }) =>
    Effect.promise(async () => {
      const here = Path.dirname(new URL(import.meta.url).pathname)
      process.argv = [process.argv[0]!, "run.js", name]
      await import(Path.join(here, "../../test/bench/run.js"))
    })
).pipe(Command.withDescription("Runs a benchmark (the same as `npm run bench -- <name>`)"))

const root = Command.make("shardfeed").pipe(
  Command.withDescription("Sharded, persistent feeds, sorted sets and search"),
  Command.withSubcommands([serveCommand, workerCommand, ingestCommand, deadLetterCommand, ...archiveCommands, bench])
)

/** Settings from a JSON config file, under the names of the environment variables. */
const fileConfig = (): Record<string, string> => {
  const file = process.env.SHARDFEED_CONFIG ?? (Fs.existsSync("shardfeed.json") ? "shardfeed.json" : undefined)
  if (file === undefined) return {}
  const parsed = JSON.parse(Fs.readFileSync(file, "utf8")) as Record<string, unknown>
  const out: Record<string, string> = {}
  for (const [key, value] of Object.entries(parsed)) out[`SHARDFEED_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`] = String(value)
  return out
}

const provider = ConfigProvider.orElse(ConfigProvider.fromEnv(), ConfigProvider.fromUnknown(fileConfig()))
const platform = Layer.mergeAll(NodeFileSystem.layer, NodePath.layer, NodeTerminal.layer, NodeStdio.layer).pipe(
  Layer.provideMerge(NodeChildProcessSpawner.layer),
  Layer.provideMerge(NodeFileSystem.layer),
  Layer.provideMerge(NodePath.layer)
)

/** One line for a failure a person can act on; the full cause only for defects. */
const report = (cause: Cause.Cause<unknown>) => {
  if (Cause.hasInterruptsOnly(cause)) return Effect.void
  const error = Cause.findErrorOption(cause)
  if (error._tag === "Some") {
    const value = error.value as { readonly _tag?: unknown; readonly message?: unknown; readonly stack?: unknown }
    const label = typeof value._tag === "string" && value._tag !== "NodeConfigError" ? `${value._tag}: ` : ""
    const { _tag: _, stack: __, ...fields } = value
    const detail = typeof value.message === "string" && value.message.length > 0 ? value.message : JSON.stringify(fields)
    return Console.error(`shardfeed: ${label}${detail}`)
  }
  return Console.error(Cause.pretty(cause))
}

Command.run(root, { version: VERSION }).pipe(
  Effect.tapCause(report),
  Effect.provide(platform),
  Effect.provide(ConfigProvider.layer(provider)),
  // A signal ends the program by interruption after a graceful shutdown: that is a success.
  (program) =>
    NodeRuntime.runMain(program, {
      disableErrorReporting: true,
      teardown: (exit, onExit) => onExit(Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause) ? 0 : 1)
    })
)
