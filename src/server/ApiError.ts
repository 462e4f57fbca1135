/**
 * The HTTP error contract: every failure becomes `{"error": {"code", "message", "field"?}}` with
 * the status the contract gives its kind. Typed errors of the library map by their `_tag`; an
 * entity handler's own declared error keeps its tag as the code. Only a bug answers 500.
 */

/** An error answer. */
export interface ApiError {
  readonly status: number
  readonly code: string
  readonly message: string
  readonly field?: string | undefined
}

/** Makes an error answer. */
export const make = (status: number, code: string, message: string, field?: string): ApiError => ({ status, code, message, field })

const STATUS: Readonly<Record<string, number>> = {
  InvalidArgument: 400,
  InvalidMessage: 400,
  InvalidCursor: 400,
  InvalidQuery: 400,
  MalformedJson: 400,
  TimestampTooOld: 409,
  FeedNotFound: 404,
  EntryNotFound: 404,
  DocumentNotFound: 404,
  IndexNotFound: 404,
  DeadLetterNotFound: 404,
  DurableUnavailable: 503,
  InvalidDocument: 400,
  InvalidSchema: 400,
  DocumentTooLarge: 413,
  SchemaMismatch: 409,
  IndexExists: 409,
  UnknownEntityType: 404,
  NotFound: 404,
  MailboxFull: 429,
  Overloaded: 429,
  BufferFull: 429,
  ShardNotOwned: 503,
  EntityUnavailable: 503,
  AskTimeout: 503,
  OutcomeUnknown: 503,
  StoreUnavailable: 503,
  PauseFailed: 503,
  StoreClosed: 503,
  Fenced: 503,
  PoisonMessage: 500
}

const describe = (error: { readonly _tag: string } & Record<string, unknown>): string => {
  // Redis's own words say why; the answer says what it means for the caller.
  if (error._tag === "DurableUnavailable") return `Redis is not available for durable work right now; retry (${String(error.message ?? "")})`
  if (error._tag === "DeadLetterNotFound") return `no dead letter has the id ${String(error.id)}`
  if (typeof error.message === "string" && error.message.length > 0) return error.message
  switch (error._tag) {
    case "TimestampTooOld":
      return `timestamp ${error.timestamp} is older than the feed's last, ${error.last}`
    case "FeedNotFound":
      return `feed ${String(error.feed)} was never written`
    case "EntryNotFound":
      return `feed ${String(error.feed)} has no entry at offset ${String(error.offset)}`
    case "MailboxFull":
      return `the mailbox of ${String(error.entity)} is full (${String(error.capacity)} messages); retry later`
    case "Overloaded":
      return "the worker is overloaded; retry later"
    case "ShardNotOwned":
      return `shard ${String(error.shard)} is not available here right now; retry`
    case "AskTimeout":
      return `no reply from ${String(error.entity)} within ${String(error.timeoutMillis)} ms; retry`
    case "OutcomeUnknown":
      return `the message to ${String(error.entity)} may or may not have taken effect (${String(error.reason)}); it was not sent again: retry only if applying it twice is harmless (a feed append with a nonce is)`
    case "UnknownEntityType":
      return `no entity type named ${String(error.type)}`
    default:
      return error._tag
  }
}

/** The answer for a typed failure; `declaredStatus` applies to an entity's own declared errors. */
export const fromFailure = (error: unknown, declaredStatus = 409): ApiError => {
  if (typeof error === "object" && error !== null && typeof (error as { _tag?: unknown })._tag === "string") {
    const tagged = error as { readonly _tag: string } & Record<string, unknown>
    const status = STATUS[tagged._tag] ?? declaredStatus
    const field = typeof tagged.field === "string" ? tagged.field : undefined
    return make(status, tagged._tag, describe(tagged), field)
  }
  return make(500, "InternalError", "an unexpected error happened; it was logged")
}

/** The JSON body of an error answer. */
export const body = (error: ApiError): string =>
  JSON.stringify({ error: { code: error.code, message: error.message, ...(error.field === undefined ? {} : { field: error.field }) } })
