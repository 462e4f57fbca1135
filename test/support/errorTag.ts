/** What an exit ended with, for assertions: "success", its typed error's tag, or the cause as text. */
import { Cause, Exit } from "effect"

export const errorTag = (exit: Exit.Exit<unknown, unknown>): string => {
  if (Exit.isSuccess(exit)) return "success"
  const error = Cause.findErrorOption(exit.cause)
  return error._tag === "Some" ? (error.value as { _tag: string })._tag : Cause.pretty(exit.cause)
}
