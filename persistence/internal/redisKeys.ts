/**
 * Every Redis key name of the Redis store, built in this one module (as BullMQ does). All keys of
 * a partition carry the hash tag `{<partition>}`, so they live in one hash slot and one Lua
 * script can check the fence and write them atomically, on a Redis Cluster too.
 *
 *   <prefix>:{<partition>}:e        the partition's registered epoch (a decimal string)
 *   <prefix>:{<partition>}:z:<ns>   a ZSET, all scores 0, whose members are the namespace's keys
 *   <prefix>:{<partition>}:h:<ns>   a HASH from the namespace's keys to their values
 */

/** The keys of one store, under `prefix` (which must not contain `{` or `}`). */
export const make = (prefix: string) => {
  const base = (partition: string) => `${prefix}:{${partition}}:`
  return {
    epoch: (partition: string) => `${base(partition)}e`,
    sortedKeys: (partition: string, namespace: string) => `${base(partition)}z:${namespace}`,
    values: (partition: string, namespace: string) => `${base(partition)}h:${namespace}`,
    /** The SCAN pattern matching every value hash of the store. */
    valuesPattern: `${prefix}:{*}:h:*`,
    /** Parses a value hash name back into its partition and namespace. */
    parseValues: (key: string): { readonly partition: string; readonly namespace: string } | undefined => {
      const head = `${prefix}:{`
      if (!key.startsWith(head)) return undefined
      const close = key.indexOf("}:h:", head.length)
      if (close < 0) return undefined
      return { partition: key.slice(head.length, close), namespace: key.slice(close + 4) }
    }
  }
}

/** The key builder type. */
export type RedisKeys = ReturnType<typeof make>
