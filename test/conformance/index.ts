/**
 * `shardfeed/testing`: the conformance suites for users' own backends. Call
 * `StoreSuite.suite("my backend", () => layerStores(myBackendLayer))` from a vitest file.
 */
export * as StoreSuite from "./StoreSuite.js"
