/**
 * Settings of the commands. Every setting is a flag (`--lease-ms`) with an environment variable
 * (`SHARDFEED_LEASE_MS`) and a config-file key (`leaseMs`) behind it, in that order of
 * precedence, then its default; `--help` shows the variable and the default. The config file is
 * JSON (`SHARDFEED_CONFIG`, or `./shardfeed.json` when present); `readConfigFile` checks it.
 */
import { Config } from "effect"
import { Flag } from "effect/cli"
import * as Fs from "node:fs"
import { defaults } from "../../actors/RuntimeConfig.js"

/** The environment variable of a flag: `lease-ms` → `SHARDFEED_LEASE_MS`. */
export const envName = (flag: string): string => `SHARDFEED_${flag.replace(/-/g, "_").toUpperCase()}`

/** The config-file key of an environment variable: `SHARDFEED_LEASE_MS` → `leaseMs`. */
export const fileKey = (env: string): string =>
  env.slice("SHARDFEED_".length).toLowerCase().replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())

/** Every setting's environment variable, by config-file key, so that the file can be checked. */
const known = new Map<string, string>()

const described = (env: string, description: string, fallback: string | undefined) => {
  known.set(fileKey(env), env)
  return `${description} (env ${env}${fallback === undefined ? "" : `; default ${fallback}`})`
}

/** A string setting with a default. */
export const string = (flag: string, description: string, fallback: string, env = envName(flag)) =>
  Flag.String(flag).pipe(
    Flag.withDescription(described(env, description, fallback)),
    Flag.withFallbackConfig(Config.String(env)),
    Flag.withDefault(fallback)
  )

/** A string setting without a default. */
export const optionalString = (flag: string, description: string, none: string, env = envName(flag)) =>
  Flag.String(flag).pipe(
    Flag.withDescription(described(env, description, none)),
    Flag.withFallbackConfig(Config.String(env)),
    Flag.optional
  )

/** A required string setting. */
export const requiredString = (flag: string, description: string, env = envName(flag)) =>
  Flag.String(flag).pipe(Flag.withDescription(described(env, description, undefined)), Flag.withFallbackConfig(Config.String(env)))

/** An integer setting. */
export const integer = (flag: string, description: string, fallback: number, env = envName(flag)) =>
  Flag.Int(flag).pipe(
    Flag.withDescription(described(env, description, String(fallback))),
    Flag.withFallbackConfig(Config.Int(env)),
    Flag.withDefault(fallback)
  )

/** A finite number setting. */
export const finite = (flag: string, description: string, fallback: number, env = envName(flag)) =>
  Flag.Finite(flag).pipe(
    Flag.withDescription(described(env, description, String(fallback))),
    Flag.withFallbackConfig(Config.Finite(env)),
    Flag.withDefault(fallback)
  )

/** A switch, off by default; `true`/`false` (also `1`/`0`, `yes`/`no`) in the environment or file. */
export const boolean = (flag: string, description: string, env = envName(flag)) =>
  Flag.Boolean(flag).pipe(
    Flag.withDescription(described(env, description, "off")),
    Flag.withFallbackConfig(Config.Boolean(env)),
    Flag.withDefault(false)
  )

/** `--data`: the LevelDB directory. */
export const data = string("data", "LevelDB directory of the node's data", "./data")

/** `--http`: where the HTTP API listens. */
export const http = string("http", "host:port of the HTTP API", "127.0.0.1:7070")

/** `--token`: the API token. */
export const token = optionalString("token", "require this token on every route but /health", "none, loopback only")

/** `--shards`: the shard count. */
export const shards = integer("shards", "shard count; must match on every process of one cluster and the data's", defaults.shardCount)

/** `--sync`: fsync every commit. */
export const sync = boolean("sync", "fsync every commit: survive a machine crash, not only a process crash")

/** `--redis`, required (worker, ingest, dead letters). */
export const redis = requiredString("redis", "Redis URL: redis://[user:password@]host:port, rediss:// for TLS; its password is never printed")

/** Seconds between record compactions of the API's feeds (and merges of its indexes) where durable work runs. */
export const compactEvery = integer(
  "compact-every",
  "with durable work (Redis): seconds between record compactions of the API's feeds and merges of its search indexes, once per period across processes; 0 for none",
  600
)

/** The settings of durable messages an operator sets most (`serve --redis`, `worker`). */
export const durable = {
  durableAttempts: integer("durable-attempts", "with durable work (Redis): attempts of one durable message before it is dead-lettered", 10),
  durableDedupMs: integer("durable-dedup-ms", "with durable work (Redis): how long a durable send's id de-duplicates, ms", 86_400_000),
  durableLockMs: integer("durable-lock-ms", "with durable work (Redis): BullMQ lockDuration, after which a crashed worker's messages are taken over, ms", 30_000)
}

/** The durable settings the flags of `durable` give. */
export const durableConfig = (flags: { readonly durableAttempts: number; readonly durableDedupMs: number; readonly durableLockMs: number }) => ({
  attemptsMax: flags.durableAttempts,
  dedupWindowMillis: flags.durableDedupMs,
  lockDurationMillis: flags.durableLockMs
})

/** Splits `host:port` (IPv6 hosts in brackets). */
export const parseAddress = (text: string): { readonly host: string; readonly port: number } | string => {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text.trim())
  if (match === null) return `--http ${text} must be host:port`
  return { host: match[1] ?? match[2]!, port: Number(match[3]) }
}

/**
 * The config file's settings under their environment variables' names, or a message naming
 * the file and what is wrong: unreadable, not JSON, not an object, a key no command has, or a
 * value that is not a string, number or boolean.
 */
export const readConfigFile = (
  environment: NodeJS.ProcessEnv = process.env,
  exists: (path: string) => boolean = Fs.existsSync
): Record<string, string> | string => {
  const file = environment.SHARDFEED_CONFIG ?? (exists("shardfeed.json") ? "shardfeed.json" : undefined)
  if (file === undefined) return {}
  let parsed: unknown
  try {
    parsed = JSON.parse(Fs.readFileSync(file, "utf8"))
  } catch (error) {
    return `config file ${file}: ${(error as Error).message}`
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return `config file ${file}: must be a JSON object of settings`
  const out: Record<string, string> = {}
  for (const [key, value] of Object.entries(parsed)) {
    const env = known.get(key)
    if (env === undefined) return `config file ${file}: unknown setting "${key}" (known: ${[...known.keys()].sort().join(", ")})`
    if (typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean") {
      return `config file ${file}: "${key}" must be a string, number or boolean`
    }
    out[env] = String(value)
  }
  return out
}
