#!/usr/bin/env node
/**
 * The `shardfeed` command line: `serve` (a node on the embedded default; `npm start` runs it with
 * the defaults), `worker` (joins a Redis-coordinated cluster), `ingest` (BullMQ jobs into feeds),
 * `dead-letters` (list, retry, purge), `dump` and `restore` (archives, offline against a data
 * directory or online through a running node), and `bench`. Every setting comes from its flag,
 * then its environment variable (`--lease-ms` → `SHARDFEED_LEASE_MS`), then a JSON config file
 * (`SHARDFEED_CONFIG`, default `./shardfeed.json` when present; key `leaseMs`), then the default
 * `--help` shows (see `Settings.ts`). A config file with a mistake stops the program with exit
 * code 2 and a line naming the file and the key.
 */
import { NodeChildProcessSpawner, NodeFileSystem, NodePath, NodeRuntime, NodeStdio, NodeTerminal } from "@effect/platform-node-shared"
import { Cause, ConfigProvider, Console, Effect, Exit, Layer } from "effect"
import { Command, Flag } from "effect/cli"
import * as Path from "node:path"
import { commands as archiveCommands } from "./ArchiveCommands.js"
import { deadLetterCommand } from "./DeadLetterCommands.js"
import { ingestCommand } from "./IngestCommand.js"
import { serveCommand } from "./ServeCommand.js"
import * as Settings from "./Settings.js"
import { workerCommand } from "./WorkerCommand.js"

const VERSION = "0.1.0"

const bench = Command.make(
  "bench",
  { name: Flag.String("name").pipe(Flag.withDescription("store, entities, feed, http, cluster, zset, search, search-scale, buffer or bullmq")) },
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

const fileSettings = Settings.readConfigFile()
if (typeof fileSettings === "string") {
  console.error(`shardfeed: ${fileSettings}`)
  process.exit(2)
}

const provider = ConfigProvider.orElse(ConfigProvider.fromEnv(), ConfigProvider.fromUnknown(fileSettings))
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
    const value = error.value as { readonly _tag?: unknown; readonly message?: unknown; readonly stack?: unknown; readonly field?: unknown }
    const tag = typeof value._tag === "string" && value._tag !== "NodeConfigError" ? value._tag : ""
    // A typed error that names its field says which (`InvalidArgument (attemptsMax): ...`).
    const label = tag === "" ? "" : typeof value.field === "string" ? `${tag} (${value.field}): ` : `${tag}: `
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
