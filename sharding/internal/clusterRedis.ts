/**
 * The Redis side of shard coordination: every key name (built here only) and every Lua script.
 * All keys of one cluster share the hash tag `{<prefix>:<cluster>}`, so each script is atomic on
 * a standalone Redis and on a Redis Cluster. Times are Redis's own (`TIME`), so workers' clocks
 * never decide a lease.
 *
 *   {tag}:settings      settings every worker must share (JSON), set by the first to join
 *   {tag}:workers       ZSET worker id -> heartbeat expiry (ms)
 *   {tag}:info          HASH worker id -> worker description (JSON: address, weight, store)
 *   {tag}:epochs        HASH shard -> epoch of its latest acquisition
 *   {tag}:lease:<n>     "<worker id> <epoch>", expiring after the lease time unless renewed
 *   {tag}:changes       pub/sub channel: a shard or membership change happened
 */

/** Key names of one cluster. */
export const keys = (prefix: string, cluster: string) => {
  const tag = `{${prefix}:${cluster}}`
  return {
    settings: `${tag}:settings`,
    workers: `${tag}:workers`,
    info: `${tag}:info`,
    epochs: `${tag}:epochs`,
    lease: (shard: number) => `${tag}:lease:${shard}`,
    changes: `${tag}:changes`,
    pause: `${tag}:pause`,
    pauseAcks: `${tag}:pause-acks`
  }
}

/** The key builder of one cluster. */
export type ClusterKeys = ReturnType<typeof keys>

/**
 * clear-pause-1: deletes the pause request if it is still this one.
 *
 * KEYS[1] pause; ARGV[1] the request (JSON)
 */
export const clearPause = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`

/**
 * renew-pause-1: extends the pause request's lifetime if it is still this one.
 *
 * KEYS[1] pause; ARGV[1] the request (JSON), ARGV[2] lifetime (ms)
 */
export const renewPause = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`

const NOW = "local time = redis.call('TIME'); local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)"

/**
 * join-3: registers a worker if its settings match the cluster's and its store can be shared.
 *
 * KEYS[1] settings, KEYS[2] workers, KEYS[3] info
 * ARGV[1] worker id, ARGV[2] worker description (JSON), ARGV[3] lease (ms),
 * ARGV[4] settings (JSON), ARGV[5] "1" if this worker's store is shared between processes
 *
 * Returns {"ok"}, {"settings", <the cluster's settings>} when they differ, or
 * {"local-store", <other worker id>} when either side's store is local to one process.
 */
export const join = `
${NOW}
local existing = redis.call('GET', KEYS[1])
if existing and existing ~= ARGV[4] then return {'settings', existing} end
if not existing then redis.call('SET', KEYS[1], ARGV[4]) end
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, id in ipairs(expired) do redis.call('HDEL', KEYS[3], id) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local live = redis.call('ZRANGE', KEYS[2], 0, -1)
for _, id in ipairs(live) do
  if id ~= ARGV[1] then
    local info = redis.call('HGET', KEYS[3], id)
    local shared = info and string.find(info, '"shared":true', 1, true)
    if ARGV[5] ~= '1' or not shared then return {'local-store', id} end
  end
end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[1])
return {'ok'}
`

/**
 * heartbeat-1: extends a worker's membership.
 *
 * KEYS[1] workers; ARGV[1] worker id, ARGV[2] lease (ms)
 * Returns 1, or 0 when the worker is no longer a member (it expired) and must join again.
 */
export const heartbeat = `
${NOW}
local expiry = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not expiry or tonumber(expiry) <= now then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return 1
`

/**
 * members-2: the live workers, after dropping the expired ones.
 *
 * KEYS[1] workers, KEYS[2] info
 * Returns {id1, description1, expiry1, id2, ...} and, last, the current time (ms).
 */
export const members = `
${NOW}
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for _, id in ipairs(expired) do redis.call('HDEL', KEYS[2], id) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local live = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local out = {}
for i = 1, #live, 2 do
  out[#out + 1] = live[i]
  out[#out + 1] = redis.call('HGET', KEYS[2], live[i]) or '{}'
  out[#out + 1] = live[i + 1]
end
out[#out + 1] = tostring(now)
return out
`

/**
 * leave-2: removes a worker from the membership (a graceful leave).
 *
 * KEYS[1] workers, KEYS[2] info; ARGV[1] worker id. Returns 1.
 */
export const leave = `
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
`

/**
 * acquire-N: takes every listed shard that is free (released, or its lease expired), incrementing
 * its epoch in the same step; a shard already held by this worker is renewed, not re-acquired.
 *
 * KEYS[1] epochs, KEYS[2..] the lease keys of the shards; ARGV[1] worker id, ARGV[2] lease (ms),
 * ARGV[3..] the shard numbers, in KEYS order.
 * Returns {shard1, epoch1, shard2, epoch2, ...} for the shards now held by this worker.
 */
export const acquire = `
local out = {}
for i = 2, #KEYS do
  local shard = ARGV[i + 1]
  local current = redis.call('GET', KEYS[i])
  if not current then
    local epoch = redis.call('HINCRBY', KEYS[1], shard, 1)
    redis.call('SET', KEYS[i], ARGV[1] .. ' ' .. epoch, 'PX', tonumber(ARGV[2]))
    out[#out + 1] = shard
    out[#out + 1] = epoch
  else
    local space = string.find(current, ' ', 1, true)
    if string.sub(current, 1, space - 1) == ARGV[1] then
      redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[2]))
      out[#out + 1] = shard
      out[#out + 1] = tonumber(string.sub(current, space + 1))
    end
  end
end
return out
`

/**
 * raise-epoch-2: gives a shard this worker holds a new epoch above `above` (the epoch the store
 * has registered for it, which coordination fell behind: its data was lost, or it is another
 * Redis than the store's), so that the new tenure is fenced apart from every earlier one.
 *
 * KEYS[1] epochs, KEYS[2] the shard's lease key; ARGV[1] worker id, ARGV[2] shard number,
 * ARGV[3] above, ARGV[4] lease (ms).
 * Returns the new epoch, or 0 when the lease is not this worker's.
 */
export const raiseEpoch = `
local current = redis.call('GET', KEYS[2])
if not current or string.sub(current, 1, #ARGV[1] + 1) ~= ARGV[1] .. ' ' then return 0 end
local epoch = tonumber(redis.call('HGET', KEYS[1], ARGV[2]) or '0')
local above = tonumber(ARGV[3])
if epoch < above then epoch = above end
epoch = epoch + 1
redis.call('HSET', KEYS[1], ARGV[2], epoch)
redis.call('SET', KEYS[2], ARGV[1] .. ' ' .. epoch, 'PX', tonumber(ARGV[4]))
return epoch
`

/**
 * renew-N: extends this worker's leases.
 *
 * KEYS[1..] lease keys; ARGV[1] worker id, ARGV[2] lease (ms).
 * Returns one 1 (renewed) or 0 (no longer held by this worker) per key.
 */
export const renew = `
local out = {}
for i = 1, #KEYS do
  local current = redis.call('GET', KEYS[i])
  if current and string.sub(current, 1, #ARGV[1] + 1) == ARGV[1] .. ' ' then
    redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[2]))
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
`

/**
 * release-N: gives up this worker's leases (after a handoff drained them).
 *
 * KEYS[1..] lease keys; ARGV[1] worker id. Returns how many were released.
 */
export const release = `
local released = 0
for i = 1, #KEYS do
  local current = redis.call('GET', KEYS[i])
  if current and string.sub(current, 1, #ARGV[1] + 1) == ARGV[1] .. ' ' then
    redis.call('DEL', KEYS[i])
    released = released + 1
  end
end
return released
`
