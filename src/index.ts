/**
 * shardfeed's public API. Each module is a namespace named after its main export, as in Effect:
 * `import { Entity, EntityRuntime, Feed, LevelStore } from "shardfeed"`.
 */
export * from "../actors/index.js"
export * from "../persistence/index.js"
export * as Feed from "./feed/Feed.js"
export * as FeedError from "./feed/FeedError.js"
export * as FeedMessages from "./feed/FeedMessages.js"
export * as Archive from "./node/Archive.js"
export * as ClusterView from "./node/ClusterView.js"
export * as Node from "./node/Node.js"
export * as SortedSet from "./sortedset/SortedSet.js"
export * as SortedSetEntity from "./sortedset/SortedSetEntity.js"
export * as SortedSetMessages from "./sortedset/SortedSetMessages.js"
export * as IndexSchema from "./search/IndexSchema.js"
export * as Search from "./search/Search.js"
export * as SearchEntity from "./search/SearchEntity.js"
export * as SearchError from "./search/SearchError.js"
export * as SearchIndex from "./search/SearchIndex.js"
export * as SearchMessages from "./search/SearchMessages.js"
export * as SearchPartition from "./search/SearchPartition.js"
