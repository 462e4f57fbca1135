/**
 * A store layer that measures any backend with Effect metrics: operations by backend, operation
 * and outcome, bytes read and written, and latency histograms. The metrics live in Effect's
 * registry, so the node's `/metrics` endpoint exports them with everything else.
 */
import { Effect, Exit, Layer, Metric, Stream } from "effect"
import { StoreBackend, type StoreBackendShape } from "./StoreBackend.js"

/** Operations counted, by `backend`, `operation` and `outcome` (`ok`, `fenced`, `error`). */
export const operations = Metric.counter("shardfeed_store_operations_total", {
  description: "Store operations by backend, operation and outcome"
})
/** Bytes of keys and values written, by `backend`. */
export const bytesWritten = Metric.counter("shardfeed_store_written_bytes_total", {
  description: "Bytes of keys and values written to the store"
})
/** Bytes of values read, by `backend`. */
export const bytesRead = Metric.counter("shardfeed_store_read_bytes_total", {
  description: "Bytes of values read from the store"
})
/** Operation latency in seconds, by `backend` and `operation`. */
export const latency = Metric.histogram("shardfeed_store_operation_seconds", {
  description: "Store operation latency",
  boundaries: Metric.exponentialBoundaries({ start: 0.00005, factor: 2, count: 18 })
})

/** Wraps a backend so that each primitive is counted and timed. */
export const wrap = (backend: StoreBackendShape): StoreBackendShape => {
  const attributes = (operation: string) => ({ backend: backend.name, operation })
  const perOperation = (operation: string) => ({
    ok: Metric.withAttributes(operations, { ...attributes(operation), outcome: "ok" }),
    error: Metric.withAttributes(operations, { ...attributes(operation), outcome: "error" }),
    fenced: Metric.withAttributes(operations, { ...attributes(operation), outcome: "fenced" }),
    latency: Metric.withAttributes(latency, attributes(operation))
  })
  const written = Metric.withAttributes(bytesWritten, { backend: backend.name })
  const read = Metric.withAttributes(bytesRead, { backend: backend.name })
  const byOperation = new Map(
    ["get", "getMany", "scan", "write", "registerEpoch", "epoch"].map((operation) => [operation, perOperation(operation)])
  )
  const measured = <A, E, R>(operation: string, effect: Effect.Effect<A, E, R>, bytes?: (a: A) => number) => {
    const metrics = byOperation.get(operation)!
    return Effect.suspend(() => {
      const started = performance.now()
      return Effect.onExit(effect, (exit) =>
        Effect.suspend(() => {
          const seconds = (performance.now() - started) / 1000
          const updates = [Metric.update(metrics.latency, seconds), Metric.update(Exit.isSuccess(exit) ? metrics.ok : metrics.error, 1)]
          if (Exit.isSuccess(exit) && bytes !== undefined) updates.push(Metric.update(read, bytes(exit.value)))
          return Effect.all(updates, { discard: true })
        }))
    })
  }
  return {
    name: backend.name,
    supports: backend.supports,
    get: (partition, namespace, key) => measured("get", backend.get(partition, namespace, key), (value) => value?.length ?? 0),
    getMany: (partition, namespace, keys) =>
      measured("getMany", backend.getMany(partition, namespace, keys), (values) => values.reduce((sum, value) => sum + (value?.length ?? 0), 0)),
    scan: (partition, namespace, range, reverse, limit) =>
      measured("scan", backend.scan(partition, namespace, range, reverse, limit), (entries) =>
        entries.reduce((sum, entry) => sum + entry.value.length, 0)),
    write: (batches) => {
      let bytes = 0
      for (const batch of batches) {
        for (const op of batch.ops) {
          if (op._tag === "Put") bytes += op.key.length + op.value.length
          else if (op._tag === "Delete") bytes += op.key.length
          else for (const value of op.values) bytes += value.length
        }
      }
      const fenced = byOperation.get("write")!.fenced
      return measured("write", backend.write(batches)).pipe(
        Effect.tap((outcomes) => {
          const rejected = outcomes.filter((outcome) => outcome._tag === "Fenced").length
          return Effect.all([Metric.update(written, bytes), Metric.update(fenced, rejected)], { discard: true })
        })
      )
    },
    registerEpoch: (partition, epoch) => measured("registerEpoch", backend.registerEpoch(partition, epoch)),
    epoch: (partition) => measured("epoch", backend.epoch(partition)),
    export: Stream.tap(backend.export, (record) => Metric.update(read, record.value.length))
  }
}

/** A layer that meters the `StoreBackend` below it. */
export const layer: Layer.Layer<StoreBackend, never, StoreBackend> = Layer.effect(StoreBackend, Effect.map(StoreBackend, wrap))
