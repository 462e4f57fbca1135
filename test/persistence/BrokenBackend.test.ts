/**
 * Goal: the conformance suite can fail. A suite that every backend passes proves nothing unless
 * a backend that breaks the contract does not pass it.
 * Method: wrap the honest memory backend in deliberately broken ones (fencing ignored, reverse
 * scans returned forward, scan pages one entry short, appends that reuse indexes) and run the
 * suite's cases against each; the cases about the broken behaviour must fail, while the honest
 * backend passes every case.
 */
import { Effect, Layer } from "effect"
import { describe, expect, it } from "vitest"
import { layerStores } from "../../persistence/IndexedStore.js"
import * as MemoryStore from "../../persistence/MemoryStore.js"
import { StoreBackend, type StoreBackendShape } from "../../persistence/StoreBackend.js"
import { indexedCases, keyValueCases, runCases } from "../conformance/StoreSuite.js"

const allCases = [...keyValueCases, ...indexedCases]

/** Stores over the memory backend as altered by `breakIt`. */
const broken = (breakIt: (backend: StoreBackendShape) => StoreBackendShape) => () =>
  layerStores(Layer.effect(StoreBackend, Effect.map(StoreBackend, breakIt)).pipe(Layer.provide(MemoryStore.layerBackend)))

describe("the conformance suite", () => {
  it("passes the honest memory backend", async () => {
    expect(await runCases(allCases, () => MemoryStore.layer)).toEqual([])
  })

  it("fails a backend that ignores fencing", async () => {
    const failed = await runCases(allCases, broken((backend) => ({
      ...backend,
      write: (batches) => backend.write(batches.map((batch) => ({ ...batch, epoch: undefined })))
    })))
    expect(failed).toEqual(expect.arrayContaining([
      expect.stringContaining("fencing: a lower epoch is rejected"),
      expect.stringContaining("fencing: of two concurrent writers"),
      expect.stringContaining("a fenced one applies none of them")
    ]))
  })

  it("fails a backend whose reverse scans come back in forward order", async () => {
    const failed = await runCases(allCases, broken((backend) => ({
      ...backend,
      scan: (partition, namespace, range, reverse, limit) =>
        reverse
          ? Effect.map(backend.scan(partition, namespace, range, false, limit), (entries) => entries)
          : backend.scan(partition, namespace, range, reverse, limit)
    })))
    expect(failed).toEqual(expect.arrayContaining([expect.stringContaining("bytewise order, forward and reverse")]))
  })

  it("fails a backend whose scan pages come back one entry short", async () => {
    const failed = await runCases(allCases, broken((backend) => ({
      ...backend,
      scan: (partition, namespace, range, reverse, limit) =>
        Effect.map(backend.scan(partition, namespace, range, reverse, limit), (entries) =>
          entries.length === limit && limit > 1 ? entries.slice(0, -1) : entries)
    })))
    expect(failed).toEqual(expect.arrayContaining([expect.stringContaining("streams read a range larger than one chunk")]))
  })

  it("fails a backend whose appends restart at index 1", async () => {
    const failed = await runCases(allCases, broken((backend) => ({
      ...backend,
      write: (batches) =>
        Effect.map(backend.write(batches), (outcomes) =>
          outcomes.map((outcome) => (outcome._tag === "Committed" ? { ...outcome, firstIndexes: outcome.firstIndexes.map(() => 1) } : outcome)))
    })))
    expect(failed).toEqual(expect.arrayContaining([expect.stringContaining("consecutive indexes from 1")]))
  })
})
