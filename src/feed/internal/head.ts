/**
 * A feed's head: its counters and bounds, one small record rewritten with every change. The
 * generation grows when the feed is deleted, so records of a deleted feed can never be mistaken
 * for a new feed's while they are purged in the background.
 */

/** The head of a feed. */
export interface Head {
  generation: number
  /** The offset the next appended entry gets (1 for a feed never written since its creation or deletion). */
  nextOffset: number
  count: number
  bytes: number
  firstOffset: number | null
  lastOffset: number | null
  minTimestamp: number | null
  maxTimestamp: number | null
  /** The timestamp of the last appended entry, live or not (timestamps never go back). */
  lastTimestamp: number
  /** The last accepted nonce, as a decimal string. */
  lastNonce: string | null
}

/** The head of a feed that was never written. */
export const empty = (generation = 1): Head => ({
  generation,
  nextOffset: 1,
  count: 0,
  bytes: 0,
  firstOffset: null,
  lastOffset: null,
  minTimestamp: null,
  maxTimestamp: null,
  lastTimestamp: 0,
  lastNonce: null
})

/** Whether a feed with this head exists (was written since it was created or deleted). */
export const exists = (head: Head): boolean => head.nextOffset > 1

/** Encodes a head. */
export const encode = (head: Head): string => JSON.stringify(head)

/** Decodes a stored head; a malformed one is a defect (the store is corrupt). */
export const decode = (bytes: Uint8Array): Head => {
  const head = JSON.parse(Buffer.from(bytes).toString("utf8")) as Head
  if (typeof head.generation !== "number" || typeof head.nextOffset !== "number") throw new Error("malformed feed head")
  return head
}
