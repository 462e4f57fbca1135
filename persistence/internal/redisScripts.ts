/**
 * The Lua scripts of the Redis store. Each opens with its purpose, its KEYS and ARGV, and its
 * return value. Check-and-set (the fence) and the write are one script, so they are atomic on a
 * standalone Redis and, since every key of a partition shares one hash slot, on a Redis Cluster.
 * Writes are grouped per namespace so that a batch of 1,000 puts costs two Redis calls, not 2,000.
 */

/**
 * write: applies one partition batch, fenced or not.
 *
 * KEYS[1]          the partition's epoch key
 * KEYS[2g], KEYS[2g+1]  for each namespace group g = 1..G: its ZSET of keys and its HASH of values
 * ARGV[1]          the batch's epoch, or "" for an unfenced batch
 * ARGV[2]          G, the number of namespace groups
 * then per group   putCount, deleteCount, putCount (key, value) pairs, deleteCount keys
 * then             appendCount, and per append: entry group index, position group index,
 *                  topic key prefix (bytes), position field, valueCount, valueCount values
 *
 * Returns {1, firstIndex...} (one first index per append) when applied, or {0, currentEpoch}
 * when the batch's epoch is below the registered one (nothing applied). A fenced batch with a
 * higher epoch raises the registered epoch.
 */
export const write = `
local CHUNK = 1000
local epoch = ARGV[1]
if epoch ~= '' then
  local current = tonumber(redis.call('GET', KEYS[1]) or '0')
  local requested = tonumber(epoch)
  if requested < current then return {0, current} end
  if requested > current then redis.call('SET', KEYS[1], epoch) end
end
local a = 3
local groups = tonumber(ARGV[2])
for g = 1, groups do
  local zkey, hkey = KEYS[2 * g], KEYS[2 * g + 1]
  local puts, deletes = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  a = a + 2
  local i = 0
  while i < puts do
    local n = math.min(CHUNK, puts - i)
    local members, fields = {}, {}
    for j = 0, n - 1 do
      local k = ARGV[a + 2 * (i + j)]
      members[2 * j + 1] = 0
      members[2 * j + 2] = k
      fields[2 * j + 1] = k
      fields[2 * j + 2] = ARGV[a + 2 * (i + j) + 1]
    end
    redis.call('ZADD', zkey, unpack(members))
    redis.call('HSET', hkey, unpack(fields))
    i = i + n
  end
  a = a + 2 * puts
  i = 0
  while i < deletes do
    local n = math.min(CHUNK, deletes - i)
    local keys = {}
    for j = 0, n - 1 do keys[j + 1] = ARGV[a + i + j] end
    redis.call('ZREM', zkey, unpack(keys))
    redis.call('HDEL', hkey, unpack(keys))
    i = i + n
  end
  a = a + deletes
end
local result = {1}
local appends = tonumber(ARGV[a])
a = a + 1
for x = 1, appends do
  local eg, pg = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  local prefix, field, count = ARGV[a + 2], ARGV[a + 3], tonumber(ARGV[a + 4])
  a = a + 5
  local ezkey, ehkey = KEYS[2 * eg], KEYS[2 * eg + 1]
  local pzkey, phkey = KEYS[2 * pg], KEYS[2 * pg + 1]
  local position = tonumber(redis.call('HGET', phkey, field) or '0')
  local i = 0
  while i < count do
    local n = math.min(CHUNK, count - i)
    local members, fields = {}, {}
    for j = 0, n - 1 do
      local k = prefix .. struct.pack('>I8', position + i + j + 1)
      members[2 * j + 1] = 0
      members[2 * j + 2] = k
      fields[2 * j + 1] = k
      fields[2 * j + 2] = ARGV[a + i + j]
    end
    redis.call('ZADD', ezkey, unpack(members))
    redis.call('HSET', ehkey, unpack(fields))
    i = i + n
  end
  a = a + count
  redis.call('HSET', phkey, field, string.format('%.0f', position + count))
  redis.call('ZADD', pzkey, 0, field)
  result[#result + 1] = position + 1
end
return result
`

/**
 * scan: reads a bounded range of one namespace, keys and values in one atomic step.
 *
 * KEYS[1]  the namespace's ZSET of keys
 * KEYS[2]  the namespace's HASH of values
 * ARGV[1]  the lower bound in ZRANGEBYLEX syntax ("-", "[key" or "(key")
 * ARGV[2]  the upper bound ("+", "[key" or "(key")
 * ARGV[3]  "1" for descending order, "0" for ascending
 * ARGV[4]  the most entries to return
 *
 * Returns a flat array {key1, value1, key2, value2, ...}.
 */
export const scan = `
local keys
if ARGV[3] == '1' then
  keys = redis.call('ZREVRANGEBYLEX', KEYS[1], ARGV[2], ARGV[1], 'LIMIT', 0, tonumber(ARGV[4]))
else
  keys = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[1], ARGV[2], 'LIMIT', 0, tonumber(ARGV[4]))
end
if #keys == 0 then return {} end
local out = {}
local CHUNK = 1000
local i = 1
while i <= #keys do
  local last = math.min(i + CHUNK - 1, #keys)
  local values = redis.call('HMGET', KEYS[2], unpack(keys, i, last))
  for j = i, last do
    out[2 * j - 1] = keys[j]
    out[2 * j] = values[j - i + 1]
  end
  i = last + 1
end
return out
`

/**
 * registerEpoch: raises a partition's registered epoch.
 *
 * KEYS[1]  the partition's epoch key
 * ARGV[1]  the epoch granted (a non-negative integer)
 *
 * Returns the registered epoch afterwards (the higher of the stored one and ARGV[1]).
 */
export const registerEpoch = `
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local requested = tonumber(ARGV[1])
if requested > current then
  redis.call('SET', KEYS[1], ARGV[1])
  return requested
end
return current
`
