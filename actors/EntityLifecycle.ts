/**
 * The lifecycle of one entity activation, as an explicit state machine. Every change of state
 * goes through `transition`, which refuses (as a defect: a bug in the runtime) any move that is
 * not in the table.
 *
 *        activate              recovered
 *   ──────────────▶ activating ─────────▶ active ◀───────────┐
 *                      │  ▲                 │  │             │ recovered
 *       recovery failed│  │                 │  └──▶ restarting
 *                      ▼  │     crash or failed commit ▲  │
 *                   restarting ◀────────────┘          │  │
 *                      │                                   │
 *     idle / shard stop│   active ─▶ passivating ─▶ stopped
 *                      └──────────────▲
 */

/** The states of an activation. */
export type State = "activating" | "active" | "restarting" | "passivating" | "stopped"

/** The legal transitions, from each state. */
export const transitions: { readonly [From in State]: ReadonlyArray<State> } = {
  activating: ["active", "restarting", "passivating"],
  active: ["restarting", "passivating"],
  restarting: ["active", "restarting", "passivating"],
  passivating: ["stopped"],
  stopped: []
}

/** An illegal lifecycle transition: a defect of the runtime, never an operating error. */
export class IllegalTransition extends Error {
  constructor(readonly entity: string, readonly from: State, readonly to: State) {
    super(`illegal lifecycle transition of ${entity}: ${from} -> ${to}`)
    this.name = "IllegalTransition"
  }
}

/** Whether `from -> to` is legal. */
export const isLegal = (from: State, to: State): boolean => transitions[from].includes(to)

/** Returns `to`, or throws `IllegalTransition` for a move outside the table. */
export const transition = (entity: string, from: State, to: State): State => {
  if (!isLegal(from, to)) throw new IllegalTransition(entity, from, to)
  return to
}
