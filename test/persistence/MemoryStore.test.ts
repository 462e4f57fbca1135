/**
 * The memory backend against the shared conformance suites, one per service (the other backends
 * run both services in one suite).
 */
import * as MemoryStore from "../../persistence/MemoryStore.js"
import { indexedSuite, keyValueSuite } from "../conformance/StoreSuite.js"

keyValueSuite("memory backend, key-value store", () => MemoryStore.layer)
indexedSuite("memory backend, indexed store", () => MemoryStore.layer)
