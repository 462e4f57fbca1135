/**
 * Every Redis key name of durable work, built in this one module (as BullMQ does for its own).
 * All of them live under the BullMQ queue's own prefix, `<prefix>:<queue>:`, so they share the
 * queue's hash tag on a Redis Cluster and the Lua scripts may touch them together with BullMQ's
 * job hashes. BullMQ job ids never contain `:` (BullMQ refuses it), so `<prefix>:<queue>:sf:...`
 * can never collide with a job's key `<prefix>:<queue>:<jobId>`.
 *
 *   <q>:sf:l:<type>:<entity>   ZSET  the entity's lane: unfinished message (job) ids, scored by arrival
 *   <q>:sf:m:<type>:<entity>   HASH  the lane's meta: `seq` (arrival counter), `head` and `starts`
 *                                     (attempts begun on the head), `retryAt`, `p:<job>` (parked)
 *   <q>:sf:lanes               ZSET  the open-lane registry: lane ids (`<type>:<entity>`) by the
 *                                     time of their last claim (ms); the sweep reads it
 *   <q>:sf:dl:data             HASH  dead-letter id -> JSON record
 *   <q>:sf:dl:all              ZSET  dead-letter ids by dead-letter sequence (listing, all types)
 *   <q>:sf:dl:t:<type>         ZSET  dead-letter ids of one entity type by sequence
 *   <q>:sf:dl:seq              STRING the dead-letter sequence
 *   <q>:sf:lease               STRING the ingest bridge's consumer lease (holder token, with a TTL)
 *   <q>:sf:runs                HASH  maintenance task id -> JSON of its last run on any process
 *   <q>:<jobId>                HASH  (BullMQ's) a job; read by the claim script only
 *   <q>:failed                 ZSET  (BullMQ's) failed jobs; read by the claim script only
 *
 * Entity types never contain `:`, so `<type>:<entity>` is unambiguous whatever the entity id holds.
 * The batch scripts receive lane ids (`<type>:<entity>`) rather than two full key names per lane
 * and build the lane keys from the prefix, as BullMQ's scripts build job keys: the prefix carries
 * the queue's hash tag on a Redis Cluster, so the keys built share the declared keys' slot.
 */

/** The key names of one queue. */
export interface DurableKeys {
  /** `<prefix>:<queue>:`, the prefix of BullMQ's job hashes. */
  readonly jobPrefix: string
  /** `<prefix>:<queue>:sf:`, the prefix of this module's keys (scripts build lane keys from it). */
  readonly ownPrefix: string
  /** The lane id `<type>:<entity>` that scripts turn into `<own>l:<id>` and `<own>m:<id>`. */
  readonly laneId: (type: string, entity: string) => string
  readonly lane: (type: string, entity: string) => string
  readonly laneMeta: (type: string, entity: string) => string
  /** BullMQ's failed set of the queue. */
  readonly failed: string
  readonly deadLetterData: string
  readonly deadLetterAll: string
  readonly deadLetterType: (type: string) => string
  readonly deadLetterSequence: string
  readonly lease: string
  /** Each maintenance task's last run, on whichever process ran it. */
  readonly lastRuns: string
  /** The open-lane registry (lane id -> ms of its last claim). */
  readonly openLanes: string
}

/** The keys of queue `queue` under BullMQ prefix `prefix`. */
export const make = (prefix: string, queue: string): DurableKeys => {
  const jobPrefix = `${prefix}:${queue}:`
  const own = `${jobPrefix}sf:`
  return {
    jobPrefix,
    ownPrefix: own,
    laneId: (type, entity) => `${type}:${entity}`,
    lane: (type, entity) => `${own}l:${type}:${entity}`,
    laneMeta: (type, entity) => `${own}m:${type}:${entity}`,
    failed: `${jobPrefix}failed`,
    deadLetterData: `${own}dl:data`,
    deadLetterAll: `${own}dl:all`,
    deadLetterType: (type) => `${own}dl:t:${type}`,
    deadLetterSequence: `${own}dl:seq`,
    lease: `${own}lease`,
    lastRuns: `${own}runs`,
    openLanes: `${own}lanes`
  }
}
