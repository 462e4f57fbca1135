/**
 * A store layer that isolates a tenant (or a test) inside any backend by prefixing every
 * partition: `tenant` turns partition `7` into `tenant:7`, so namespaces, topics and epochs of
 * different prefixes never meet, and `export` only sees its own records. It wraps a
 * `StoreBackend` and is itself one, so it composes with the other store layers.
 */
import { Effect, Layer, Stream } from "effect"
import { StoreBackend, type StoreBackendShape } from "./StoreBackend.js"
import { InvalidArgument } from "./StoreError.js"

const PREFIX = /^[A-Za-z0-9_.-]{1,64}$/

/** Wraps a backend so that every partition is `<prefix>:<partition>`. */
export const wrap = (prefix: string, backend: StoreBackendShape): StoreBackendShape => {
  const head = `${prefix}:`
  const map = (partition: string) => head + partition
  return {
    name: backend.name,
    supports: backend.supports,
    get: (partition, namespace, key) => backend.get(map(partition), namespace, key),
    getMany: (partition, namespace, keys) => backend.getMany(map(partition), namespace, keys),
    scan: (partition, namespace, range, reverse, limit) => backend.scan(map(partition), namespace, range, reverse, limit),
    write: (batches) => backend.write(batches.map((batch) => ({ ...batch, partition: map(batch.partition) }))),
    registerEpoch: (partition, epoch) => backend.registerEpoch(map(partition), epoch),
    epoch: (partition) => backend.epoch(map(partition)),
    export: backend.export.pipe(
      Stream.filter((record) => record.partition.startsWith(head)),
      Stream.map((record) => ({ ...record, partition: record.partition.slice(head.length) }))
    )
  }
}

/** A layer that prefixes the `StoreBackend` below it. */
export const layer = (prefix: string): Layer.Layer<StoreBackend, InvalidArgument, StoreBackend> =>
  Layer.effect(
    StoreBackend,
    Effect.gen(function*() {
      if (!PREFIX.test(prefix)) {
        return yield* Effect.fail(new InvalidArgument({ field: "prefix", message: "must be 1 to 64 characters of A-Z, a-z, 0-9, '_', '.' or '-'" }))
      }
      return wrap(prefix, yield* StoreBackend)
    })
  )
