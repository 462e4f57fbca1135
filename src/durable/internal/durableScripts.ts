/**
 * The Lua scripts of durable work. Each opens with its purpose, its KEYS and ARGV (with units) and
 * its return value; the key count is in the name.
 * Batch scripts handle many entities in one call because the Node process, not Redis, is the
 * bottleneck of BullMQ work: one call for 50 lanes costs little more than one call for one.
 *
 * The lane invariant they keep together (see `src/durable/README.md`): an entity's lane holds the
 * ids of its unfinished messages in arrival order; only the head may be delivered; a message
 * leaves the lane only once BullMQ has finished it (completed or failed) or it was dead-lettered.
 * Scripts read BullMQ's own job hashes (`<prefix>:<queue>:<jobId>`, field `finishedOn`) and its
 * failed set, computing job keys from the prefix: they share the queue's hash tag, so this holds
 * on a Redis Cluster too, as in BullMQ's own scripts.
 */

/** The loop bound of every script: lanes per call, stale heads skipped per lane, evictions per call. */
export const BATCH_MAX = 512

/**
 * link-1: registers messages in their entities' lanes, in the order given (arrival order).
 *
 * KEYS[1]              this module's key prefix marker: the dead-letter data HASH (declared so
 *                      the script runs on the queue's slot; lane keys are built from ARGV[1])
 * ARGV[1]              this module's key prefix (`<prefix>:<queue>:sf:`)
 * ARGV[2]              BullMQ job key prefix (`<prefix>:<queue>:`)
 * ARGV[2i+1], ARGV[2i+2]  lane id (`<type>:<entity>`) and job id of item i (i = 1..n)
 *
 * Returns the number of messages registered. A message already registered (its consumer was
 * faster) or whose job BullMQ already finished (a late link must not leave a stale head) or never
 * created (a duplicate's generated id) is left alone.
 */
export const link = `
local own, prefix = ARGV[1], ARGV[2]
local registered = 0
for i = 3, #ARGV, 2 do
  local lane, meta, job = own .. 'l:' .. ARGV[i], own .. 'm:' .. ARGV[i], ARGV[i + 1]
  if not redis.call('ZSCORE', lane, job) then
    local jobKey = prefix .. job
    if redis.call('EXISTS', jobKey) == 1 and redis.call('HEXISTS', jobKey, 'finishedOn') == 0 then
      redis.call('ZADD', lane, redis.call('HINCRBY', meta, 'seq', 1), job)
      registered = registered + 1
    end
  end
end
return registered
`

/**
 * claim-3: asks whether each message may be delivered now, registering it if its sender crashed
 * before linking it. Heads that BullMQ already finished are dropped from the lane on the way (the
 * completion's release may not have run: a crash, or it is still in flight). Each lane claimed is
 * (re)registered in the open-lane registry with the time of the claim, which the sweep reads.
 *
 * KEYS[1]              dead-letter data HASH
 * KEYS[2]              BullMQ's failed ZSET of the queue
 * KEYS[3]              the open-lane registry ZSET (lane id -> ms of its last claim)
 * ARGV[1]              this module's key prefix (`<prefix>:<queue>:sf:`)
 * ARGV[2]              BullMQ job key prefix
 * ARGV[3]              now (ms since the epoch)
 * ARGV[3i+1], ARGV[3i+2], ARGV[3i+3]  lane id, job id, and 1 to mark the message parked if it
 *                      must wait (else 0), of item i (i = 1..n)
 *
 * Returns one value per item (flat, cheap to decode):
 *   starts (integer >= 1)     RUN: the message heads its lane; attempts begun on it, this one included
 *   -1                        DEAD: dead-lettered already (a crash hit between that and BullMQ)
 *   'w<retryAt>:<head>'       WAIT: `head` comes first; retryAt (ms since the epoch, 0 if unknown) is its next attempt
 *   'f<head>'                 FAILED_HEAD: BullMQ failed `head` by itself (stall limit); dead-letter it first
 */
export const claim = `
local dead, failed, open, own, prefix, now = KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3]
local out = {}
for i = 4, #ARGV, 3 do
  local lane, meta = own .. 'l:' .. ARGV[i], own .. 'm:' .. ARGV[i]
  local job, park = ARGV[i + 1], ARGV[i + 2]
  local result
  if redis.call('HEXISTS', dead, job) == 1 then
    result = -1
  else
    redis.call('ZADD', open, now, ARGV[i])
    if not redis.call('ZSCORE', lane, job) then
      redis.call('ZADD', lane, redis.call('HINCRBY', meta, 'seq', 1), job)
    end
    for step = 1, ${BATCH_MAX} do
      local head = redis.call('ZRANGE', lane, 0, 0)[1]
      if head == nil then break end
      if head == job then
        if redis.call('HGET', meta, 'head') == job then
          result = redis.call('HINCRBY', meta, 'starts', 1)
        else
          redis.call('HSET', meta, 'head', job, 'starts', 1, 'retryAt', 0)
          result = 1
        end
        redis.call('HDEL', meta, 'p:' .. job)
        break
      end
      local headKey = prefix .. head
      if redis.call('EXISTS', headKey) == 0 then
        redis.call('ZREM', lane, head)
        redis.call('HDEL', meta, 'p:' .. head)
      elseif redis.call('HEXISTS', headKey, 'finishedOn') == 1 then
        if redis.call('ZSCORE', failed, head) and redis.call('HEXISTS', dead, head) == 0 then
          result = 'f' .. head
          break
        end
        redis.call('ZREM', lane, head)
        redis.call('HDEL', meta, 'p:' .. head)
      else
        if park == '1' then redis.call('HSET', meta, 'p:' .. job, 1) end
        local retryAt = '0'
        if redis.call('HGET', meta, 'head') == head then retryAt = redis.call('HGET', meta, 'retryAt') or '0' end
        result = 'w' .. retryAt .. ':' .. head
        break
      end
    end
    if result == nil then result = 'w0:' end
  end
  out[#out + 1] = result
end
return out
`

/**
 * release-2: removes finished messages from their lanes and names each lane's new head.
 *
 * KEYS[1]              the dead-letter data HASH (declared for the slot; lane keys come from ARGV[1])
 * KEYS[2]              the open-lane registry ZSET
 * ARGV[1]              this module's key prefix (`<prefix>:<queue>:sf:`)
 * ARGV[2i], ARGV[2i+1]  lane id and job id of item i (BullMQ has finished the job)
 *
 * Returns one string per item: '' when the lane emptied (the lane and its meta are then deleted,
 * and it leaves the registry), else 'p<head>' if the new head is parked (its releaser should
 * promote it) or 'h<head>'.
 */
export const release = `
local open, own = KEYS[2], ARGV[1]
local out = {}
for i = 2, #ARGV, 2 do
  local lane, meta, job = own .. 'l:' .. ARGV[i], own .. 'm:' .. ARGV[i], ARGV[i + 1]
  redis.call('ZREM', lane, job)
  redis.call('HDEL', meta, 'p:' .. job)
  local head = redis.call('ZRANGE', lane, 0, 0)[1]
  if head == nil then
    redis.call('DEL', lane, meta)
    redis.call('ZREM', open, ARGV[i])
    out[#out + 1] = ''
  elseif redis.call('HEXISTS', meta, 'p:' .. head) == 1 then
    out[#out + 1] = 'p' .. head
  else
    out[#out + 1] = 'h' .. head
  end
end
return out
`

/**
 * deadLetter-7: moves a message out of its lane into the dead letters of its type, and names the
 * lane's new head (as release does). Past the per-type bound the oldest dead letters are dropped.
 *
 * KEYS[1], KEYS[2]  lane ZSET and lane meta HASH
 * KEYS[3]           dead-letter data HASH
 * KEYS[4]           the type's dead-letter ZSET
 * KEYS[5]           all dead letters ZSET
 * KEYS[6]           dead-letter sequence
 * KEYS[7]           the open-lane registry ZSET
 * ARGV[1]           job id (the dead letter's id)
 * ARGV[2]           the dead letter's JSON record
 * ARGV[3]           dead letters kept per type
 * ARGV[4]           the lane id (`<type>:<entity>`)
 *
 * Returns {newHead, parked, dropped}: as release, plus how many old dead letters were dropped.
 */
export const deadLetter = `
local lane, meta, data, byType, all, sequence, open = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local job, record, keep, laneId = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
redis.call('ZREM', lane, job)
redis.call('HDEL', meta, 'p:' .. job)
local dropped = 0
if redis.call('HEXISTS', data, job) == 0 then
  redis.call('HSET', data, job, record)
  local seq = redis.call('INCR', sequence)
  redis.call('ZADD', byType, seq, job)
  redis.call('ZADD', all, seq, job)
  local excess = redis.call('ZCARD', byType) - keep
  if excess > 0 then
    local old = redis.call('ZRANGE', byType, 0, math.min(excess, ${BATCH_MAX}) - 1)
    for _, id in ipairs(old) do
      redis.call('HDEL', data, id)
      redis.call('ZREM', byType, id)
      redis.call('ZREM', all, id)
      dropped = dropped + 1
    end
  end
end
local head = redis.call('ZRANGE', lane, 0, 0)[1]
if head == nil then
  redis.call('DEL', lane, meta)
  redis.call('ZREM', open, laneId)
  return {'', 0, dropped}
end
return {head, redis.call('HEXISTS', meta, 'p:' .. head), dropped}
`

/**
 * sweep-3: looks at lanes no claim touched since `staleBefore`, oldest first, and drops the heads
 * BullMQ has finished (a worker crashed between finishing a message and releasing it, so nothing
 * else would). A lane left empty is deleted and leaves the registry; any other lane is registered
 * again with `now`, so one pass looks at each lane once.
 *
 * KEYS[1]  the open-lane registry ZSET (lane id -> ms of its last claim)
 * KEYS[2]  BullMQ's failed ZSET of the queue
 * KEYS[3]  dead-letter data HASH
 * ARGV[1]  this module's key prefix (`<prefix>:<queue>:sf:`)
 * ARGV[2]  BullMQ job key prefix
 * ARGV[3]  look at lanes last claimed at or before this time (ms since the epoch)
 * ARGV[4]  now (ms since the epoch)
 * ARGV[5]  lanes to look at, at most (1 to ${BATCH_MAX})
 *
 * Returns a flat array: lane id, verdict, lane id, verdict, ... where the verdict is '' (the lane
 * emptied and was deleted), 'p<head>' (its head sleeps parked: promote it), 'f<head>' (BullMQ
 * failed the head by itself: dead-letter it) or 'h<head>' (a live head, left alone), with the
 * number of finished heads dropped after the last pair.
 */
export const sweep = `
local open, failed, dead, own, prefix = KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2]
local now, limit = ARGV[4], math.min(tonumber(ARGV[5]), ${BATCH_MAX})
local ids = redis.call('ZRANGEBYSCORE', open, '-inf', ARGV[3], 'LIMIT', 0, limit)
local out = {}
local dropped = 0
for _, id in ipairs(ids) do
  local lane, meta = own .. 'l:' .. id, own .. 'm:' .. id
  local verdict
  for step = 1, ${BATCH_MAX} do
    local head = redis.call('ZRANGE', lane, 0, 0)[1]
    if head == nil then
      redis.call('DEL', lane, meta)
      redis.call('ZREM', open, id)
      verdict = ''
      break
    end
    local headKey = prefix .. head
    local finished = redis.call('EXISTS', headKey) == 0 or redis.call('HEXISTS', headKey, 'finishedOn') == 1
    if finished and redis.call('ZSCORE', failed, head) and redis.call('HEXISTS', dead, head) == 0 then
      verdict = 'f' .. head
      break
    end
    if not finished then
      if redis.call('HEXISTS', meta, 'p:' .. head) == 1 then verdict = 'p' .. head else verdict = 'h' .. head end
      break
    end
    redis.call('ZREM', lane, head)
    redis.call('HDEL', meta, 'p:' .. head)
    dropped = dropped + 1
  end
  -- The step bound reached: the rest waits for the next pass.
  if verdict == nil then verdict = 'h' end
  if verdict ~= '' then redis.call('ZADD', open, now, id) end
  out[#out + 1] = id
  out[#out + 1] = verdict
end
out[#out + 1] = dropped
return out
`

/**
 * deadLetterPage-2: a page of dead letters in dead-letter order.
 *
 * KEYS[1]  a dead-letter ZSET (all, or one type's)
 * KEYS[2]  dead-letter data HASH
 * ARGV[1]  list after this sequence number (exclusive; 0 from the start)
 * ARGV[2]  page size (1 to 1,000)
 *
 * Returns a flat array: sequence, record, sequence, record, ... (records dropped meanwhile are skipped).
 */
export const deadLetterPage = `
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf', 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for i = 1, #ids, 2 do
  local record = redis.call('HGET', KEYS[2], ids[i])
  if record then
    out[#out + 1] = ids[i + 1]
    out[#out + 1] = record
  end
end
return out
`

/**
 * deadLetterTake-3: removes one dead letter and answers its record (retry and purge).
 *
 * KEYS[1]  dead-letter data HASH
 * KEYS[2]  the dead letter's type ZSET
 * KEYS[3]  all dead letters ZSET
 * ARGV[1]  dead-letter id
 *
 * Returns the record, or false when there is no such dead letter.
 */
export const deadLetterTake = `
local record = redis.call('HGET', KEYS[1], ARGV[1])
if not record then return false end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return record
`

/**
 * leaseAcquire-1: takes the lease when free, or extends it when this holder has it.
 *
 * KEYS[1]  the lease key
 * ARGV[1]  the holder's token
 * ARGV[2]  lease duration in milliseconds
 *
 * Returns {1, 0} when held by this token now, or {0, pttl}: another holder has it for pttl ms more.
 */
export const leaseAcquire = `
local current = redis.call('GET', KEYS[1])
if not current or current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2]))
  return {1, 0}
end
return {0, redis.call('PTTL', KEYS[1])}
`

/**
 * leaseRenew-1: extends the lease only if this holder still has it (check-and-set in one step).
 *
 * KEYS[1]  the lease key
 * ARGV[1]  the holder's token
 * ARGV[2]  lease duration in milliseconds
 *
 * Returns 1 when renewed, 0 when the lease was lost.
 */
export const leaseRenew = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
  return 1
end
return 0
`

/**
 * leaseRelease-1: gives the lease up if this holder has it.
 *
 * KEYS[1]  the lease key
 * ARGV[1]  the holder's token
 *
 * Returns 1 when released, 0 when it was not held by this token.
 */
export const leaseRelease = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`

/**
 * dropStaleActive-2: removes a job id from BullMQ's active list when the job's data is gone (a
 * job that can never be re-queued; the ingest takeover must not stop at it).
 *
 * KEYS[1]  the queue's active list
 * KEYS[2]  the job's hash
 * ARGV[1]  the job id
 *
 * Returns 1 when the id was dropped, 0 when the job still exists (nothing done).
 */
export const dropStaleActive = `
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('LREM', KEYS[1], 1, ARGV[1])
return 1
`

/** The scripts by command name: the name carries the key count, as BullMQ's file names do. */
export const commands = {
  "sfLink-1": link,
  "sfClaim-3": claim,
  "sfRelease-2": release,
  "sfDeadLetter-7": deadLetter,
  "sfSweep-3": sweep,
  "sfDeadLetterPage-2": deadLetterPage,
  "sfDeadLetterTake-3": deadLetterTake,
  "sfLeaseAcquire-1": leaseAcquire,
  "sfLeaseRenew-1": leaseRenew,
  "sfLeaseRelease-1": leaseRelease,
  "sfDropStaleActive-2": dropStaleActive
} as const

/** A script's command name. */
export type Command = keyof typeof commands
