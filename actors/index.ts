/**
 * The entity runtime: entity definitions, the runtime on nact, clients, errors, configuration,
 * the messenger seam and a nact persistence engine over the stores.
 */
export * as Entity from "./Entity.js"
export * as EntityClient from "./EntityClient.js"
export * as EntityError from "./EntityError.js"
export * as EntityEvent from "./EntityEvent.js"
export * as EntityLifecycle from "./EntityLifecycle.js"
export * as EntityMetrics from "./EntityMetrics.js"
export * as EntityRuntime from "./EntityRuntime.js"
export * as Messenger from "./Messenger.js"
export * as NactPersistenceEngine from "./NactPersistenceEngine.js"
export * as RuntimeConfig from "./RuntimeConfig.js"
export * as ShardId from "./ShardId.js"
