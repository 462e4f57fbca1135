/**
 * The record of this process's shard holdings: for each shard it owns, the epoch and since when,
 * and for the last `HISTORY_MAX` holdings that ended, when they ended. A holding ends when the
 * shard is stopped, dropped or fenced, or at its lease deadline if that came first (after it the
 * runtime commits nothing for the shard). Each change also goes to the `HoldingsLog`, at once
 * and synchronously, so an audit of who could write each shard when survives even a SIGKILL.
 */
import { Context } from "effect"

/** One holding; `until` is the lease deadline (undefined when there is none) or its end. */
export interface Holding {
  readonly shard: number
  readonly epoch: number
  readonly since: number
  readonly until: number | undefined
  readonly ended: boolean
}

/** Receives every holding as it begins (`ended: false`) and as it ends. Must not throw. */
export type HoldingsLogShape = (holding: Holding) => void

/** Where holdings are logged (default: nowhere). */
export const HoldingsLog: Context.Reference<HoldingsLogShape> = Context.Reference<HoldingsLogShape>("shardfeed/HoldingsLog", {
  defaultValue: () => () => {}
})

/** Ended holdings kept. */
export const HISTORY_MAX = 4_096

/** Current and recently ended holdings. */
export class Holdings {
  private readonly current = new Map<number, { epoch: number; since: number }>()
  private readonly history: Array<Holding> = []

  constructor(
    private readonly deadlineOf: (shard: number) => number | undefined,
    private readonly now: () => number,
    private readonly log: HoldingsLogShape
  ) {}

  begin(shard: number, epoch: number): void {
    this.end(shard)
    const since = this.now()
    this.current.set(shard, { epoch, since })
    this.log({ shard, epoch, since, until: undefined, ended: false })
  }

  end(shard: number): void {
    const holding = this.current.get(shard)
    if (holding === undefined) return
    this.current.delete(shard)
    const deadline = this.deadlineOf(shard)
    const now = this.now()
    const ended: Holding = { shard, epoch: holding.epoch, since: holding.since, until: deadline === undefined ? now : Math.min(now, deadline), ended: true }
    this.history.push(ended)
    if (this.history.length > HISTORY_MAX) this.history.splice(0, this.history.length - HISTORY_MAX)
    this.log(ended)
  }

  snapshot(): ReadonlyArray<Holding> {
    const live = [...this.current].map(([shard, { epoch, since }]): Holding => ({ shard, epoch, since, until: this.deadlineOf(shard), ended: false }))
    return [...this.history, ...live]
  }
}
