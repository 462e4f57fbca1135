/**
 * Parsers of the ingest bridge: where in a BullMQ job the bridge finds an entry's keyspace, feed,
 * nonce, timestamp and value. A parser is one of `Static(s)`, `JobName`, `JobId`, `Data(path)`
 * (a field of the job's data by dotted path; `Data` alone is the whole data), `Header(name)` (a
 * field of a `headers` object in the data), `JobTimestamp` (numbers only) and `None` (nonce,
 * timestamp and keyspace only). They are written as text on the command line and as values in
 * the layer's options; both go through `parse`, which names the field of a bad one.
 *
 * Evaluating parsers over a job never throws: a job that does not fit answers a reason, which the
 * bridge records as the job's failure. This module knows nothing of BullMQ beyond `JobView`.
 */
import { InvalidArgument } from "../../persistence/StoreError.js"

/** Where to find one piece of an entry in a job. */
export type Parser =
  | { readonly _tag: "Static"; readonly value: string }
  | { readonly _tag: "JobName" }
  | { readonly _tag: "JobId" }
  | { readonly _tag: "Data"; readonly path: ReadonlyArray<string> }
  | { readonly _tag: "Header"; readonly name: string }
  | { readonly _tag: "JobTimestamp" }
  | { readonly _tag: "None" }

/** A fixed text. */
export const Static = (value: string): Parser => ({ _tag: "Static", value })
/** The job's name. */
export const JobName: Parser = { _tag: "JobName" }
/** The job's id. */
export const JobId: Parser = { _tag: "JobId" }
/** A field of the job's data by dotted path (`Data()` is the whole data). */
export const Data = (path = ""): Parser => ({ _tag: "Data", path: path === "" ? [] : path.split(".") })
/** A field of the `headers` object in the job's data. */
export const Header = (name: string): Parser => ({ _tag: "Header", name })
/** The job's creation time, in milliseconds since the epoch (numbers only). */
export const JobTimestamp: Parser = { _tag: "JobTimestamp" }
/** Nothing: no nonce, no timestamp, or no keyspace. */
export const None: Parser = { _tag: "None" }

/** What each piece of an entry may be parsed with. */
export type Role = "keyspace" | "feed" | "nonce" | "timestamp" | "value"

const ALLOWED: Readonly<Record<Role, ReadonlyArray<Parser["_tag"]>>> = {
  keyspace: ["Static", "JobName", "JobId", "Data", "Header", "None"],
  feed: ["Static", "JobName", "JobId", "Data", "Header"],
  nonce: ["Static", "JobName", "JobId", "Data", "Header", "JobTimestamp", "None"],
  timestamp: ["Static", "Data", "Header", "JobTimestamp", "None"],
  value: ["Data"]
}

/** The longest parser text and dotted path; a job's data is never walked deeper. */
const TEXT_MAX = 1_024
const PATH_DEPTH_MAX = 32

/** Shows a parser as it is written. */
export const format = (parser: Parser): string => {
  switch (parser._tag) {
    case "Static":
      return `Static(${parser.value})`
    case "Data":
      return parser.path.length === 0 ? "Data" : `Data(${parser.path.join(".")})`
    case "Header":
      return `Header(${parser.name})`
    default:
      return parser._tag
  }
}

/** Parses parser text (`Data(user.id)`) for `role`, or names what is wrong with it. */
export const parse = (text: string, role: Role): Parser | InvalidArgument => {
  const bad = (message: string) => new InvalidArgument({ field: role, message })
  if (typeof text !== "string" || text.length === 0 || text.length > TEXT_MAX) return bad(`must be a parser of 1 to ${TEXT_MAX} characters`)
  const match = /^([A-Za-z]+)(?:\((.*)\))?$/s.exec(text.trim())
  if (match === null) return bad(`"${text}" is not a parser: use Static(s), JobName, JobId, Data(path), Header(name), JobTimestamp or None`)
  const [, name, argument] = match
  let parser: Parser
  switch (name) {
    case "Static":
      if (argument === undefined) return bad("Static needs its text: Static(s)")
      parser = Static(argument)
      break
    case "Data":
      if (argument !== undefined && (argument.split(".").some((part) => part.length === 0) || argument.split(".").length > PATH_DEPTH_MAX)) {
        return bad(`Data(${argument}) needs a dotted path of 1 to ${PATH_DEPTH_MAX} non-empty names`)
      }
      parser = Data(argument ?? "")
      break
    case "Header":
      if (argument === undefined || argument.length === 0) return bad("Header needs a name: Header(name)")
      parser = Header(argument)
      break
    case "JobName":
    case "JobId":
    case "JobTimestamp":
    case "None":
      if (argument !== undefined) return bad(`${name} takes no argument`)
      parser = { _tag: name }
      break
    default:
      return bad(`unknown parser ${name}: use Static(s), JobName, JobId, Data(path), Header(name), JobTimestamp or None`)
  }
  return ALLOWED[role].includes(parser._tag) ? parser : bad(`${format(parser)} cannot give the ${role} (allowed: ${ALLOWED[role].join(", ")})`)
}

/** Checks a parser given as a value for `role` (the layer's options accept both forms). */
export const from = (given: Parser | string, role: Role): Parser | InvalidArgument =>
  typeof given === "string" ? parse(given, role) : parse(format(given), role)

/** What parsers read of a job. */
export interface JobView {
  readonly name: string
  readonly id: string | undefined
  /** Milliseconds since the epoch. */
  readonly timestamp: number
  readonly data: unknown
}

const MISSING: unique symbol = Symbol("missing")

const walk = (data: unknown, path: ReadonlyArray<string>): unknown => {
  let current = data
  for (const part of path) {
    if (typeof current !== "object" || current === null || Array.isArray(current) || !Object.prototype.hasOwnProperty.call(current, part)) return MISSING
    current = (current as Record<string, unknown>)[part]
  }
  return current === undefined ? MISSING : current
}

/** The raw value a parser finds in a job (`MISSING` when it finds nothing, undefined for `None`). */
const evaluate = (parser: Parser, job: JobView): unknown => {
  switch (parser._tag) {
    case "Static":
      return parser.value
    case "JobName":
      return job.name
    case "JobId":
      return job.id ?? MISSING
    case "Data":
      return walk(job.data, parser.path)
    case "Header":
      return walk(job.data, ["headers", parser.name])
    case "JobTimestamp":
      return job.timestamp
    case "None":
      return undefined
  }
}

/** The parsers of one bridge. */
export interface Parsers {
  readonly keyspace: Parser
  readonly feed: Parser
  readonly nonce: Parser
  readonly timestamp: Parser
  readonly value: Parser
}

/** One entry parsed out of a job. */
export interface ParsedEntry {
  /** `keyspace/feed`, or the feed alone without a keyspace. */
  readonly feed: string
  readonly value: unknown
  readonly nonce: number | string | undefined
  readonly timestamp: number | undefined
}

/** A job that does not fit the parsers, and why. */
export class Unparsable {
  readonly _tag = "Unparsable"
  constructor(readonly reason: string) {}
}

const text = (value: unknown): string | undefined =>
  typeof value === "string" ? value : typeof value === "number" && Number.isFinite(value) ? String(value) : undefined

/** Parses one job into an entry, or says why it cannot be. */
export const parseJob = (parsers: Parsers, job: JobView): ParsedEntry | Unparsable => {
  const missing = (role: Role, parser: Parser) => new Unparsable(`${role}: ${format(parser)} found nothing in job ${job.id ?? "?"}`)
  const keyspaceRaw = evaluate(parsers.keyspace, job)
  if (keyspaceRaw === MISSING) return missing("keyspace", parsers.keyspace)
  const keyspace = keyspaceRaw === undefined ? "" : text(keyspaceRaw)
  if (keyspace === undefined) return new Unparsable(`keyspace: ${format(parsers.keyspace)} is not a string or number`)
  if (keyspace.includes("/")) return new Unparsable(`keyspace: "${keyspace.slice(0, 64)}" contains "/", which separates the keyspace from the feed`)
  const feedRaw = evaluate(parsers.feed, job)
  if (feedRaw === MISSING) return missing("feed", parsers.feed)
  const feedName = text(feedRaw)
  if (feedName === undefined || feedName.length === 0) return new Unparsable(`feed: ${format(parsers.feed)} is not a non-empty string or number`)
  const nonceRaw = evaluate(parsers.nonce, job)
  if (nonceRaw === MISSING) return missing("nonce", parsers.nonce)
  if (nonceRaw !== undefined && typeof nonceRaw !== "number" && typeof nonceRaw !== "string") {
    return new Unparsable(`nonce: ${format(parsers.nonce)} is not a number or a decimal string`)
  }
  const timestampRaw = evaluate(parsers.timestamp, job)
  if (timestampRaw === MISSING) return missing("timestamp", parsers.timestamp)
  const timestamp = timestampRaw === undefined ? undefined : typeof timestampRaw === "string" && /^[0-9]{1,16}$/.test(timestampRaw) ? Number(timestampRaw) : timestampRaw
  if (timestamp !== undefined && typeof timestamp !== "number") return new Unparsable(`timestamp: ${format(parsers.timestamp)} is not milliseconds since the epoch`)
  const value = evaluate(parsers.value, job)
  if (value === MISSING) return missing("value", parsers.value)
  return { feed: keyspace === "" ? feedName : `${keyspace}/${feedName}`, value, nonce: nonceRaw as number | string | undefined, timestamp }
}
