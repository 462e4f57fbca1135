/**
 * Group commit of Redis calls: requests are sent together (one round of calls for many sends),
 * with at most `inFlightMax` calls in flight; requests arriving meanwhile wait and go out together
 * when one returns, so batches grow with the load without a timer (the runtime's group commit
 * works the same way). The Node process is what limits BullMQ throughput, and one call for fifty
 * requests costs little more than one call for one. Each batch is bounded; Redis runs the calls
 * of one connection in the order they were sent, so a batch never overtakes an earlier one.
 */

/** A request the batcher could not take: too many were already waiting. */
export class BatcherFull extends Error {
  readonly _tag = "BatcherFull"
}

interface Pending<I, O> {
  readonly item: I
  readonly resolve: (value: O) => void
  readonly reject: (error: unknown) => void
}

/** Collects requests and flushes them as batches of at most `batchMax`. */
export class Batcher<I, O> {
  private pending: Array<Pending<I, O>> = []
  private scheduled = false
  private waiting = 0
  private inFlight = 0

  constructor(
    private readonly flushBatch: (items: ReadonlyArray<I>) => Promise<ReadonlyArray<O>>,
    private readonly batchMax: number,
    /** Requests waiting at most (queued and in flight); past it `submit` rejects with `BatcherFull`. */
    private readonly waitingMax: number,
    /** Calls in flight at most. */
    private readonly inFlightMax = 1
  ) {}

  /** Number of requests queued or in flight. */
  get size(): number {
    return this.waiting
  }

  submit(item: I): Promise<O> {
    if (this.waiting >= this.waitingMax) return Promise.reject(new BatcherFull(`more than ${this.waitingMax} requests waiting`))
    this.waiting++
    return new Promise<O>((resolve, reject) => {
      this.pending.push({ item, resolve, reject })
      this.schedule()
    })
  }

  /** Flushes at the end of this turn of the event loop, so requests made in it go together. */
  private schedule(): void {
    if (this.scheduled) return
    this.scheduled = true
    setImmediate(() => {
      this.scheduled = false
      this.flush()
    })
  }

  private flush(): void {
    // Bounded: each call takes at most `batchMax` requests, and at most `inFlightMax` calls run.
    while (this.pending.length > 0 && this.inFlight < this.inFlightMax) {
      const batch = this.pending.splice(0, this.batchMax)
      this.inFlight++
      let started: Promise<ReadonlyArray<O>>
      try {
        started = this.flushBatch(batch.map((pending) => pending.item))
      } catch (error) {
        started = Promise.reject(error)
      }
      started.then(
        (results) => {
          for (let i = 0; i < batch.length; i++) batch[i]!.resolve(results[i]!)
        },
        (error: unknown) => {
          for (const pending of batch) pending.reject(error)
        }
      ).finally(() => {
        this.waiting -= batch.length
        this.inFlight--
        // What arrived meanwhile goes out now, as one batch.
        if (this.pending.length > 0) this.schedule()
      })
    }
  }
}
