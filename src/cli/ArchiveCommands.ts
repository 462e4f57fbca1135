/**
 * `shardfeed dump` and `shardfeed restore`: archives of all data. Offline they open the data
 * directory themselves (the node must be stopped: LevelDB allows one process); online (`--from`
 * or `--to` a node's URL) they go through the node's admin routes, which read one consistent
 * snapshot and restart every shard after a restore. A progress line shows on a terminal.
 */
import { Console, Effect, Option } from "effect"
import { Command, Flag } from "effect/cli"
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Https from "node:https"
import { StoreBackend, type StoreBackendShape } from "../../persistence/StoreBackend.js"
import * as LevelStore from "../../persistence/LevelStore.js"
import * as Archive from "../node/Archive.js"
import * as Settings from "./Settings.js"

const progress: Archive.Progress = (records, bytes) => {
  if (process.stderr.isTTY) process.stderr.write(`\r${records.toLocaleString("en-US")} records, ${(bytes / 1e6).toFixed(1)} MB`)
}
const done = () => (process.stderr.isTTY ? Console.error("") : Effect.void)

const url = Flag.String("node").pipe(
  Flag.withDescription("go through a running node at this URL (e.g. http://127.0.0.1:7070) instead of opening --data"),
  Flag.optional
)

const request = (target: string, path: string, method: string, token: string | undefined) => {
  const full = new URL(path, target)
  const client = full.protocol === "https:" ? Https : Http
  return client.request(full, { method, headers: token === undefined ? {} : { authorization: `Bearer ${token}` } })
}

const response = (req: Http.ClientRequest): Promise<Http.IncomingMessage> =>
  new Promise((resolve, reject) => {
    req.once("response", resolve)
    req.once("error", reject)
  })

/** Runs `f` on the LevelDB backend of `data` (the node must be stopped). */
const offline = <A, E>(data: string, f: (backend: StoreBackendShape) => Effect.Effect<A, E>) =>
  Effect.flatMap(StoreBackend, f).pipe(Effect.provide(LevelStore.layerBackend({ directory: data })))

const dump = Command.make(
  "dump",
  { data: Settings.data, out: Flag.String("out").pipe(Flag.withDescription("the archive file to write")), node: url, token: Settings.token },
  (flags) =>
    Effect.gen(function*() {
      const output = Fs.createWriteStream(flags.out)
      if (Option.isSome(flags.node)) {
        const req = request(flags.node.value, "/v1/admin/dump", "GET", Option.getOrUndefined(flags.token))
        req.end()
        const res = yield* Effect.promise(() => response(req))
        if (res.statusCode !== 200) return yield* Effect.fail(new Archive.ArchiveError(`the node answered ${res.statusCode}`))
        yield* Effect.promise(() => new Promise<void>((resolve, reject) => res.pipe(output).once("finish", () => resolve()).once("error", reject)))
        return yield* Console.log(`archive written to ${flags.out}`)
      }
      const records = yield* offline(flags.data, (backend) => Archive.dump(backend, output, progress))
      yield* done()
      yield* Console.log(`${records} records written to ${flags.out}`)
    })
).pipe(Command.withDescription("Writes an archive of all data (feeds, sorted sets, indexes, entity state) to one file"))

const restore = Command.make(
  "restore",
  {
    data: Settings.data,
    in: Flag.String("in").pipe(Flag.withDescription("the archive file to load")),
    merge: Flag.Boolean("merge").pipe(Flag.withDescription("add to a store that already holds data (default: refuse it)"), Flag.withDefault(false)),
    node: url,
    token: Settings.token
  },
  (flags) =>
    Effect.gen(function*() {
      const input = Fs.createReadStream(flags.in)
      if (Option.isSome(flags.node)) {
        const req = request(flags.node.value, `/v1/admin/restore${flags.merge ? "?merge=true" : ""}`, "POST", Option.getOrUndefined(flags.token))
        input.pipe(req)
        const res = yield* Effect.promise(() => response(req))
        const body = yield* Effect.promise(async () => {
          const chunks: Array<Buffer> = []
          for await (const chunk of res) chunks.push(chunk as Buffer)
          return Buffer.concat(chunks).toString("utf8")
        })
        if (res.statusCode !== 200) return yield* Effect.fail(new Archive.ArchiveError(`the node refused the archive: ${body}`))
        return yield* Console.log(`restored: ${body}`)
      }
      const records = yield* offline(flags.data, (backend) => Archive.restore(backend, input, { merge: flags.merge, progress }))
      yield* done()
      yield* Console.log(`${records} records restored into ${flags.data}`)
    })
).pipe(Command.withDescription("Loads an archive; refuses a store that holds data unless --merge"))

/** The archive commands. */
export const commands = [dump, restore]
