/**
 * Names the field a Schema decode failure is about, as the error contract wants it
 * (`members[0].score`), by following the first path through the failure's issue tree.
 */
import type { Schema } from "effect"

interface IssueLike {
  readonly _tag?: string
  readonly path?: ReadonlyArray<PropertyKey>
  readonly issue?: IssueLike
  readonly issues?: ReadonlyArray<IssueLike>
}

/** The dotted path of the first failing field, below `prefix`. */
export const fieldOf = (error: Schema.SchemaError, prefix = ""): string => {
  let field = prefix
  let issue: IssueLike | undefined = error.issue as IssueLike
  // Issue trees are finite and shallow (one level per nesting of the data); 64 levels is plenty.
  for (let depth = 0; issue !== undefined && depth < 64; depth++) {
    if (issue._tag === "Pointer" && issue.path !== undefined) {
      for (const key of issue.path) field += typeof key === "number" ? `[${key}]` : field.length === 0 ? String(key) : `.${String(key)}`
    }
    issue = issue.issue ?? issue.issues?.[0]
  }
  return field.length === 0 ? "body" : field
}

/** The first line of a Schema failure's message (the rest repeats the path). */
export const messageOf = (error: Schema.SchemaError): string => error.message.split("\n")[0] ?? error.message
