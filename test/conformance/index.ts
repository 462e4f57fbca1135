/**
 * `shardfeed/testing`: the conformance suites for users' own backends. Call
 * `StoreSuite.suite("my backend", () => layerStores(myBackendLayer))` from a vitest file for both
 * services, or `StoreSuite.keyValueSuite` / `StoreSuite.indexedSuite` for one.
 */
export * as StoreSuite from "./StoreSuite.js"
