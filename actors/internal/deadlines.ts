/**
 * Deadlines for many short-lived waits (ask timeouts) without a timer each. Waits with the same
 * timeout are kept in one insertion-ordered set, which is therefore ordered by deadline too, so a
 * tick only looks at the front of each set; a wait settled early is removed at once (O(1)), so
 * memory holds only the waits in flight. The owner drives `tick` from one repeating timer.
 */

/** A wait that can expire. */
export interface Expirable {
  readonly deadline: number
  expire(): void
}

/** In-flight waits, grouped by timeout. */
export class Deadlines<E extends Expirable> {
  private readonly queues = new Map<number, Set<E>>()
  private count = 0

  constructor(private readonly capacity: number) {}

  /** Adds a wait with `timeoutMillis`; returns false when `capacity` waits are already in flight. */
  add(timeoutMillis: number, entry: E): boolean {
    if (this.count >= this.capacity) return false
    let queue = this.queues.get(timeoutMillis)
    if (queue === undefined) {
      queue = new Set()
      this.queues.set(timeoutMillis, queue)
    }
    queue.add(entry)
    this.count++
    return true
  }

  /** Removes a wait that settled before its deadline. */
  remove(timeoutMillis: number, entry: E): void {
    if (this.queues.get(timeoutMillis)?.delete(entry) === true) this.count--
  }

  /** Expires every wait due at `now`, oldest first. */
  tick(now: number): void {
    for (const [timeout, queue] of this.queues) {
      for (const entry of queue) {
        if (entry.deadline > now) break
        queue.delete(entry)
        this.count--
        entry.expire()
      }
      if (queue.size === 0) this.queues.delete(timeout)
    }
  }

  /** Waits in flight. */
  get size(): number {
    return this.count
  }
}
