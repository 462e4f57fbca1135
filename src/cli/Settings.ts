/**
 * Flags shared by commands, each with its environment variable (and config-file key) fallback
 * and its default, which `--help` shows.
 */
import { Config } from "effect"
import { Flag } from "effect/cli"

/** `--data`: the LevelDB directory. */
export const data = Flag.String("data").pipe(
  Flag.withDescription("LevelDB directory of the node's data (env SHARDFEED_DATA; default ./data)"),
  Flag.withFallbackConfig(Config.String("SHARDFEED_DATA")),
  Flag.withDefault("./data")
)

/** `--http`: where the HTTP API listens. */
export const http = Flag.String("http").pipe(
  Flag.withDescription("host:port of the HTTP API (env SHARDFEED_HTTP; default 127.0.0.1:7070)"),
  Flag.withFallbackConfig(Config.String("SHARDFEED_HTTP")),
  Flag.withDefault("127.0.0.1:7070")
)

/** `--token`: the API token. */
export const token = Flag.String("token").pipe(
  Flag.withDescription("require this token on every route but /health (env SHARDFEED_TOKEN; default none, loopback only)"),
  Flag.withFallbackConfig(Config.String("SHARDFEED_TOKEN")),
  Flag.optional
)

/** Seconds between record compactions of the API's feeds where durable work runs. */
export const compactEvery = Flag.Int("compact-every").pipe(
  Flag.withDescription("with durable work (Redis): seconds between record compactions of the API's feeds, once per period across processes; 0 for none (default 600)"),
  Flag.withDefault(600)
)

/** Splits `host:port` (IPv6 hosts in brackets). */
export const parseAddress = (text: string): { readonly host: string; readonly port: number } | string => {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text.trim())
  if (match === null) return `--http ${text} must be host:port`
  return { host: match[1] ?? match[2]!, port: Number(match[3]) }
}
